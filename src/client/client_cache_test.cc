// ClientCache on its own: the LRU order, both bounds, the oversized entry, pattern and
// epoch invalidation. (The cache's use by CacheClient is tested through a server in
// cache_client_test.cc.)
#include "flame_object_cache/client_cache.h"

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

std::shared_ptr<const ObjectValue> Value(const std::string& endpoint,
                                         const std::string& key, int64_t bytes,
                                         const std::string& epoch = "e1") {
  auto v = std::make_shared<ObjectValue>();
  v->endpoint = endpoint;
  v->key = key;
  v->version = 1;
  v->epoch = epoch;
  v->base = arrow::Buffer::FromString(std::string(static_cast<size_t>(bytes), 'x'));
  return v;
}

TEST(ClientCacheTest, ByteBoundEvictsLeastRecentlyUsed) {
  ClientCache cache(/*max_bytes=*/300, /*max_entries=*/0);
  cache.Insert(Value("e", "a/s/1", 100));
  cache.Insert(Value("e", "a/s/2", 100));
  cache.Insert(Value("e", "a/s/3", 100));
  EXPECT_EQ(cache.bytes(), 300);
  ASSERT_NE(cache.Lookup("e", "a/s/1"),
            nullptr);  // 1 becomes most recent; 2 is now oldest
  cache.Insert(Value("e", "a/s/4", 100));
  EXPECT_EQ(cache.bytes(), 300);
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_EQ(cache.Lookup("e", "a/s/2"), nullptr);
  EXPECT_NE(cache.Lookup("e", "a/s/1"), nullptr);
  EXPECT_EQ(cache.evictions(), 1);
}

TEST(ClientCacheTest, EntryBoundAndOversizedValues) {
  ClientCache cache(/*max_bytes=*/1000, /*max_entries=*/2);
  cache.Insert(Value("e", "a/s/1", 10));
  cache.Insert(Value("e", "a/s/2", 10));
  cache.Insert(Value("e", "a/s/3", 10));
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_EQ(cache.Lookup("e", "a/s/1"), nullptr);
  // Larger than the whole budget: not kept, and the older value of that key is dropped.
  cache.Insert(Value("e", "a/s/3", 1001));
  EXPECT_EQ(cache.Lookup("e", "a/s/3"), nullptr);
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_EQ(cache.bytes(), 10);
}

TEST(ClientCacheTest, ReplaceRechargesAndEndpointIsPartOfTheKey) {
  ClientCache cache(0, 0);
  cache.Insert(Value("grpc://h:1", "a/s/o", 10));
  cache.Insert(Value("grpc://h:2", "a/s/o", 20));
  cache.Insert(Value("grpc://h:1", "a/s/o", 30));
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_EQ(cache.bytes(), 50);
  EXPECT_EQ(cache.Lookup("grpc://h:1", "a/s/o")->base->size(), 30);
  EXPECT_TRUE(cache.Erase("grpc://h:2", "a/s/o"));
  EXPECT_FALSE(cache.Erase("grpc://h:2", "a/s/o"));
  EXPECT_EQ(cache.bytes(), 30);
}

TEST(ClientCacheTest, PatternAndEpochInvalidation) {
  ClientCache cache(0, 0);
  cache.Insert(Value("e1", "app/s/1", 1));
  cache.Insert(Value("e2", "app/s/2", 1));
  cache.Insert(Value("e1", "app/s2/3", 1));
  cache.Insert(Value("e1", "other/s/4", 1, "e2"));
  ASSERT_OK_AND_ASSIGN(auto session, KeyPattern::Parse("app/s"));
  EXPECT_EQ(cache.ErasePattern(session), 2);  // both endpoints, whole components only
  EXPECT_NE(cache.Lookup("e1", "app/s2/3"), nullptr);
  EXPECT_EQ(cache.EraseOtherEpochs("e1", "e2"), 1);  // app/s2/3 had epoch e1
  EXPECT_NE(cache.Lookup("e1", "other/s/4"), nullptr);
  EXPECT_EQ(cache.entries(), 1);
}

}  // namespace
}  // namespace foc
