#include "flight/metrics_middleware.h"

#include <chrono>

#include <arrow/flight/middleware.h>
#include <arrow/flight/server.h>
#include <arrow/flight/types.h>
#include <spdlog/spdlog.h>

namespace foc {

namespace {

class MetricsMiddleware : public arrow::flight::ServerMiddleware {
 public:
  MetricsMiddleware(std::shared_ptr<RpcMetrics> metrics, std::string rpc,
                    std::string peer)
      : metrics_(std::move(metrics)),
        rpc_(std::move(rpc)),
        peer_(std::move(peer)),
        start_(std::chrono::steady_clock::now()) {
    metrics_->AddInFlight(1);
  }

  std::string name() const override { return "MetricsMiddleware"; }
  void SendingHeaders(arrow::flight::AddCallHeaders*) override {}

  void CallCompleted(const arrow::Status& status) override {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string code = GrpcCodeName(status);
    metrics_->AddInFlight(-1);
    metrics_->Record(rpc_, code, seconds);
    if (spdlog::should_log(spdlog::level::debug)) {
      if (status.ok()) {
        spdlog::debug("{} {} {:.3f} ms peer={}", rpc_, code, seconds * 1e3, peer_);
      } else {
        spdlog::debug("{} {} {:.3f} ms peer={}: {}", rpc_, code, seconds * 1e3, peer_,
                      status.message());
      }
    }
  }

 private:
  std::shared_ptr<RpcMetrics> metrics_;
  std::string rpc_;
  std::string peer_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

std::string GrpcCodeName(const arrow::Status& status) {
  using arrow::StatusCode;
  using arrow::flight::FlightStatusCode;
  if (status.ok()) return "OK";
  if (auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(status)) {
    switch (detail->code()) {
      case FlightStatusCode::Internal:
        return "INTERNAL";
      case FlightStatusCode::TimedOut:
        return "DEADLINE_EXCEEDED";
      case FlightStatusCode::Cancelled:
        return "CANCELLED";
      case FlightStatusCode::Unauthenticated:
        return "UNAUTHENTICATED";
      case FlightStatusCode::Unauthorized:
        return "PERMISSION_DENIED";
      case FlightStatusCode::Unavailable:
        return "UNAVAILABLE";
      case FlightStatusCode::Failed:
        return "UNKNOWN";
    }
  }
  switch (status.code()) {
    case StatusCode::KeyError:
      return "NOT_FOUND";
    case StatusCode::Invalid:
    case StatusCode::TypeError:
      return "INVALID_ARGUMENT";
    case StatusCode::OutOfMemory:
    case StatusCode::CapacityError:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::IndexError:
      return "OUT_OF_RANGE";
    case StatusCode::Cancelled:
      return "CANCELLED";
    case StatusCode::NotImplemented:
      return "UNIMPLEMENTED";
    case StatusCode::AlreadyExists:
      return "ALREADY_EXISTS";
    default:
      return "UNKNOWN";
  }
}

MetricsMiddlewareFactory::MetricsMiddlewareFactory(std::shared_ptr<RpcMetrics> metrics)
    : metrics_(std::move(metrics)) {}

arrow::Status MetricsMiddlewareFactory::StartCall(
    const arrow::flight::CallInfo& info, const arrow::flight::ServerCallContext& context,
    std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) {
  *middleware = std::make_shared<MetricsMiddleware>(
      metrics_, arrow::flight::ToString(info.method), context.peer());
  return arrow::Status::OK();
}

}  // namespace foc
