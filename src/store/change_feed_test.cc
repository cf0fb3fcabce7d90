#include "store/change_feed.h"

#include <map>
#include <thread>

#include "store/object_store.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

using std::chrono::milliseconds;

std::vector<KeyPattern> Patterns(std::initializer_list<const char*> texts) {
  std::vector<KeyPattern> out;
  for (const char* t : texts) out.push_back(KeyPattern::Parse(t).ValueOrDie());
  return out;
}

std::vector<Change> Drain(Subscription& sub) {
  std::vector<Change> out;
  while (true) {
    const size_t before = out.size();
    EXPECT_OK(sub.Next(milliseconds(0), &out));
    if (out.size() == before) return out;
  }
}

TEST(ChangeFeedTest, KindNamesRoundTrip) {
  for (auto k : {ChangeKind::kPut, ChangeKind::kPatch, ChangeKind::kDelete}) {
    ASSERT_OK_AND_ASSIGN(auto parsed, ParseChangeKind(ChangeKindName(k)));
    EXPECT_EQ(parsed, k);
  }
  EXPECT_TRUE(ParseChangeKind("evict").status().IsInvalid());
}

TEST(ChangeFeedTest, DeliversMatchingChangesInOrder) {
  ChangeFeed feed;
  ASSERT_OK_AND_ASSIGN(auto key_sub, feed.Subscribe(Patterns({"a/s/o"}), 16));
  ASSERT_OK_AND_ASSIGN(auto session_sub, feed.Subscribe(Patterns({"a/s"}), 16));
  ASSERT_OK_AND_ASSIGN(auto app_sub, feed.Subscribe(Patterns({"a/*", "b/t"}), 16));
  feed.Publish({"a/s/o", 1, ChangeKind::kPut});
  feed.Publish({"a/s/p", 1, ChangeKind::kPut});
  feed.Publish({"a/t/o", 1, ChangeKind::kPut});
  feed.Publish({"b/t/x", 4, ChangeKind::kPatch});
  feed.Publish({"a/s/o", 2, ChangeKind::kPatch});
  feed.Publish({"a/s/o", 2, ChangeKind::kDelete});
  feed.Publish({"c/s/o", 1, ChangeKind::kPut});

  EXPECT_EQ(Drain(*key_sub), (std::vector<Change>{{"a/s/o", 1, ChangeKind::kPut},
                                                  {"a/s/o", 2, ChangeKind::kPatch},
                                                  {"a/s/o", 2, ChangeKind::kDelete}}));
  EXPECT_EQ(Drain(*session_sub).size(), 4u);
  EXPECT_EQ(Drain(*app_sub).size(), 6u);
  const auto stats = feed.stats();
  EXPECT_EQ(stats.subscribers, 3);
  EXPECT_EQ(stats.published, 7);
  EXPECT_EQ(stats.delivered, 13);
  EXPECT_EQ(stats.dropped, 0);
}

TEST(ChangeFeedTest, RejectsEmptySubscriptions) {
  ChangeFeed feed;
  EXPECT_TRUE(feed.Subscribe({}, 16).status().IsInvalid());
  EXPECT_TRUE(feed.Subscribe(Patterns({"a/*"}), 0).status().IsInvalid());
}

TEST(ChangeFeedTest, OverflowDropsTheSubscriberWithResync) {
  ChangeFeed feed;
  ASSERT_OK_AND_ASSIGN(auto slow, feed.Subscribe(Patterns({"a/*"}), 4));
  ASSERT_OK_AND_ASSIGN(auto fast, feed.Subscribe(Patterns({"a/*"}), 1000));
  for (uint64_t v = 1; v <= 100; ++v) feed.Publish({"a/s/o", v, ChangeKind::kPatch});
  std::vector<Change> out;
  auto st = slow->Next(milliseconds(0), &out);
  EXPECT_TRUE(st.IsCapacityError()) << st.ToString();
  EXPECT_NE(st.message().find("fell behind"), std::string::npos);
  EXPECT_NE(st.message().find("resync"), std::string::npos);
  EXPECT_TRUE(out.empty());  // the queue was freed, not left to grow
  // Final: later publishes do not revive it.
  feed.Publish({"a/s/o", 101, ChangeKind::kPatch});
  EXPECT_TRUE(slow->Next(milliseconds(0), &out).IsCapacityError());
  // The other subscriber is unaffected.
  EXPECT_EQ(Drain(*fast).size(), 101u);
  EXPECT_EQ(feed.stats().dropped, 1);
}

