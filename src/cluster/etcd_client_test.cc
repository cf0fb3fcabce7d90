// EtcdClient against a real etcd (Debian's etcd-server) on loopback.
#include "cluster/etcd_client.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "testing/etcd_server.h"
#include "testing/gtest_util.h"

namespace foc::cluster {
namespace {

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    ASSERT_OK_AND_ASSIGN(client_, EtcdClient::Make({{etcd_.endpoint()}}));
  }
  foc::testing::EtcdServer etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdClientOptionsTest, RefusesBadEndpoints) {
  EXPECT_STATUS(Invalid, "no etcd endpoints", EtcdClient::Make({}));
  EXPECT_STATUS(Invalid, "only http://", EtcdClient::Make({{"https://127.0.0.1:2379"}}));
  EXPECT_STATUS(Invalid, "only http://", EtcdClient::Make({{"127.0.0.1:2379"}}));
}

TEST(EtcdClientOptionsTest, UnreachableIsIoErrorNamingEtcd) {
  int port = foc::testing::FreeLoopbackPort();
  EtcdOptions options{{"http://127.0.0.1:" + std::to_string(port)},
                      std::chrono::milliseconds(500)};
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Make(options));
  EXPECT_STATUS(IOError, "etcd unreachable", client->Put("k", "v"));
}

TEST(EtcdClientOptionsTest, PrefixRangeEnd) {
  EXPECT_EQ(PrefixRangeEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd("\xff\xff"), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, PutGetRangeDeleteWithBinaryValues) {
  const std::string value("bin\0ary\xff", 8);
  ASSERT_OK_AND_ASSIGN(int64_t rev1, client_->Put("/t/a", value));
  ASSERT_OK_AND_ASSIGN(int64_t rev2, client_->Put("/t/b", "2"));
  EXPECT_GT(rev2, rev1);
  ASSERT_OK(client_->Put("/u/c", "3"));

  ASSERT_OK_AND_ASSIGN(auto a, client_->Get("/t/a"));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->value, value);
  EXPECT_EQ(a->mod_revision, rev1);
  EXPECT_EQ(a->version, 1);
  ASSERT_OK_AND_ASSIGN(auto missing, client_->Get("/t/zzz"));
  EXPECT_FALSE(missing.has_value());

  ASSERT_OK_AND_ASSIGN(auto range, client_->Range("/t/", PrefixRangeEnd("/t/")));
  ASSERT_EQ(range.kvs.size(), 2u);
  EXPECT_EQ(range.kvs[0].key, "/t/a");
  EXPECT_EQ(range.kvs[1].key, "/t/b");
  EXPECT_GE(range.revision, rev2);

  ASSERT_OK_AND_ASSIGN(auto limited, client_->Range("/t/", PrefixRangeEnd("/t/"), 1));
  EXPECT_EQ(limited.kvs.size(), 1u);
  EXPECT_TRUE(limited.more);

  ASSERT_OK_AND_ASSIGN(auto old, client_->Range("/t/a", "", 0, rev1));
  ASSERT_EQ(old.kvs.size(), 1u);

  ASSERT_OK_AND_ASSIGN(int64_t deleted, client_->Delete("/t/", PrefixRangeEnd("/t/")));
  EXPECT_EQ(deleted, 2);
  ASSERT_OK_AND_ASSIGN(auto after, client_->Range("/t/", PrefixRangeEnd("/t/")));
  EXPECT_TRUE(after.kvs.empty());
}

TEST_F(EtcdClientTest, TxnIsACompareAndSwap) {
  // Create only if missing.
  ASSERT_OK_AND_ASSIGN(
      auto created, client_->Txn({Compare::Missing("/obj")}, {TxnOp::Put("/obj", "v1")},
                                 {TxnOp::Get("/obj")}));
  EXPECT_TRUE(created.succeeded);
  ASSERT_OK_AND_ASSIGN(
      auto again, client_->Txn({Compare::Missing("/obj")}, {TxnOp::Put("/obj", "other")},
                               {TxnOp::Get("/obj")}));
  EXPECT_FALSE(again.succeeded);
  ASSERT_EQ(again.ranges.size(), 1u);
  ASSERT_EQ(again.ranges[0].size(), 1u);
  EXPECT_EQ(again.ranges[0][0].value, "v1");
  const int64_t rev = again.ranges[0][0].mod_revision;

  // Swap only from the revision read; a stale revision loses.
  ASSERT_OK_AND_ASSIGN(auto swapped, client_->Txn({Compare::ModRevisionIs("/obj", rev)},
                                                  {TxnOp::Put("/obj", "v2")}));
  EXPECT_TRUE(swapped.succeeded);
  ASSERT_OK_AND_ASSIGN(auto stale, client_->Txn({Compare::ModRevisionIs("/obj", rev)},
                                                {TxnOp::Put("/obj", "v3")}));
  EXPECT_FALSE(stale.succeeded);
  ASSERT_OK_AND_ASSIGN(auto now, client_->Get("/obj"));
  EXPECT_EQ(now->value, "v2");

  // Several operations in one branch: all or nothing, with per-op results.
  ASSERT_OK_AND_ASSIGN(auto multi,
                       client_->Txn({Compare::ModRevisionIs("/obj", now->mod_revision)},
                                    {TxnOp::Put("/floor", "7"), TxnOp::Delete("/obj"),
                                     TxnOp::Get("/floor")}));
  EXPECT_TRUE(multi.succeeded);
  ASSERT_EQ(multi.deleted.size(), 3u);
  EXPECT_EQ(multi.deleted[1], 1);
  ASSERT_EQ(multi.ranges[2].size(), 1u);
  EXPECT_EQ(multi.ranges[2][0].value, "7");
}

