// The HTTP endpoint of metrics and health: GET /metrics (Prometheus text format),
// GET /health (200 "ok" while serving, 503 while shutting down) and, when a status source
// is set, GET / (the status page, metrics/status.h). Plain HTTP on its own port
// (`cache.metrics`; the built-in default configuration serves it on 127.0.0.1:9091).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <arrow/result.h>
#include <arrow/status.h>

namespace httplib {
class Server;
}

namespace foc {

class HttpEndpoint {
 public:
  /// Produces the /metrics body.
  using MetricsSource = std::function<std::string()>;
  /// True while the server is healthy (serving, not draining).
  using HealthSource = std::function<bool()>;
  /// Produces the HTML of the status page at `/`.
  using StatusSource = std::function<std::string()>;

  HttpEndpoint(MetricsSource metrics, HealthSource health);
  ~HttpEndpoint();

  /// Read/write and keep-alive timeout of each connection, and the number of worker
  /// threads (a bounded pool). Call before Start; defaults 5 s and 4 threads.
  void SetLimits(double timeout_seconds, int threads);
  /// Serves `/` from `status` (call before Start); without it `/` is 404.
  void SetStatusPage(StatusSource status);

  /// Binds `host:port` (port 0 = any free port) and serves on a background thread.
  /// Returns the bound port.
  arrow::Result<int> Start(const std::string& host, int port);
  /// Stops serving and joins the thread (idempotent).
  void Stop();

 private:
  MetricsSource metrics_;
  HealthSource health_;
  StatusSource status_;
  double timeout_seconds_ = 5;
  int threads_ = 4;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace foc
