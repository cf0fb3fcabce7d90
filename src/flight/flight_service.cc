#include "flight/flight_service.h"

namespace foc {

FlightService::FlightService() = default;
FlightService::~FlightService() = default;

arrow::Status FlightService::ListActions(const arrow::flight::ServerCallContext&,
                                         std::vector<arrow::flight::ActionType>* actions) {
  *actions = {{"DELETE", "Delete objects by key prefix"}};
  return arrow::Status::OK();
}

}  // namespace foc