TEST(ChangeFeedTest, NextWaitsForAPublish) {
  ChangeFeed feed;
  ASSERT_OK_AND_ASSIGN(auto sub, feed.Subscribe(Patterns({"a/s/o"}), 4));
  std::thread publisher([&] { feed.Publish({"a/s/o", 7, ChangeKind::kPut}); });
  std::vector<Change> out;
  while (out.empty()) ASSERT_OK(sub->Next(milliseconds(1000), &out));
  publisher.join();
  EXPECT_EQ(out[0].version, 7u);
}

TEST(ChangeFeedTest, CloseEndsSubscriptionsAfterTheirQueue) {
  ChangeFeed feed;
  ASSERT_OK_AND_ASSIGN(auto sub, feed.Subscribe(Patterns({"a/*"}), 4));
  feed.Publish({"a/s/o", 1, ChangeKind::kPut});
  feed.Close();
  std::vector<Change> out;
  ASSERT_OK(sub->Next(milliseconds(0), &out));
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(sub->Next(milliseconds(0), &out).IsCancelled());
  EXPECT_TRUE(feed.Subscribe(Patterns({"a/*"}), 4).status().IsCancelled());
}

TEST(ChangeFeedTest, UnsubscribesOnDestruction) {
  ChangeFeed feed;
  {
    ASSERT_OK_AND_ASSIGN(auto sub, feed.Subscribe(Patterns({"a/*"}), 4));
    EXPECT_EQ(feed.stats().subscribers, 1);
  }
  EXPECT_EQ(feed.stats().subscribers, 0);
  feed.Publish({"a/s/o", 1, ChangeKind::kPut});
  EXPECT_EQ(feed.stats().delivered, 0);
}

// The store publishes once per committed write and per deleted key, in commit order.
TEST(ChangeFeedTest, StorePublishesEveryCommittedMutation) {
  auto store = ObjectStore::Open({}, nullptr).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto sub, store->changes().Subscribe(Patterns({"a/*"}), 4096));
  auto bytes = [](const char* s) { return arrow::Buffer::FromString(s); };
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(PutTarget{"a", "s", "o"}, {bytes("x"), {}}));
  for (int i = 0; i < 1000; ++i) ASSERT_OK(store->Patch(w.key, bytes("d")).status());
  ASSERT_OK(store->Put(PutTarget{"a", "t", "p"}, {bytes("y"), {}}).status());
  // A failed write publishes nothing.
  EXPECT_FALSE(store->Patch(w.key, bytes("too many")).ok());
  EXPECT_FALSE(
      store->Patch(ObjectKey::Parse("a/s/missing").ValueOrDie(), bytes("d")).ok());
  ASSERT_OK(store->Delete(KeyPattern::Parse("a/*").ValueOrDie()).status());
  auto got = Drain(*sub);
  ASSERT_EQ(got.size(), 1 + 1000 + 1 + 2u);
  EXPECT_EQ(got[0], (Change{"a/s/o", 1, ChangeKind::kPut}));
  for (uint64_t v = 2; v <= 1001; ++v) {
    EXPECT_EQ(got[v - 1], (Change{"a/s/o", v, ChangeKind::kPatch}));
  }
  EXPECT_EQ(got[1001], (Change{"a/t/p", 1, ChangeKind::kPut}));
  // DELETE walks the index in key order.
  EXPECT_EQ(got[1002], (Change{"a/s/o", 1001, ChangeKind::kDelete}));
  EXPECT_EQ(got[1003], (Change{"a/t/p", 1, ChangeKind::kDelete}));
}

// Concurrent writers of different keys (and of one shared key): each key's changes arrive
// in commit order, none lost.
TEST(ChangeFeedTest, ConcurrentWritersKeepPerKeyOrder) {
  auto store = ObjectStore::Open({}, nullptr).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto sub, store->changes().Subscribe(Patterns({"a/*"}), 100000));
  constexpr int kThreads = 4, kWrites = 200;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        auto data = arrow::Buffer::FromString("x");
        ASSERT_OK(store->Put(PutTarget{"a", "s", "k" + std::to_string(t)}, {data, {}}));
        ASSERT_OK(store->Put(PutTarget{"a", "s", "shared"}, {data, {}}));
      }
    });
  }
  for (auto& w : writers) w.join();
  std::map<std::string, uint64_t> last;
  size_t n = 0;
  for (const Change& c : Drain(*sub)) {
    EXPECT_EQ(c.version, last[c.key] + 1) << c.key;
    last[c.key] = c.version;
    ++n;
  }
  EXPECT_EQ(n, size_t{2 * kThreads * kWrites});
  EXPECT_EQ(last["a/s/shared"], uint64_t{kThreads * kWrites});
}

}  // namespace
}  // namespace foc
