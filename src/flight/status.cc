#include "flight/status.h"

namespace foc {

arrow::Status ToRpcStatus(const arrow::Status& status) {
  if (status.ok()) return status;
  switch (status.code()) {
    case arrow::StatusCode::KeyError:
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::NotImplemented:
    case arrow::StatusCode::CapacityError:
      return status;
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::IndexError:
      return arrow::Status::Invalid(status.message());
    default:
      return arrow::Status::IOError(status.message());
  }
}

}  // namespace foc
