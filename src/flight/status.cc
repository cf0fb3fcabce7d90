#include "flight/status.h"

#include <cstdio>
#include <string_view>

#include <arrow/flight/types.h>

#include "key/key.h"
#include "storage/storage_unavailable.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

// Error messages may quote what the client sent (a key, a ticket, a command); a 5 MB key
// would come back as a 5 MB message, beyond gRPC's metadata limit, and turn into a
// different error. Keep the head and the tail (where the reason is), elide the middle.
constexpr size_t kMaxMessageHead = 1024;
constexpr size_t kMaxMessageTail = 512;

bool IsPrintableAscii(unsigned char c) {
  return (c >= 0x20 && c != 0x7F) || c == '\n' || c == '\t';
}

// What the client sent may be any bytes (a ticket, a PATCH key, an action body). gRPC
// carries the message percent-encoded, but clients decode it as UTF-8 (grpcio logs
// "Invalid encoding" and garbles it), and a bound that cuts a multi-byte character
// leaves half of one. Bytes that are not part of valid UTF-8, and control characters,
// are written as \xNN; valid text passes unchanged.
std::string Printable(std::string_view m) {
  bool plain = IsValidUtf8(m);
  for (size_t i = 0; plain && i < m.size(); ++i) {
    const auto c = static_cast<unsigned char>(m[i]);
    plain = c >= 0x80 || IsPrintableAscii(c);
  }
  if (plain) return std::string(m);
  std::string out;
  out.reserve(m.size() + 16);
  size_t i = 0;
  while (i < m.size()) {
    const auto c = static_cast<unsigned char>(m[i]);
    const size_t len = c < 0x80             ? 1
                       : (c & 0xE0) == 0xC0 ? 2
                       : (c & 0xF0) == 0xE0 ? 3
                       : (c & 0xF8) == 0xF0 ? 4
                                            : 0;
    if (len == 1 && IsPrintableAscii(c)) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (len > 1 && i + len <= m.size() && IsValidUtf8(m.substr(i, len))) {
      out.append(m.substr(i, len));
      i += len;
      continue;
    }
    char escaped[5];
    std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
    out += escaped;
    ++i;
  }
  return out;
}

}  // namespace

arrow::Status ClientSafeMessage(const arrow::Status& status) {
  const std::string& m = status.message();
  std::string bounded =
      m.size() <= kMaxMessageHead + kMaxMessageTail + 64
          ? m
          : m.substr(0, kMaxMessageHead) + "... (" +
                std::to_string(m.size() - kMaxMessageHead - kMaxMessageTail) +
                " bytes elided) ..." + m.substr(m.size() - kMaxMessageTail);
  std::string printable = Printable(bounded);
  if (printable == m) return status;
  return arrow::Status(status.code(), std::move(printable), status.detail());
}

namespace {

arrow::Status Map(const arrow::Status& status);

}  // namespace

arrow::Status ToRpcStatus(const arrow::Status& status) {
  if (status.ok()) return status;
  return Map(ClientSafeMessage(status));
}

namespace {

arrow::Status Map(const arrow::Status& status) {
  // Already an RPC status (authorization refusals, limits): keep its code.
  if (fl::FlightStatusDetail::UnwrapStatus(status)) return status;
  if (IsStorageUnavailable(status)) {  // the S3 backend: retryable, with S3's reason
    return arrow::Status::IOError(status.message())
        .WithDetail(
            std::make_shared<fl::FlightStatusDetail>(fl::FlightStatusCode::Unavailable));
  }
  switch (status.code()) {
    case arrow::StatusCode::KeyError:
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::NotImplemented:
      return arrow::Status(status.code(), status.message());
    case arrow::StatusCode::Cancelled:
      return arrow::Status::Cancelled(status.message())
          .WithDetail(
              std::make_shared<fl::FlightStatusDetail>(fl::FlightStatusCode::Cancelled));
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::IndexError:
      return arrow::Status::Invalid(status.message());
    case arrow::StatusCode::CapacityError:
      return arrow::Status::CapacityError(kResourceExhaustedPrefix, status.message())
          .WithDetail(std::make_shared<fl::FlightStatusDetail>(
              fl::FlightStatusCode::Unavailable));
    default:
      return arrow::Status::IOError(status.message())
          .WithDetail(
              std::make_shared<fl::FlightStatusDetail>(fl::FlightStatusCode::Internal));
  }
}

}  // namespace

}  // namespace foc
