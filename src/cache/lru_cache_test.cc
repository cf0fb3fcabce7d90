#include "cache/lru_cache.h"

#include <random>
#include <vector>

#include "testing/gtest_util.h"

namespace foc {
namespace {

using Cache = LruCache<int>;

TEST(LruCacheTest, ChargesAndExactEviction) {
  std::vector<std::string> evicted;
  int bursts = 0;
  Cache cache({300, 0}, [&](std::vector<Cache::Evicted>& burst) {
    ++bursts;
    for (const auto& e : burst) evicted.push_back(e.key);
  });
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_OK_AND_ASSIGN(auto h, cache.Insert(k, 1, 100));
  }
  EXPECT_EQ(cache.stats().bytes, 300);
  EXPECT_TRUE(evicted.empty());
  { auto h = cache.Lookup("a"); }  // a becomes most recent
  ASSERT_OK_AND_ASSIGN(auto h, cache.Insert("d", 1, 150));
  // Needs 150 bytes back: b (100) then c (100); a stays.
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(bursts, 1);  // both in one report: the store logs one line per burst
  EXPECT_EQ(cache.stats().bytes, 250);
  EXPECT_TRUE(cache.Lookup("a"));
}

TEST(LruCacheTest, PinnedEntriesAreNotEvicted) {
  Cache cache({100, 0});
  ASSERT_OK_AND_ASSIGN(auto pinned, cache.Insert("a", 1, 100));
  ASSERT_OK_AND_ASSIGN(auto h, cache.Insert("b", 2, 100));
  EXPECT_TRUE(cache.Lookup("a"));
  EXPECT_EQ(cache.stats().bytes, 200);  // over the limit while both are pinned
  h.Reset();
  pinned.Reset();  // releasing settles: the least recently used unpinned entry goes
  EXPECT_EQ(cache.stats().bytes, 100);
  EXPECT_EQ(cache.stats().entries, 1);
}

TEST(LruCacheTest, ReplacedWhilePinnedStaysChargedUntilReleased) {
  Cache cache({0, 0});
  ASSERT_OK_AND_ASSIGN(auto old_handle, cache.Insert("a", 1, 100));
  ASSERT_OK_AND_ASSIGN(auto new_handle, cache.Insert("a", 2, 50));
  EXPECT_EQ(old_handle.value(), 1);
  EXPECT_EQ(cache.Lookup("a").value(), 2);
  EXPECT_EQ(cache.stats().bytes, 150);
  old_handle.Reset();
  EXPECT_EQ(cache.stats().bytes, 50);
  EXPECT_EQ(cache.stats().entries, 1);
}

TEST(LruCacheTest, ReplacingAPinnedValueDoesNotEvictTheNewOne) {
  // A PATCH holds the old version pinned while it inserts the new, larger one.
  Cache cache({1000, 0});
  ASSERT_OK_AND_ASSIGN(auto old_version, cache.Insert("k", 1, 400));
  { ASSERT_OK_AND_ASSIGN(auto new_version, cache.Insert("k", 2, 700)); }
  EXPECT_EQ(cache.Lookup("k").value(), 2);
  EXPECT_EQ(cache.stats().bytes, 1100);  // the reader's old copy is still counted...
  old_version.Reset();
  EXPECT_EQ(cache.stats().bytes, 700);  // ...until it lets go
  EXPECT_EQ(cache.stats().evictions, 0);
}

TEST(LruCacheTest, MaxEntries) {
  Cache cache({0, 2});
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_OK_AND_ASSIGN(auto h, cache.Insert(k, 1, 1));
  }
  EXPECT_EQ(cache.stats().entries, 2);
  EXPECT_FALSE(cache.Lookup("a"));
  EXPECT_EQ(cache.stats().evictions, 1);
}

TEST(LruCacheTest, OversizeEntryStaysUntilReleasedAndFitsSaysNo) {
  Cache cache({100, 0});
  EXPECT_FALSE(cache.Fits(101));
  EXPECT_TRUE(cache.Fits(100));
  ASSERT_OK_AND_ASSIGN(auto small, cache.Insert("s", 1, 10));
  small.Reset();
  ASSERT_OK_AND_ASSIGN(auto big, cache.Insert("big", 1, 200));
  EXPECT_FALSE(cache.Lookup("s"));  // evicted to make room, exactly
  EXPECT_TRUE(cache.Lookup("big"));
}

