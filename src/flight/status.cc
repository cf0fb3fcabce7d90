#include "flight/status.h"

#include <arrow/flight/types.h>

#include "storage/storage_unavailable.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

// Error messages may quote what the client sent (a key, a ticket, a command); a 5 MB key
// would come back as a 5 MB message, beyond gRPC's metadata limit, and turn into a
// different error. Keep the head and the tail (where the reason is), elide the middle.
constexpr size_t kMaxMessageHead = 1024;
constexpr size_t kMaxMessageTail = 512;

arrow::Status Bounded(const arrow::Status& status) {
  const std::string& m = status.message();
  if (m.size() <= kMaxMessageHead + kMaxMessageTail + 64) return status;
  std::string bounded = m.substr(0, kMaxMessageHead) + "... (" +
                        std::to_string(m.size() - kMaxMessageHead - kMaxMessageTail) +
                        " bytes elided) ..." + m.substr(m.size() - kMaxMessageTail);
  return arrow::Status(status.code(), std::move(bounded), status.detail());
}

arrow::Status Map(const arrow::Status& status);

}  // namespace

arrow::Status ToRpcStatus(const arrow::Status& status) {
  if (status.ok()) return status;
  return Map(Bounded(status));
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
