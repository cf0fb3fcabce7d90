// The Arrow Flight front end of flame-object-cache.
#pragma once

#include <memory>
#include <string>

#include <arrow/flight/server.h>

namespace foc {

/// Serves the flame-object-cache protocol over Arrow Flight: decodes each request, calls
/// the object store, encodes the reply. Status codes are mapped in one place (status.cc).
class FlightService : public arrow::flight::FlightServerBase {
 public:
  FlightService();
  ~FlightService() override;

  arrow::Status ListActions(const arrow::flight::ServerCallContext& context,
                            std::vector<arrow::flight::ActionType>* actions) override;
};

}  // namespace foc
