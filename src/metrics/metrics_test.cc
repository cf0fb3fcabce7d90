#include "metrics/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

namespace foc {
namespace {

std::string Exposition() {
  RpcMetrics rpc;
  rpc.Record("DoGet", "OK", 0.0004);
  rpc.Record("DoGet", "OK", 0.02);
  rpc.Record("DoGet", "NOT_FOUND", 100);
  rpc.Record("DoPut", "RESOURCE_EXHAUSTED", 0.3);
  rpc.AddInFlight(2);
  rpc.AddInFlight(-1);
  std::string out;
  rpc.Render(&out);
  StoreStats stats;
  stats.objects = 3;
  stats.resident_bytes = 1 << 20;
  stats.not_modified_replies = 7;
  stats.storage.stored_bytes = 4096;
  RenderStoreStats(stats, &out);
  RenderProcessInfo("0.1.0", std::chrono::system_clock::now(), &out);
  RenderLimits(int64_t{1} << 30, 0, &out);
  RenderProcessMetrics(&out);
  return out;
}

TEST(MetricsTest, WatchCounters) {
  ChangeFeedStats stats;
  stats.subscribers = 2;
  stats.published = 10;
  stats.delivered = 15;
  stats.dropped = 1;
  std::string out;
  RenderChangeFeedStats(stats, &out);
  EXPECT_NE(out.find("# TYPE foc_watch_subscribers gauge\nfoc_watch_subscribers 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("foc_watch_changes_total 10\n"), std::string::npos);
  EXPECT_NE(out.find("foc_watch_deliveries_total 15\n"), std::string::npos);
  EXPECT_NE(out.find("foc_watch_dropped_total 1\n"), std::string::npos);
}

TEST(MetricsTest, CountsAndHistograms) {
  std::string out = Exposition();
  EXPECT_NE(out.find("foc_rpc_requests_total{rpc=\"DoGet\",code=\"OK\"} 2\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_rpc_requests_total{rpc=\"DoGet\",code=\"NOT_FOUND\"} 1\n"),
            std::string::npos);
  // Bounds print as the shortest decimal that reads back exactly.
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"0.0005\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"0.025\"} 2\n"),
            std::string::npos);
  EXPECT_EQ(out.find("00000000"), std::string::npos) << out;
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"60\"} 2\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_rpc_duration_seconds_count{rpc=\"DoGet\"} 3\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_rpc_in_flight 1\n"), std::string::npos);
  EXPECT_NE(out.find("foc_objects 3\n"), std::string::npos);
  EXPECT_NE(out.find("foc_resident_bytes 1048576\n"), std::string::npos);
  EXPECT_NE(out.find("foc_get_replies_total{kind=\"not_modified\"} 7\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_storage_bytes 4096\n"), std::string::npos);
  EXPECT_NE(out.find("foc_build_info{version=\"0.1.0\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, LimitsAndProcessMetrics) {
  std::string out = Exposition();
  EXPECT_NE(out.find("foc_memory_limit_bytes 1073741824\n"), std::string::npos);
  EXPECT_NE(out.find("foc_disk_capacity_bytes 0\n"), std::string::npos);
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_start_time_seconds ",
                           "process_open_fds ", "process_max_fds "}) {
    EXPECT_NE(out.find(std::string("\n") + name), std::string::npos) << name;
  }
  // This process: resident memory above 1 MiB, at least stdin/stdout/stderr open, started
  // after 2020 and not in the future.
  auto value = [&](const std::string& name) {
    auto at = out.find("\n" + name + " ");
    return std::strtod(out.c_str() + at + name.size() + 2, nullptr);
  };
  EXPECT_GT(value("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(value("process_open_fds"), 3);
  const double now = static_cast<double>(time(nullptr));
  EXPECT_GT(value("process_start_time_seconds"), 1.577e9);
  EXPECT_LE(value("process_start_time_seconds"), now + 1);
}

TEST(MetricsTest, EscapesLabels) {
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

// The exposition passes Prometheus' own linter (Debian package `prometheus`).
TEST(MetricsTest, PromtoolAcceptsTheExposition) {
  char path[] = "/tmp/foc-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << Exposition();
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof(buf), p)) output += buf;
  int rc = pclose(p);
  unlink(path);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace foc
