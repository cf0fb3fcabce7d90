// CacheClient::Watch and WaitForChange through a real in-process server on port 0.
#include "flame_object_cache/watch_stream.h"

#include <thread>

#include <gtest/gtest.h>

#include "flame_object_cache/cache_client.h"
#include "testing/gtest_util.h"
#include "testing/test_server.h"

namespace foc {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

class WatchStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start());
    ClientOptions options;
    options.endpoint = server_.endpoint();
    ASSERT_OK_AND_ASSIGN(client_, CacheClient::Connect(options));
  }
  void TearDown() override {
    client_.reset();
    ASSERT_OK(server_.Stop());
  }
  static WatchRequest Request(std::string pattern,
                              std::vector<std::pair<std::string, uint64_t>> since = {}) {
    WatchRequest r;
    r.patterns = {std::move(pattern)};
    r.since = std::move(since);
    r.snapshot = false;
    return r;
  }

  testing::TestServer server_;
  std::unique_ptr<CacheClient> client_;
};

TEST_F(WatchStreamTest, ReportsPutsPatchesAndDeletesAfterItReturns) {
  ASSERT_OK_AND_ASSIGN(auto stream, client_->Watch(Request("app/s")));
  const std::string epoch = server_.store->epoch();
  EXPECT_EQ(stream->epoch(), epoch);
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/o", Buf("v1")));
  ASSERT_OK_AND_ASSIGN(ref, client_->Patch(ref, Buf("+")));
  ASSERT_OK(client_->Delete("app/s"));
  ASSERT_OK_AND_ASSIGN(auto e, stream->Next());
  EXPECT_EQ(e, (WatchEvent{"app/s/o", 1, "put", epoch}));
  ASSERT_OK_AND_ASSIGN(e, stream->Next());
  EXPECT_EQ(e, (WatchEvent{"app/s/o", 2, "patch", epoch}));
  ASSERT_OK_AND_ASSIGN(e, stream->Next());
  EXPECT_TRUE(e.deleted());
  EXPECT_EQ(e.version, 2u);
}

TEST_F(WatchStreamTest, SnapshotComesFirstAndCancelEndsABlockedNext) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/o", Buf("v1")));
  ASSERT_OK_AND_ASSIGN(ref, client_->Patch(ref, Buf("+")));
  ASSERT_OK_AND_ASSIGN(auto stream, client_->Watch(Request("app/*", {{"app/s/o", 1}})));
  ASSERT_OK_AND_ASSIGN(auto e, stream->Next());
  EXPECT_EQ(e.kind, kWatchKindCurrent);
  EXPECT_EQ(e.version, 2u);
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    stream->Cancel();
  });
  auto next = stream->Next();
  canceller.join();
  EXPECT_TRUE(next.status().IsCancelled()) << next.status();
}

TEST_F(WatchStreamTest, InvalidRequestsFailAtWatch) {
  auto bad = client_->Watch(Request("app/.."));
  EXPECT_TRUE(bad.status().IsInvalid()) << bad.status();
}

TEST_F(WatchStreamTest, WaitForChange) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/o", Buf("v1")));
  ASSERT_OK_AND_ASSIGN(auto none, client_->WaitForChange(ref, 100ms));
  EXPECT_FALSE(none.has_value());
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    ASSERT_OK(client_->Patch(ref, Buf("+")).status());
  });
  ASSERT_OK_AND_ASSIGN(auto changed, client_->WaitForChange(ref, 60s));
  writer.join();
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->version, 2u);
  EXPECT_EQ(changed->key, ref.key);
  // Already behind: returns at once with the current version.
  ASSERT_OK_AND_ASSIGN(changed, client_->WaitForChange(ref, 60s));
  EXPECT_EQ(changed->version, 2u);
  // Version 0: waits for the object to exist.
  ASSERT_OK_AND_ASSIGN(none,
                       client_->WaitForChange(client_->RefFor("app/s/new", 0), 100ms));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK(client_->Delete("app/s/o"));
  auto gone = client_->WaitForChange(*changed, 60s);
  EXPECT_TRUE(gone.status().IsKeyError()) << gone.status();
}

TEST_F(WatchStreamTest, WaitForChangeRetriesWhileTheServerRefusesUntilItsDeadline) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/o", Buf("v1")));
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    server_.store->changes()
        .Close();  // as a shutdown does: every watch ends, UNAVAILABLE
  });
  auto changed = client_->WaitForChange(ref, 300ms);
  writer.join();
  // UNAVAILABLE is retried (resubscribing); the feed stays closed, so every attempt fails
  // until the deadline: no change, and no error.
  ASSERT_OK(changed.status());
  EXPECT_FALSE(changed->has_value());
}

TEST_F(WatchStreamTest, SubscribedCacheAnswersHitsWithoutRoundTrips) {
  ClientOptions options;
  options.endpoint = server_.endpoint();
  ASSERT_OK_AND_ASSIGN(auto writer, CacheClient::Connect(options));
  ASSERT_OK_AND_ASSIGN(auto ref, writer->Put("app/s/o", Buf("v1")));
  EXPECT_TRUE(client_->SubscribeCache({"app/..."}).IsInvalid());
  ASSERT_OK(client_->SubscribeCache({"app/*"}, 200ms));
  ASSERT_TRUE(client_->WaitCacheSubscribed(60s));
  ASSERT_OK_AND_ASSIGN(auto v, client_->Get(ref));
  const int64_t requests = client_->stats().requests;
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK_AND_ASSIGN(v, client_->Get(ref));
    EXPECT_EQ(v->base->ToString(), "v1");
  }
  EXPECT_EQ(client_->stats().requests, requests);  // zero round trips
  EXPECT_EQ(client_->stats().watch_hits, 10);
  // A write through another client is pushed; gets then fetch it (the old ref suffices).
  ASSERT_OK(writer->Update(ref, Buf("v2")).status());
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 60000) << "the pushed change never reached the cache";
    ASSERT_OK_AND_ASSIGN(v, client_->Get(ref));
    if (v->base->ToString() == "v2") break;
    std::this_thread::sleep_for(1ms);
  }
  // Unsubscribed: every get asks the server again.
  client_->UnsubscribeCache();
  const int64_t before = client_->stats().requests;
  ASSERT_OK(client_->Get(ref).status());
  EXPECT_EQ(client_->stats().requests, before + 1);
}

}  // namespace
}  // namespace foc
