// The Arrow Flight front end of flame-object-cache.
#pragma once

#include <memory>
#include <string>

#include <arrow/flight/server.h>

namespace foc {

/// Serves the flame-object-cache protocol over Arrow Flight: decodes each request, calls
/// the object store, encodes the reply. Status codes are mapped in one place (status.cc).
struct FlightServiceOptions {
  /// The URI put in PutResults and FlightInfo locations, e.g. `grpc://10.0.0.5:9090`.
  /// Empty: derived from the listening location once the server is bound.
  std::string advertised_endpoint;
};

class ObjectStore;

class FlightService : public arrow::flight::FlightServerBase {
 public:
  FlightService(std::shared_ptr<ObjectStore> store, FlightServiceOptions options);
  ~FlightService() override;

  arrow::Status ListActions(const arrow::flight::ServerCallContext& context,
                            std::vector<arrow::flight::ActionType>* actions) override;

 private:
  std::shared_ptr<ObjectStore> store_;
  FlightServiceOptions options_;
};

}  // namespace foc
