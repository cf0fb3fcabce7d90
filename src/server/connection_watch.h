// The connection watchdog (docs/security.md, "Resource limits"): once a second it looks
// at the process's accepted TCP sockets (/proc/self/fd) and closes, with shutdown(2):
//
//   * Flight connections whose oldest stream moved no message for `stalled_seconds`
//     (a DoPut that sends only a schema, a DoGet whose reader stopped reading);
//   * Flight connections without a call for `idle_seconds`;
//   * Flight connections beyond `max_connections`, idle ones first, then the newest;
//   * metrics/health connections open longer than `http_lifetime_seconds` (a client that
//     trickles a request byte by byte never reaches a read timeout).
//
// Why sockets and not gRPC options: the pyarrow wheel links its gRPC privately, so
// grpc::ServerBuilder (keepalive, GRPC_ARG_MAX_CONNECTION_IDLE_MS/AGE_MS, max concurrent
// streams) is out of reach through FlightServerOptions::builder_hook. shutdown(2) of a
// socket gRPC owns is safe: gRPC sees the connection end, fails its streams and closes
// the descriptor itself (the watchdog never closes a descriptor).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace foc {

class CallGuardFactory;

struct ConnectionWatchOptions {
  int flight_port = 0;
  int http_port = 0;  ///< 0 = no metrics endpoint
  double stalled_seconds = 120;
  double idle_seconds = 300;
  int64_t max_connections = 1024;
  double http_lifetime_seconds = 10;
  double tick_seconds = 1;
};

/// An accepted TCP socket of this process.
struct AcceptedSocket {
  int fd = -1;
  int local_port = 0;
  std::string peer;  ///< `ipv4:1.2.3.4:5` or `ipv6:[::1]:5` (IPv4-mapped → ipv4)
};

/// Every connected TCP socket of this process (skips listeners).
std::vector<AcceptedSocket> ListAcceptedSockets();

class ConnectionWatch {
 public:
  ConnectionWatch(ConnectionWatchOptions options,
                  std::shared_ptr<CallGuardFactory> guard);
  ~ConnectionWatch();
  void Start();
  void Stop();
  /// One pass (the thread runs this every tick); public for tests.
  void RunOnce();

 private:
  void Close(const AcceptedSocket& s, const std::string& why, const std::string& detail);

  const ConnectionWatchOptions options_;
  std::shared_ptr<CallGuardFactory> guard_;
  std::map<std::string, int64_t> first_seen_;  // "port/peer" -> steady ns
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace foc
