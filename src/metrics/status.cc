#include "metrics/status.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

namespace foc {

namespace {

// A JSON string literal (nlohmann-json's escaping; bytes that are not UTF-8 become
// U+FFFD instead of an exception or invalid JSON).
std::string Json(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Html(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// 1536 -> "1.5 KiB" (as the CLI prints sizes).
std::string Bytes(int64_t n) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int unit = 0;
  while (v >= 1024 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? std::to_string(n) + " B" : Fixed(v, 1) + " " + kUnits[unit];
}

std::string Duration(double seconds) {
  auto s = static_cast<int64_t>(seconds);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%" PRId64 "d %02" PRId64 ":%02" PRId64 ":%02" PRId64,
                s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
  return buf;
}

struct Requests {
  int64_t calls = 0;
  int64_t errors = 0;
};

Requests Sum(const ServerStatus& s) {
  Requests r;
  for (const auto& [rpc, t] : s.rpcs) {
    r.calls += t.calls;
    r.errors += t.errors;
  }
  return r;
}

double PerSecond(int64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

// One "used of limit" row with a bar; limit 0 = unlimited (no bar).
std::string UsageRow(const char* label, int64_t used, int64_t limit) {
  std::string row = "<tr><th>" + std::string(label) + "</th><td>" + Bytes(used);
  if (limit > 0) {
    const double pct =
        std::min(100.0, 100.0 * static_cast<double>(used) / static_cast<double>(limit));
    row += " of " + Bytes(limit) + " (" + Fixed(pct, 1) + "%)";
    row += "<div class=bar><div style=\"width:" + Fixed(pct, 1) + "%\"></div></div>";
  } else {
    row += " (no limit)";
  }
  return row + "</td></tr>\n";
}

}  // namespace

int64_t ProcessResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return -1;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

double HitRatio(const StoreStats& s) {
  const int64_t all =
      s.not_modified_replies + s.patch_replies + s.full_replies + s.native_replies;
  if (all == 0) return -1;
  return static_cast<double>(s.not_modified_replies) / static_cast<double>(all);
}

std::string RenderStatusJson(const ServerStatus& s) {
  const StoreStats& st = s.store;
  const Requests req = Sum(s);
  const double hit = HitRatio(st);
  std::string out = "{";
  out += "\"version\":" + Json(s.version);
  out += ",\"endpoint\":" + Json(s.endpoint);
  out += ",\"storage\":" + Json(s.storage);
  out += ",\"uptime_seconds\":" + Fixed(s.uptime_seconds, 3);
  out += ",\"objects\":" + std::to_string(st.objects);
  out += ",\"memory\":{\"used_bytes\":" + std::to_string(st.resident_bytes) +
         ",\"limit_bytes\":" + std::to_string(s.memory_limit_bytes) +
         ",\"resident_objects\":" + std::to_string(st.resident_objects) +
         ",\"max_objects\":" + std::to_string(s.max_objects) +
         ",\"process_resident_bytes\":" + std::to_string(s.process_resident_bytes) + "}";
  out += ",\"disk\":{\"used_bytes\":" + std::to_string(st.storage.stored_bytes) +
         ",\"capacity_bytes\":" + std::to_string(s.disk_capacity_bytes) + "}";
  out += ",\"gets\":{\"not_modified\":" + std::to_string(st.not_modified_replies) +
         ",\"patch\":" + std::to_string(st.patch_replies) +
         ",\"full\":" + std::to_string(st.full_replies) +
         ",\"native\":" + std::to_string(st.native_replies) +
         ",\"hit_ratio\":" + (hit < 0 ? std::string("null") : Fixed(hit, 4)) + "}";
  out += ",\"evictions\":{\"memory\":" + std::to_string(st.memory_evictions) +
         ",\"lost_objects\":" + std::to_string(st.lost_objects) +
         ",\"refused_writes\":" + std::to_string(st.refused_writes) + "}";
  out += ",\"traffic\":{\"received_bytes\":" + std::to_string(st.bytes_written) +
         ",\"sent_bytes\":" + std::to_string(st.bytes_read) + "}";
  out += ",\"requests\":{\"total\":" + std::to_string(req.calls) +
         ",\"errors\":" + std::to_string(req.errors) +
         ",\"per_second\":" + Fixed(PerSecond(req.calls, s.uptime_seconds), 3) +
         ",\"by_rpc\":{";
  bool first = true;
  for (const auto& [rpc, t] : s.rpcs) {
    out += (first ? "" : ",") + Json(rpc) + ":{\"calls\":" + std::to_string(t.calls) +
           ",\"errors\":" + std::to_string(t.errors) + "}";
    first = false;
  }
  out += "}}}";
  return out;
}

std::string RenderStatusHtml(const ServerStatus& s) {
  const StoreStats& st = s.store;
  const Requests req = Sum(s);
  const double hit = HitRatio(st);
  std::string out =
      "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
      "<meta http-equiv=refresh content=10>"
      "<title>flame-object-cache " +
      Html(s.version) +
      "</title>\n<style>"
      "body{font:14px/1.4 "
      "system-ui,sans-serif;margin:24px;color:#1d2433;background:#f6f7f9}"
      "h1{font-size:20px;margin:0 0 4px}p.sub{margin:0 0 16px;color:#5b6475}"
      "section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px "
      "16px;"
      "margin:0 0 12px;max-width:720px}"
      "h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}"
      "th{text-align:left;font-weight:500;color:#5b6475;width:40%;padding:3px 0}"
      "td{padding:3px 0;font-variant-numeric:tabular-nums}"
      ".bar{height:8px;background:#e6e9ef;border-radius:4px;margin-top:3px;width:100%}"
      ".bar div{height:8px;background:#d9480f;border-radius:4px}"
      "</style></head><body>\n";
  out += "<h1>flame-object-cache</h1>\n<p class=sub>version " + Html(s.version) +
         " &middot; up " + Duration(s.uptime_seconds) + " &middot; " + Html(s.endpoint) +
         " &middot; " + Html(s.storage) + "</p>\n";
  out += "<section id=objects><h2>Objects</h2><table>\n";
  out += "<tr><th>Objects</th><td>" + std::to_string(st.objects) + "</td></tr>\n";
  out += "<tr><th>In memory</th><td>" + std::to_string(st.resident_objects) +
         (s.max_objects > 0 ? " of " + std::to_string(s.max_objects) : "") +
         "</td></tr>\n";
  out += "</table></section>\n";
  out += "<section id=usage><h2>Memory and disk</h2><table>\n";
  out += UsageRow("Memory (objects)", st.resident_bytes, s.memory_limit_bytes);
  out += UsageRow("Disk", st.storage.stored_bytes, s.disk_capacity_bytes);
  if (s.process_resident_bytes >= 0) {
    out += "<tr><th>Process resident</th><td>" + Bytes(s.process_resident_bytes) +
           "</td></tr>\n";
  }
  out += "</table></section>\n";
  out += "<section id=requests><h2>Requests</h2><table>\n";
  out += "<tr><th>Calls</th><td>" + std::to_string(req.calls) + " (" +
         Fixed(PerSecond(req.calls, s.uptime_seconds), 2) + "/s since start), " +
         std::to_string(req.errors) + " failed</td></tr>\n";
  for (const auto& [rpc, t] : s.rpcs) {
    out += "<tr><th>" + Html(rpc) + "</th><td>" + std::to_string(t.calls) +
           (t.errors ? " (" + std::to_string(t.errors) + " failed)" : "") +
           "</td></tr>\n";
  }
  out +=
      "<tr><th>Hit ratio</th><td>" +
      (hit < 0 ? std::string("no reads yet") : Fixed(100 * hit, 1) + "% not modified") +
      "</td></tr>\n";
  out += "<tr><th>GET replies</th><td>" + std::to_string(st.not_modified_replies) +
         " not modified, " + std::to_string(st.patch_replies) + " patch, " +
         std::to_string(st.full_replies) + " full, " + std::to_string(st.native_replies) +
         " native</td></tr>\n";
  out += "<tr><th>Received / sent</th><td>" + Bytes(st.bytes_written) + " / " +
         Bytes(st.bytes_read) + "</td></tr>\n";
  out += "</table></section>\n";
  out += "<section id=evictions><h2>Evictions</h2><table>\n";
  out += "<tr><th>From memory</th><td>" + std::to_string(st.memory_evictions) +
         "</td></tr>\n";
  out +=
      "<tr><th>Objects lost</th><td>" + std::to_string(st.lost_objects) + "</td></tr>\n";
  out += "<tr><th>Writes refused</th><td>" + std::to_string(st.refused_writes) +
         "</td></tr>\n";
  out += "</table></section>\n";
  out +=
      "<p class=sub>Machine-readable: <a href=\"/metrics\">/metrics</a> (Prometheus), "
      "<code>flame-cache info --json</code>.</p>\n</body></html>\n";
  return out;
}

}  // namespace foc
