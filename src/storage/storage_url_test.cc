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
  EXPECT_STATUS(Invalid, "s3://", ParseStorageUrl("gs://bucket", "/h"));
  EXPECT_STATUS(Invalid, "no path", ParseStorageUrl("fs://", "/h"));
}

TEST(StorageUrlTest, S3) {
  const std::string url =
      "s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http";
  ASSERT_OK_AND_ASSIGN(auto s3, ParseStorageUrl(url, "/h"));
  EXPECT_FALSE(s3.memory_only);
  EXPECT_EQ(s3.s3_uri, url);
  EXPECT_TRUE(s3.path.empty());
  EXPECT_STATUS(Invalid, "no bucket", ParseStorageUrl("s3://", "/h"));
  EXPECT_STATUS(Invalid, "no bucket", ParseStorageUrl("s3:///prefix", "/h"));
  // Credentials in the URI never reach the error text.
  auto bad = ParseStorageUrl("s3://ak:sk@", "/h");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("sk"), std::string::npos)
      << bad.status().ToString();
}

}  // namespace
}  // namespace foc
