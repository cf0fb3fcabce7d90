#include "config/security_config.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(SecurityConfigTest, DefaultsAreOnAndNoAuth) {
  Config c;
  ASSERT_OK(ApplyYaml("cache:\n  storage: none\n", "f", &c));
  EXPECT_FALSE(c.auth);
  EXPECT_EQ(c.limits.max_concurrent_uploads, 64);
  EXPECT_EQ(c.limits.upload_memory, 0);  // automatic
  EXPECT_GT(c.limits.stalled_stream_seconds, 0);
}

TEST(SecurityConfigTest, ParsesLimitsAndAuth) {
  Config c;
  ASSERT_OK(
      ApplyYaml("cache:\n"
                "  limits:\n"
                "    upload_memory: 256M\n"
                "    max_concurrent_calls: 100\n"
                "    max_concurrent_uploads: 10\n"
                "    max_connections: 50\n"
                "    idle_connection_seconds: 30\n"
                "    stalled_stream_seconds: 2.5\n"
                "    http_timeout_seconds: 1\n"
                "    http_threads: 3\n"
                "  auth:\n"
                "    tokens_file: /etc/flame/tokens.yaml\n"
                "    anonymous: read\n",
                "f", &c));
  EXPECT_EQ(c.limits.upload_memory, 256 << 20);
  EXPECT_EQ(c.limits.max_concurrent_calls, 100);
  EXPECT_EQ(c.limits.max_concurrent_uploads, 10);
  EXPECT_EQ(c.limits.max_connections, 50);
  EXPECT_EQ(c.limits.idle_connection_seconds, 30);
  EXPECT_EQ(c.limits.stalled_stream_seconds, 2.5);
  EXPECT_EQ(c.limits.http_timeout_seconds, 1);
  EXPECT_EQ(c.limits.http_threads, 3);
  ASSERT_TRUE(c.auth);
  EXPECT_EQ(c.auth->tokens_file, "/etc/flame/tokens.yaml");
  EXPECT_EQ(c.auth->anonymous, "read");
  EXPECT_TRUE(c.warnings.empty());
  // --check-config prints them and they load back.
  const std::string text = FormatConfig(c);
  Config d;
  ASSERT_OK(ApplyYaml(text, "formatted", &d)) << text;
  EXPECT_EQ(FormatConfig(d), text);
}

TEST(SecurityConfigTest, BadValuesNameTheKey) {
  for (const char* yaml : {
           "cache:\n  limits:\n    max_concurrent_calls: 0\n",
           "cache:\n  limits:\n    upload_memory: 10\n",
           "cache:\n  limits:\n    stalled_stream_seconds: -1\n",
           "cache:\n  limits:\n    http_threads: many\n",
           "cache:\n  auth:\n    anonymous: everyone\n",
           "cache:\n  limits: 5\n",
       }) {
    Config c;
    auto st = ApplyYaml(yaml, "f", &c);
    ASSERT_FALSE(st.ok()) << yaml;
    EXPECT_NE(st.message().find("cache."), std::string::npos) << st.message();
  }
  Config c;
  ASSERT_OK(ApplyYaml("cache:\n  limits:\n    bogus: 1\n", "f", &c));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("cache.limits.bogus"), std::string::npos);
}

}  // namespace
}  // namespace foc
