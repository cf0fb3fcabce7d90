#include "protocol/watch_protocol.h"

#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(WatchProtocolTest, RequestRoundTrips) {
  WatchRequest r;
  r.patterns = {"app/*", "app/s", "app/s/o"};
  r.since = {{"app/s/o", 41}, {"app/t/x:y", 0}};
  r.snapshot = false;
  r.max_queue = 64;
  r.heartbeat_ms = 250;
  ASSERT_OK_AND_ASSIGN(auto cmd, EncodeWatchCommand(r));
  EXPECT_TRUE(std::string_view(cmd).starts_with("WATCH:"));
  ASSERT_OK_AND_ASSIGN(auto back, DecodeWatchCommand(cmd));
  EXPECT_EQ(back, r);

  WatchRequest minimal;
  minimal.patterns = {"a/s"};
  ASSERT_OK_AND_ASSIGN(cmd, EncodeWatchCommand(minimal));
  ASSERT_OK_AND_ASSIGN(back, DecodeWatchCommand(cmd));
  EXPECT_EQ(back, minimal);
  EXPECT_TRUE(back.snapshot);
}

TEST(WatchProtocolTest, RejectsMalformedRequests) {
  EXPECT_TRUE(DecodeWatchCommand("PATCH:a/s/o").status().IsInvalid());
  EXPECT_TRUE(DecodeWatchCommand("WATCH:not bson").status().IsInvalid());
  WatchRequest none;
  ASSERT_OK_AND_ASSIGN(auto cmd, EncodeWatchCommand(none));
  auto st = DecodeWatchCommand(cmd).status();
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("no key pattern"), std::string::npos);
}

TEST(WatchProtocolTest, MessagesRoundTrip) {
  for (const WatchMessage& m : {WatchMessage{"change", "a/s/o", 7, "patch", "e-1", ""},
                                WatchMessage{"change", "a/s/o", 0, "delete", "e-1", ""},
                                WatchMessage{"ready", "", 0, "", "e-1", ""},
                                WatchMessage{"heartbeat", "", 0, "", "", ""},
                                WatchMessage{"resync", "", 0, "", "", "fell behind"}}) {
    ASSERT_OK_AND_ASSIGN(auto buf, EncodeWatchMessage(m));
    ASSERT_OK_AND_ASSIGN(auto back, DecodeWatchMessage(buf->ToString()));
    EXPECT_EQ(back, m);
  }
  EXPECT_TRUE(DecodeWatchMessage("junk").status().IsInvalid());
}

}  // namespace
}  // namespace foc
