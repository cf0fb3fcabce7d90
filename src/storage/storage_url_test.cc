#include "storage/storage_url.h"

#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(StorageUrlTest, UpstreamForms) {
  ASSERT_OK_AND_ASSIGN(auto none, ParseStorageUrl("none", "/h"));
  EXPECT_TRUE(none.memory_only);
  ASSERT_OK_AND_ASSIGN(auto empty, ParseStorageUrl("", "/h"));
  EXPECT_TRUE(empty.memory_only);
  ASSERT_OK_AND_ASSIGN(auto abs, ParseStorageUrl("fs:///var/lib/flame/cache", "/h"));
  EXPECT_EQ(abs.path, "/var/lib/flame/cache");
  ASSERT_OK_AND_ASSIGN(auto rel, ParseStorageUrl("fs://cache", "/h"));
  EXPECT_EQ(rel.path, "/h/cache");
  ASSERT_OK_AND_ASSIGN(auto file, ParseStorageUrl("file:///tmp/cache", "/h"));
  EXPECT_EQ(file.path, "/tmp/cache");
  ASSERT_OK_AND_ASSIGN(auto plain, ParseStorageUrl("data/cache", "/h"));
  EXPECT_FALSE(plain.memory_only);
  EXPECT_EQ(plain.path, "data/cache");
  ASSERT_OK_AND_ASSIGN(auto dflt, ParseStorageUrl("fs://cache", ""));
  EXPECT_EQ(dflt.path, "/var/lib/flame/cache");
  EXPECT_STATUS(Invalid, "s3://", ParseStorageUrl("s3://bucket", "/h"));
  EXPECT_STATUS(Invalid, "no path", ParseStorageUrl("fs://", "/h"));
}

}  // namespace
}  // namespace foc
