// Server metrics in the Prometheus text exposition format (version 0.0.4).
//
// RpcMetrics counts completed Flight calls by RPC and gRPC status and keeps a latency
// histogram per RPC; it is fed by the Flight middleware (src/flight/metrics_middleware.h)
// and is safe to use from any thread. RenderStoreStats turns the store's counters into
// gauges and counters. Metric names start with `foc_`; docs/operations.md lists them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/mutex.h"
#include "store/object_store.h"

namespace foc {

/// Upper bounds (seconds) of the latency histogram buckets; +Inf is implicit.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60};

class RpcMetrics {
 public:
  /// Records one completed call: `rpc` e.g. "DoGet", `code` a gRPC status name e.g. "OK".
  void Record(std::string_view rpc, std::string_view code, double seconds);
  /// Counts a call that is running now (+1 at start, -1 at completion).
  void AddInFlight(int delta);

  /// Appends this registry's metrics to `out`.
  void Render(std::string* out) const;

  /// Completed calls and those of them that failed (status other than OK), per RPC.
  struct Totals {
    int64_t calls = 0;
    int64_t errors = 0;
  };
  std::map<std::string, Totals> TotalsByRpc() const;

 private:
  struct Histogram {
    std::array<int64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative counts
    int64_t count = 0;
    double sum = 0;
  };
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, int64_t> calls_ FOC_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ FOC_GUARDED_BY(mu_);
  int64_t in_flight_ FOC_GUARDED_BY(mu_) = 0;
};

/// Appends the store's counters as `foc_*` metrics to `out`.
void RenderStoreStats(const StoreStats& stats, std::string* out);

/// Appends the change feed's (WATCH) counters as `foc_watch_*` metrics to `out`.
void RenderChangeFeedStats(const ChangeFeedStats& stats, std::string* out);

/// Appends build and process metrics (`foc_build_info`, `foc_start_time_seconds`).
void RenderProcessInfo(std::string_view version,
                       std::chrono::system_clock::time_point start, std::string* out);

/// Appends `foc_memory_limit_bytes` and `foc_disk_capacity_bytes` (configured limits).
void RenderLimits(int64_t memory_limit_bytes, int64_t disk_capacity_bytes,
                  std::string* out);

/// Appends the standard `process_*` metrics (CPU seconds, resident and virtual memory,
/// start time, open and maximum file descriptors) of this process, read from /proc.
void RenderProcessMetrics(std::string* out);

/// Escapes a label value for the exposition format (backslash, quote, newline).
std::string EscapeLabel(std::string_view value);

}  // namespace foc