TEST_F(EtcdClientTest, ARangeCompareCoversEveryKeyOfTheRange) {
  // The shape of a session DELETE: read the range, then delete it only if no key in it
  // changed since. A write to one key of the range in between must make it fail.
  ASSERT_OK(client_->Put("/r/a", "1").status());
  ASSERT_OK(client_->Put("/r/b", "1").status());
  ASSERT_OK_AND_ASSIGN(auto read, client_->Range("/r/", "/r0"));
  ASSERT_OK(client_->Put("/r/b", "2").status());
  ASSERT_OK_AND_ASSIGN(
      auto stale,
      client_->Txn({Compare::RangeUnchangedSince("/r/", "/r0", read.revision)},
                   {TxnOp::Delete("/r/", "/r0")}));
  EXPECT_FALSE(stale.succeeded);
  ASSERT_OK_AND_ASSIGN(auto fresh, client_->Range("/r/", "/r0"));
  ASSERT_OK_AND_ASSIGN(
      auto ok, client_->Txn({Compare::RangeUnchangedSince("/r/", "/r0", fresh.revision)},
                            {TxnOp::Delete("/r/", "/r0")}));
  EXPECT_TRUE(ok.succeeded);
}

TEST_F(EtcdClientTest, ConcurrentCompareAndSwapIncrementsLoseNothing) {
  ASSERT_OK(client_->Put("/counter", "0"));
  constexpr int kThreads = 4, kEach = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        while (true) {
          auto cur = client_->Get("/counter");
          if (!cur.ok() || !cur->has_value()) {
            ++failures;
            return;
          }
          int n = std::stoi((*cur)->value);
          auto r =
              client_->Txn({Compare::ModRevisionIs("/counter", (*cur)->mod_revision)},
                           {TxnOp::Put("/counter", std::to_string(n + 1))});
          if (!r.ok()) {
            ++failures;
            return;
          }
          if (r->succeeded) break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto final_value, client_->Get("/counter"));
  EXPECT_EQ(final_value->value, std::to_string(kThreads * kEach));
}

TEST_F(EtcdClientTest, LeasesExpireTheirKeysAndKeepAliveRenews) {
  ASSERT_OK_AND_ASSIGN(int64_t lease, client_->GrantLease(2));
  ASSERT_OK(client_->Put("/members/a", "grpc://127.0.0.1:1", lease));
  ASSERT_OK_AND_ASSIGN(int64_t ttl, client_->KeepAlive(lease));
  EXPECT_GT(ttl, 0);
  ASSERT_OK(client_->RevokeLease(lease));
  ASSERT_OK_AND_ASSIGN(auto gone, client_->Get("/members/a"));
  EXPECT_FALSE(gone.has_value());
  EXPECT_STATUS(KeyError, "expired", client_->KeepAlive(lease));
  EXPECT_OK(client_->RevokeLease(lease));  // missing is fine
}

TEST_F(EtcdClientTest, WatchDeliversPutsAndDeletesInOrderFromARevision) {
  ASSERT_OK_AND_ASSIGN(int64_t before, client_->Put("/w/old", "x"));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> seen;
  ASSERT_OK_AND_ASSIGN(auto watch,
                       client_->Watch(
                           "/w/", PrefixRangeEnd("/w/"), before,
                           [&](const std::vector<WatchEvent>& events, int64_t) {
                             std::lock_guard<std::mutex> lock(mu);
                             seen.insert(seen.end(), events.begin(), events.end());
                             cv.notify_all();
                           },
                           nullptr));
  ASSERT_OK(client_->Put("/w/a", "1"));
  ASSERT_OK(client_->Put("/w/a", "2"));
  ASSERT_OK(client_->Put("/other", "not watched"));
  ASSERT_OK(client_->Delete("/w/a"));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen.size() >= 4; }))
        << "saw " << seen.size() << " events";
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[0].kv.key, "/w/old");  // replayed from the start revision
    EXPECT_EQ(seen[1].kv.value, "1");
    EXPECT_EQ(seen[2].kv.value, "2");
    EXPECT_EQ(seen[3].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(seen[3].kv.key, "/w/a");
    for (size_t i = 1; i < seen.size(); ++i) {
      EXPECT_GT(seen[i].kv.mod_revision, seen[i - 1].kv.mod_revision);
    }
  }
  watch->Cancel();
  watch->Cancel();  // idempotent
}

TEST_F(EtcdClientTest, WatchReportsItsEndWhenEtcdGoesAway) {
  std::mutex mu;
  std::condition_variable cv;
  bool ended = false;
  arrow::Status why;
  ASSERT_OK_AND_ASSIGN(auto watch, client_->Watch(
                                       "/w/", PrefixRangeEnd("/w/"), 0,
                                       [](const std::vector<WatchEvent>&, int64_t) {},
                                       [&](const arrow::Status& st) {
                                         std::lock_guard<std::mutex> lock(mu);
                                         ended = true;
                                         why = st;
                                         cv.notify_all();
                                       }));
  ASSERT_OK(client_->Put("/w/x", "1"));
  etcd_.Stop();
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return ended; }));
  EXPECT_TRUE(why.IsIOError()) << why.ToString();
  lock.unlock();
  watch.reset();  // joins the ended thread
  EXPECT_STATUS(IOError, "etcd unreachable", client_->Put("/w/y", "2"));
}

}  // namespace
}  // namespace foc::cluster
