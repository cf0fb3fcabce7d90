// A snapshot of the server's state for people and tools: the status page at `/` of the
// metrics endpoint (HTML) and the Flight action INFO (JSON; `flame-cache info`). Both are
// rendered from the same ServerStatus, so they always agree. docs/operations.md and
// docs/protocol.md describe the fields.
//
// Cheap and bounded by design: a snapshot reads counters the store and the RPC metrics
// keep anyway (no key is listed, no payload touched); its size does not grow with the
// number of objects (only with the handful of RPC names).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "metrics/metrics.h"
#include "store/store.h"

namespace foc {

struct ServerStatus {
  std::string version;        ///< server version (FOC_VERSION)
  std::string endpoint;       ///< advertised Flight endpoint
  std::string storage;        ///< where objects live, e.g. "disk /var/lib/flame/cache"
  double uptime_seconds = 0;  ///< since the process started serving
  int64_t memory_limit_bytes = 0;       ///< cache.eviction.max_memory; 0 = unlimited
  int64_t max_objects = 0;              ///< cache.eviction.max_objects; 0 = unlimited
  int64_t disk_capacity_bytes = 0;      ///< cache.capacity; 0 = unlimited
  int64_t process_resident_bytes = -1;  ///< RSS of the process; -1 = unknown
  StoreStats store;
  std::map<std::string, RpcMetrics::Totals> rpcs;  ///< completed calls per RPC
};

/// Resident set size of this process from /proc/self/statm; -1 if unavailable.
int64_t ProcessResidentBytes();

/// Share of versioned GET replies that were "not modified" (the client's copy was
/// current); negative when there was no reply yet.
double HitRatio(const StoreStats& stats);

/// The INFO document: one JSON object (docs/protocol.md lists the fields).
std::string RenderStatusJson(const ServerStatus& status);

/// The status page: one self-contained HTML document (inline CSS, no scripts, no
/// external assets; refreshes itself every 10 s).
std::string RenderStatusHtml(const ServerStatus& status);

}  // namespace foc
