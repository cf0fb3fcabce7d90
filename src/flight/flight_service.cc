#include "flight/flight_service.h"

namespace foc {

FlightService::FlightService(std::shared_ptr<ObjectStore> store, FlightServiceOptions options)
    : store_(std::move(store)), options_(std::move(options)) {}
FlightService::~FlightService() = default;

arrow::Status FlightService::ListActions(const arrow::flight::ServerCallContext&,
                                         std::vector<arrow::flight::ActionType>* actions) {
  *actions = {{"DELETE", "Delete objects by key prefix"}};
  return arrow::Status::OK();
}

}  // namespace foc
