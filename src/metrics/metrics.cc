#include "metrics/metrics.h"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace foc {

namespace {

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

// The shortest decimal that reads back as `v` (0.0005, not 0.00050000000000000001),
// without an exponent when one is not needed (60, not 6e+01).
std::string Number(double v) {
  char buf[64];
  for (bool allow_exponent : {false, true}) {
    for (int precision = 1; precision <= 17; ++precision) {
      std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
      if (std::strtod(buf, nullptr) == v &&
          (allow_exponent || std::string_view(buf).find('e') == std::string_view::npos)) {
        return buf;
      }
    }
  }
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void Sample(std::string* out, const char* name, int64_t value, const char* labels = "") {
  *out += name;
  *out += labels;
  *out += ' ';
  *out += std::to_string(value);
  *out += '\n';
}

}  // namespace

std::string EscapeLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RpcMetrics::Record(std::string_view rpc, std::string_view code, double seconds) {
  MutexLock lock(&mu_);
  ++calls_[{std::string(rpc), std::string(code)}];
  Histogram& h = latency_[std::string(rpc)];
  size_t i = 0;
  while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
  if (i < kLatencyBuckets.size()) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void RpcMetrics::AddInFlight(int delta) {
  MutexLock lock(&mu_);
  in_flight_ += delta;
}

std::map<std::string, RpcMetrics::Totals> RpcMetrics::TotalsByRpc() const {
  MutexLock lock(&mu_);
  std::map<std::string, Totals> out;
  for (const auto& [key, count] : calls_) {
    Totals& t = out[key.first];
    t.calls += count;
    if (key.second != "OK") t.errors += count;
  }
  return out;
}

void RpcMetrics::Render(std::string* out) const {
  MutexLock lock(&mu_);
  Header(out, "foc_rpc_requests_total", "counter",
         "Flight calls completed, by RPC and gRPC status code.");
  for (const auto& [key, count] : calls_) {
    std::string labels = "{rpc=\"" + EscapeLabel(key.first) + "\",code=\"" +
                         EscapeLabel(key.second) + "\"}";
    Sample(out, "foc_rpc_requests_total", count, labels.c_str());
  }
  Header(out, "foc_rpc_in_flight", "gauge", "Flight calls running now.");
  Sample(out, "foc_rpc_in_flight", in_flight_);
  Header(out, "foc_rpc_duration_seconds", "histogram",
         "Flight call duration from the start of the call to its completion, by RPC.");
  for (const auto& [rpc, h] : latency_) {
    std::string rpc_label = "rpc=\"" + EscapeLabel(rpc) + "\"";
    int64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      std::string labels =
          "{" + rpc_label + ",le=\"" + Number(kLatencyBuckets[i]) + "\"}";
      Sample(out, "foc_rpc_duration_seconds_bucket", cumulative, labels.c_str());
    }
    std::string inf = "{" + rpc_label + ",le=\"+Inf\"}";
    Sample(out, "foc_rpc_duration_seconds_bucket", h.count, inf.c_str());
    *out += "foc_rpc_duration_seconds_sum{" + rpc_label + "} " + Number(h.sum) + "\n";
    std::string plain = "{" + rpc_label + "}";
    Sample(out, "foc_rpc_duration_seconds_count", h.count, plain.c_str());
  }
}

void RenderStoreStats(const StoreStats& s, std::string* out) {
  Header(out, "foc_objects", "gauge", "Objects readable now.");
  Sample(out, "foc_objects", s.objects);
  Header(out, "foc_resident_objects", "gauge", "Objects held in memory.");
  Sample(out, "foc_resident_objects", s.resident_objects);
  Header(out, "foc_resident_bytes", "gauge",
         "Memory charge of the objects held in memory.");
  Sample(out, "foc_resident_bytes", s.resident_bytes);
  Header(out, "foc_memory_evictions_total", "counter",
         "Objects dropped from memory for space.");
  Sample(out, "foc_memory_evictions_total", s.memory_evictions);
  Header(out, "foc_lost_objects_total", "counter",
         "Memory-only storage: objects evicted and therefore gone.");
  Sample(out, "foc_lost_objects_total", s.lost_objects);
  Header(
      out, "foc_refused_writes_total", "counter",
      "Memory-only storage with memory_full: refuse: writes refused for lack of memory.");
  Sample(out, "foc_refused_writes_total", s.refused_writes);
  Header(out, "foc_get_replies_total", "counter",
         "Versioned GET replies by kind (not_modified, patch, full, native).");
  Sample(out, "foc_get_replies_total", s.not_modified_replies, "{kind=\"not_modified\"}");
  Sample(out, "foc_get_replies_total", s.patch_replies, "{kind=\"patch\"}");
  Sample(out, "foc_get_replies_total", s.full_replies, "{kind=\"full\"}");
  Sample(out, "foc_get_replies_total", s.native_replies, "{kind=\"native\"}");
  Header(out, "foc_payload_received_bytes_total", "counter",
         "Payload bytes accepted by PUT and PATCH.");
  Sample(out, "foc_payload_received_bytes_total", s.bytes_written);
  Header(out, "foc_payload_sent_bytes_total", "counter", "Payload bytes sent by GET.");
  Sample(out, "foc_payload_sent_bytes_total", s.bytes_read);
  Header(out, "foc_storage_bytes", "gauge",
         "Bytes of object files on disk (bases and deltas).");
  Sample(out, "foc_storage_bytes", s.storage.stored_bytes);
  Header(out, "foc_storage_capacity_bytes", "gauge",
         "Configured disk capacity limit; 0 means unlimited.");
  Sample(out, "foc_storage_capacity_bytes", s.storage.capacity_bytes);
}

void RenderProcessInfo(std::string_view version,
                       std::chrono::system_clock::time_point start, std::string* out) {
  Header(out, "foc_build_info", "gauge",
         "Always 1; the label carries the server version.");
  std::string labels = "{version=\"" + EscapeLabel(version) + "\"}";
  Sample(out, "foc_build_info", 1, labels.c_str());
  Header(out, "foc_start_time_seconds", "gauge",
         "Start time of the process, Unix seconds.");
  double t = std::chrono::duration<double>(start.time_since_epoch()).count();
  *out += "foc_start_time_seconds " + Number(t) + "\n";
}

void RenderLimits(int64_t memory_limit_bytes, int64_t disk_capacity_bytes,
                  std::string* out) {
  Header(
      out, "foc_memory_limit_bytes", "gauge",
      "Configured memory limit (cache.eviction.max_memory); compare foc_resident_bytes.");
  Sample(out, "foc_memory_limit_bytes", memory_limit_bytes);
  Header(out, "foc_disk_capacity_bytes", "gauge",
         "Configured disk capacity (cache.capacity); 0 means unlimited. Compare "
         "foc_storage_bytes.");
  Sample(out, "foc_disk_capacity_bytes", disk_capacity_bytes);
}

void RenderProcessMetrics(std::string* out) {
  // The standard process collector's names (Prometheus client libraries), from /proc.
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses and may contain spaces).
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  // f[0] is field 3 (state): field n is f[n - 3].
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double cpu =
      (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) /
      ticks;  // utime + stime
  const double start_ticks = std::strtod(f[19].c_str(), nullptr);
  const double vsize = std::strtod(f[20].c_str(), nullptr);
  const double rss = std::strtod(f[21].c_str(), nullptr) * page;
  double boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string line; std::getline(proc_stat, line);) {
    if (line.starts_with("btime ")) boot_time = std::strtod(line.c_str() + 6, nullptr);
  }
  int64_t open_fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++open_fds;
  }
  int64_t max_fds = -1;
  std::ifstream limits("/proc/self/limits");
  for (std::string line; std::getline(limits, line);) {
    if (line.starts_with("Max open files")) {
      std::istringstream words(line.substr(14));
      std::string soft;
      words >> soft;
      max_fds = soft == "unlimited" ? -1 : std::strtoll(soft.c_str(), nullptr, 10);
    }
  }
  Header(out, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
  *out += "process_cpu_seconds_total " + Number(cpu) + "\n";
  Header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  *out += "process_resident_memory_bytes " + Number(rss) + "\n";
  Header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  *out += "process_virtual_memory_bytes " + Number(vsize) + "\n";
  Header(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
  *out += "process_start_time_seconds " + Number(boot_time + start_ticks / ticks) + "\n";
  Header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  Sample(out, "process_open_fds", open_fds);
  if (max_fds >= 0) {
    Header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    Sample(out, "process_max_fds", max_fds);
  }
}

void RenderChangeFeedStats(const ChangeFeedStats& s, std::string* out) {
  Header(out, "foc_watch_subscribers", "gauge", "WATCH subscriptions alive now.");
  Sample(out, "foc_watch_subscribers", s.subscribers);
  Header(out, "foc_watch_changes_total", "counter",
         "Committed changes published to the change feed.");
  Sample(out, "foc_watch_changes_total", s.published);
  Header(out, "foc_watch_deliveries_total", "counter",
         "Changes queued to WATCH subscribers (one per matching subscriber).");
  Sample(out, "foc_watch_deliveries_total", s.delivered);
  Header(out, "foc_watch_dropped_total", "counter",
         "WATCH subscribers dropped because they fell behind (told to resync).");
  Sample(out, "foc_watch_dropped_total", s.dropped);
}

}  // namespace foc
