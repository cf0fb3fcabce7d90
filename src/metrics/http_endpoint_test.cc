#include "metrics/http_endpoint.h"

#include <atomic>

#include <gtest/gtest.h>
#include <httplib.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(HttpEndpointTest, ServesMetricsAndHealth) {
  std::atomic<bool> healthy{true};
  HttpEndpoint endpoint([] { return std::string("foc_up 1\n"); },
                        [&] { return healthy.load(); });
  ASSERT_OK_AND_ASSIGN(int port, endpoint.Start("127.0.0.1", 0));
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "foc_up 1\n");
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  res = client.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  healthy = false;
  res = client.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  res = client.Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  endpoint.Stop();
  endpoint.Stop();
  EXPECT_FALSE(httplib::Client("127.0.0.1", port).Get("/health"));
}

TEST(HttpEndpointTest, StatusPageAtRootOnlyWhenSet) {
  HttpEndpoint plain([] { return std::string(); }, [] { return true; });
  ASSERT_OK_AND_ASSIGN(int port, plain.Start("127.0.0.1", 0));
  auto res = httplib::Client("127.0.0.1", port).Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  plain.Stop();

  HttpEndpoint with_page([] { return std::string(); }, [] { return true; });
  with_page.SetStatusPage([] { return std::string("<html>hi</html>"); });
  ASSERT_OK_AND_ASSIGN(port, with_page.Start("127.0.0.1", 0));
  res = httplib::Client("127.0.0.1", port).Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "<html>hi</html>");
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
}

TEST(HttpEndpointTest, BusyPortIsAnError) {
  HttpEndpoint a([] { return std::string(); }, [] { return true; });
  ASSERT_OK_AND_ASSIGN(int port, a.Start("127.0.0.1", 0));
  HttpEndpoint b([] { return std::string(); }, [] { return true; });
  EXPECT_STATUS(IOError, "cannot listen for metrics", b.Start("127.0.0.1", port));
}

}  // namespace
}  // namespace foc
