#include "metrics/http_endpoint.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include <httplib.h>

namespace foc {

HttpEndpoint::HttpEndpoint(MetricsSource metrics, HealthSource health)
    : metrics_(std::move(metrics)), health_(std::move(health)) {}

HttpEndpoint::~HttpEndpoint() { Stop(); }

void HttpEndpoint::SetLimits(double timeout_seconds, int threads) {
  timeout_seconds_ = timeout_seconds;
  threads_ = threads;
}

void HttpEndpoint::SetStatusPage(StatusSource status) { status_ = std::move(status); }

arrow::Result<int> HttpEndpoint::Start(const std::string& host, int port) {
  if (server_) return arrow::Status::Invalid("metrics endpoint already started");
  server_ = std::make_unique<httplib::Server>();
  // httplib's default adds SO_REUSEPORT, which would let a second process share the port
  // silently; keep SO_REUSEADDR only.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // A client that stops sending or reading is dropped after the timeout, and a fixed
  // pool serves the connections (httplib's default is one pool of
  // max(8, cores - 1) threads, so eight stalled clients used to hang /health).
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(timeout_seconds_));
  server_->set_read_timeout(timeout);
  server_->set_write_timeout(timeout);
  server_->set_keep_alive_timeout(
      std::max<time_t>(1, static_cast<time_t>(timeout_seconds_)));
  server_->set_keep_alive_max_count(100);
  const size_t threads = static_cast<size_t>(std::max(1, threads_));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    bool ok = health_();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "shutting down\n", "text/plain");
  });
  if (status_) {
    server_->Get("/", [this](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-store");
      res.set_content(status_(), "text/html; charset=utf-8");
    });
  }
  int bound = -1;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
  } else if (server_->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    server_.reset();
    return arrow::Status::IOError("cannot listen for metrics on ", host, ":", port);
  }
  auto returned = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([server = server_.get(), returned] {
    server->listen_after_bind();
    *returned = true;
  });
  // stop() is a no-op until the accept loop runs: wait for it so Stop() cannot be lost.
  while (!server_->is_running() && !*returned) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return bound;
}

void HttpEndpoint::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace foc
