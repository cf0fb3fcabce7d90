// The one place where store/storage errors become RPC status codes.
#pragma once

#include <arrow/status.h>

namespace foc {

/// Maps a store error to what the client sees:
///   KeyError → NOT_FOUND; Invalid/TypeError/IndexError → INVALID_ARGUMENT;
///   CapacityError → RESOURCE_EXHAUSTED; NotImplemented → UNIMPLEMENTED;
///   IOError and anything else → INTERNAL (with the message).
arrow::Status ToRpcStatus(const arrow::Status& status);

}  // namespace foc
