// Limits on what clients may hold of the server's threads and connections
// (docs/security.md, "Resource limits"), as a Flight server middleware:
//
//   * at most `max_calls` calls at once (each Flight call holds a gRPC thread), of which
//     at most `max_uploads` DoPut streams; a call beyond is refused at once with
//     UNAVAILABLE "RESOURCE_EXHAUSTED: …" (the project's signal, see flight/status.h);
//   * every call is recorded with its peer and when it last moved a message, so that the
//     connection watchdog (server/connection_watch.h) can cut stalled streams and close
//     idle connections.
//
// Arrow Flight exposes no gRPC server option through its public API (the wheel's gRPC is
// linked privately into libarrow_flight, so `FlightServerOptions::builder_hook` cannot be
// used to call grpc::ServerBuilder); these limits therefore live in the middleware and
// the watchdog, not in gRPC channel arguments. See docs/security.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <arrow/flight/server_middleware.h>
#include <arrow/status.h>

#include "base/mutex.h"

namespace arrow::flight {
class ServerCallContext;
}

namespace foc {

struct CallGuardOptions {
  int64_t max_calls = 512;   ///< 0 = unlimited
  int64_t max_uploads = 64;  ///< DoPut streams; 0 = unlimited
};

/// One call in flight.
struct CallRecord {
  std::string peer;    ///< gRPC peer, normalised (`ipv4:1.2.3.4:5`, `ipv6:[::1]:5`)
  std::string method;  ///< "DoPut", "DoGet", …
  bool streaming = false;
  std::atomic<int64_t> last_progress_ns{0};  ///< steady clock, ns
  /// Called whenever a message of the stream moved. A long-lived stream that may idle
  /// legitimately (a change feed) must call it at least every stalled_stream_seconds,
  /// e.g. with each heartbeat, or its connection is closed as stalled.
  void Touch();
};

/// What the watchdog needs to know of one peer.
struct PeerActivity {
  int64_t active_calls = 0;
  /// Steady-clock ns of the last call start or end, or of the last message moved.
  int64_t last_active_ns = 0;
  /// Steady-clock ns since the oldest streaming call moved no message; 0 = none stalls.
  int64_t oldest_stream_progress_ns = 0;
};

class CallGuardFactory : public arrow::flight::ServerMiddlewareFactory {
 public:
  static constexpr const char* kKey = "foc-guard";

  explicit CallGuardFactory(CallGuardOptions options);

  arrow::Status StartCall(
      const arrow::flight::CallInfo& info,
      const arrow::flight::ServerCallContext& context,
      std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) override;

  /// The record of the call of `context`, or null when the guard is not installed.
  static std::shared_ptr<CallRecord> RecordOf(
      const arrow::flight::ServerCallContext& context);

  /// Activity by peer (calls in flight and peers seen recently).
  std::map<std::string, PeerActivity> Snapshot() const;
  /// Forgets peers with no call in flight that were last active before `before_ns`.
  void Forget(int64_t before_ns);

  int64_t calls_in_flight() const;
  int64_t refused() const { return refused_.load(); }
  /// Counts a stream the watchdog cut (rendered as foc_streams_cut_total).
  void CountCut(const std::string& why);

  /// Prometheus text of the guard's counters.
  void Render(std::string* out) const;

  /// Normalises a gRPC peer string (`ipv6:%5B::1%5D:5` → `ipv6:[::1]:5`).
  static std::string NormalisePeer(const std::string& peer);

  static int64_t NowNs();

 private:
  friend class CallGuardMiddleware;
  void Finish(const std::shared_ptr<CallRecord>& record);

  const CallGuardOptions options_;
  mutable Mutex mu_;
  std::vector<std::shared_ptr<CallRecord>> calls_ FOC_GUARDED_BY(mu_);
  std::map<std::string, int64_t> last_seen_ FOC_GUARDED_BY(mu_);  // peer -> steady ns
  int64_t uploads_ FOC_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> cut_stalled_{0};
  std::atomic<int64_t> cut_idle_{0};
  std::atomic<int64_t> cut_excess_{0};
  std::atomic<int64_t> cut_http_{0};
};

}  // namespace foc
