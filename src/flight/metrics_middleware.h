// A Flight server middleware that feeds RpcMetrics (calls by RPC and gRPC status,
// latency, calls in flight) and logs one line per call at debug level. Installed through
// arrow::flight::FlightServerOptions::middleware, so the service itself needs no hooks.
#pragma once

#include <memory>
#include <string>

#include <arrow/flight/server_middleware.h>
#include <arrow/status.h>

#include "metrics/metrics.h"

namespace foc {

/// The gRPC status code name ("OK", "NOT_FOUND", …) a Flight server reports for `status`,
/// following Arrow Flight's own mapping (FlightStatusDetail first, then the Arrow code).
std::string GrpcCodeName(const arrow::Status& status);

class MetricsMiddlewareFactory : public arrow::flight::ServerMiddlewareFactory {
 public:
  /// Key under which the factory is registered in FlightServerOptions::middleware.
  static constexpr const char* kKey = "foc-metrics";

  explicit MetricsMiddlewareFactory(std::shared_ptr<RpcMetrics> metrics);

  arrow::Status StartCall(
      const arrow::flight::CallInfo& info,
      const arrow::flight::ServerCallContext& context,
      std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) override;

 private:
  std::shared_ptr<RpcMetrics> metrics_;
};

}  // namespace foc