TEST(LruCacheTest, RefuseModeNamesTheLimitInItsOwnTerms) {
  Cache cache({0, 1});
  ASSERT_OK_AND_ASSIGN(auto a, cache.Insert("a", 1, 10));
  a.Reset();
  EXPECT_STATUS(CapacityError, "would exceed the cache's entry limit",
                cache.Insert("b", 2, 10, /*allow_evict=*/false));
}

TEST(LruCacheTest, RefuseModeLeavesCacheUnchanged) {
  Cache cache({100, 0});
  ASSERT_OK_AND_ASSIGN(auto a, cache.Insert("a", 1, 60));
  a.Reset();
  EXPECT_STATUS(CapacityError, "would exceed the cache's byte limit",
                cache.Insert("b", 2, 50, /*allow_evict=*/false));
  EXPECT_TRUE(cache.Lookup("a"));
  EXPECT_EQ(cache.stats().bytes, 60);
  // Replacing a itself with something that fits is fine.
  EXPECT_OK(cache.Insert("a", 3, 100, false));
}

// Random inserts (evicting or refusing), lookups, erases and pin releases; the cache's
// invariants (usage == sum of charges, pinned entries never evicted, eviction stops at
// the limit) are checked by CheckInvariants() after every step, which aborts in debug and
// ASan builds (base/check.h). The test also checks what release builds can see.
TEST(LruCacheTest, InvariantsHoldUnderRandomOperations) {
  std::mt19937 rng(15);
  for (const Cache::Options options :
       {Cache::Options{1000, 0}, Cache::Options{0, 8}, Cache::Options{500, 5}}) {
    Cache cache(options);
    std::vector<Cache::Handle> pins;
    for (int step = 0; step < 3000; ++step) {
      const std::string key = "k" + std::to_string(rng() % 24);
      switch (rng() % 5) {
        case 0:
        case 1: {
          auto h =
              cache.Insert(key, step, 1 + rng() % 120, /*allow_evict=*/rng() % 4 != 0);
          if (h.ok() && rng() % 3 == 0) pins.push_back(*std::move(h));
          break;
        }
        case 2:
          if (auto h = cache.Lookup(key); h && rng() % 2 == 0)
            pins.push_back(std::move(h));
          break;
        case 3:
          cache.Erase(key);
          break;
        case 4:
          if (!pins.empty()) pins.erase(pins.begin() + rng() % pins.size());
          break;
      }
      cache.CheckInvariants();
      // Every pinned entry is still readable: pins are never evicted.
      for (const auto& pin : pins) ASSERT_GE(pin.charge(), 1);
      const auto stats = cache.stats();
      ASSERT_GE(stats.bytes, 0);
      ASSERT_LE(stats.pinned_entries, stats.entries);
      if (options.max_entries > 0 && stats.pinned_entries <= options.max_entries) {
        ASSERT_LE(stats.entries, options.max_entries);
      }
    }
    pins.clear();
    cache.CheckInvariants();
    if (options.max_bytes > 0) {
      EXPECT_LE(cache.stats().bytes, options.max_bytes);
    }
  }
}

TEST(LruCacheTest, EvictOldestSkipsTheExceptedAndPinnedEntries) {
  Cache cache({0, 0});  // unlimited: evictions only on request
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_OK_AND_ASSIGN(auto h, cache.Insert(k, 1, 10));
  }
  auto pinned_b = cache.Lookup("b");
  EXPECT_EQ(cache.ChargeOf("c"), 10);
  EXPECT_EQ(cache.ChargeOf("x"), 0);
  auto first = cache.EvictOldest("a");  // a is excepted, b pinned: c
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->key, "c");
  EXPECT_EQ(first->charge, 10);
  EXPECT_FALSE(cache.EvictOldest("a").has_value());
  pinned_b.Reset();
  auto second = cache.EvictOldest("a");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->key, "b");
  EXPECT_EQ(cache.stats().evictions, 2);
  EXPECT_EQ(cache.stats().bytes, 10);
}

}  // namespace
}  // namespace foc
