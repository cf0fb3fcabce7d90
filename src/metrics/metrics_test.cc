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
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"0."
                     "00050000000000000001\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("foc_rpc_duration_seconds_bucket{rpc=\"DoGet\",le=\"0."
                     "025000000000000001\"} 2\n"),
            std::string::npos);
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
