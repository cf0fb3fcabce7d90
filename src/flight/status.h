// The one place where store/storage errors become RPC status codes.
#pragma once

#include <arrow/status.h>

namespace foc {

/// Message prefix of errors that mean "out of memory or disk capacity".
inline constexpr char kResourceExhaustedPrefix[] = "RESOURCE_EXHAUSTED: ";

/// Maps a store error to what the client sees:
///   KeyError → NOT_FOUND; Invalid/TypeError/IndexError → INVALID_ARGUMENT;
///   NotImplemented → UNIMPLEMENTED; Cancelled → CANCELLED; anything else (IOError...) →
///   INTERNAL.
///   CapacityError (memory or disk full) → UNAVAILABLE with the message prefixed
///   "RESOURCE_EXHAUSTED: ". gRPC's RESOURCE_EXHAUSTED would be the natural code, but
///   Arrow Flight's server API cannot emit it: its transport status codes have no such
///   value, and Arrow's own client folds RESOURCE_EXHAUSTED into "unavailable" as well.
///   The original Arrow status code also travels in the `x-arrow-status` trailer, so
///   Arrow clients see CapacityError.
arrow::Status ToRpcStatus(const arrow::Status& status);

/// `status` with a message fit to send to a client (ToRpcStatus applies it): at most
/// ~1.5 KiB (the middle of a longer message is elided, so a 5 MB key cannot turn its own
/// error into a gRPC metadata-size failure), and valid UTF-8 (bytes that are not, and
/// control characters other than newline and tab, are written as `\xNN`). Code and detail
/// are kept.
arrow::Status ClientSafeMessage(const arrow::Status& status);

}  // namespace foc
