#include "flight/status.h"

#include <arrow/flight/types.h>

#include "storage/storage_unavailable.h"

namespace foc {
namespace fl = arrow::flight;

arrow::Status ToRpcStatus(const arrow::Status& status) {
  if (status.ok()) return status;
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

}  // namespace foc
