// WATCH: the server side of the DoExchange subscription (docs/protocol.md, "WATCH").
//
// A call subscribes to the store's change feed, then sends the resume snapshot (the
// current version of each matching key newer than what the client named), `ready`, and
// from then on every change in commit order per key, a heartbeat when idle, until the
// client cancels, the server shuts down, or the subscriber falls behind (dropped with
// `resync` and UNAVAILABLE "RESOURCE_EXHAUSTED: ...").
//
// Each call holds one gRPC server thread for its lifetime (Flight's synchronous API), so
// subscriptions are limited per connection and per server.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <arrow/flight/server.h>

#include "base/mutex.h"
#include "key/key.h"
#include "protocol/watch_protocol.h"

namespace foc {

class Store;

/// Limits of WATCH (defaults are the documented server limits).
struct WatchLimits {
  int64_t max_patterns = 64;              ///< patterns per call
  int64_t max_since = 100000;             ///< resume entries per call
  int64_t default_queue = 1024;           ///< changes buffered per subscriber
  int64_t max_queue = 65536;              ///< largest queue a client may ask for
  int64_t default_heartbeat_ms = 1000;    ///< idle heartbeat interval
  int64_t min_heartbeat_ms = 50;          ///< shortest interval a client may ask for
  int64_t max_heartbeat_ms = 60000;       ///< longest interval a client may ask for
  int64_t max_calls_per_connection = 64;  ///< concurrent WATCH calls per client peer
  int64_t max_calls = 1024;               ///< concurrent WATCH calls per server
};

/// Validates what a subscription asks for (every pattern and resume key parsed, within
/// the limits). The single point where a WATCH request is checked before anything is
/// subscribed: authorization of the patterns hooks in here.
arrow::Status ValidateWatchRequest(const arrow::flight::ServerCallContext& context,
                                   const WatchRequest& request, const WatchLimits& limits,
                                   std::vector<KeyPattern>* patterns);

/// Serves WATCH calls of one server: tracks the calls alive per peer.
class WatchService {
 public:
  explicit WatchService(WatchLimits limits = {}) : limits_(limits) {}

  /// Runs one WATCH call to its end (the descriptor command was `WATCH:...`).
  arrow::Status Serve(const arrow::flight::ServerCallContext& context, Store& store,
                      std::string_view command,
                      arrow::flight::FlightMessageWriter* writer);

  /// WATCH calls alive now.
  int64_t active_calls() const;

 private:
  arrow::Status Admit(const std::string& peer);
  void Release(const std::string& peer);

  const WatchLimits limits_;
  mutable Mutex mu_;
  std::map<std::string, int64_t> calls_per_peer_ FOC_GUARDED_BY(mu_);
  int64_t calls_ FOC_GUARDED_BY(mu_) = 0;
};

}  // namespace foc
