#include "protocol/protocol.h"

#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>

#include "object/object.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(PutResultTest, EncodesUpstreamFieldsInOrderWithBsonTypes) {
  ASSERT_OK_AND_ASSIGN(auto buf,
                       EncodePutResult({"grpc://127.0.0.1:9090", "a/s/o", 7, ""}));
  const std::string bytes = buf->ToString();
  // int32 total length, then elements: 0x02 "endpoint", 0x02 "key", 0x12 "version".
  const auto first = bytes.find("endpoint");
  const auto second = bytes.find("key");
  const auto third = bytes.find("version");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(bytes[first - 1], '\x02');
  EXPECT_EQ(bytes[second - 1], '\x02');
  EXPECT_EQ(bytes[third - 1], '\x12');
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_EQ(bytes.find("epoch"), std::string::npos);
  int32_t total = 0;
  std::memcpy(&total, bytes.data(), 4);
  EXPECT_EQ(static_cast<size_t>(total), bytes.size());
}

TEST(PutResultTest, RoundTripsWithEpoch) {
  ASSERT_OK_AND_ASSIGN(auto buf,
                       EncodePutResult({"grpc+tls://h:1", "a/s/o:x", 1LL << 40, "e1"}));
  ASSERT_OK_AND_ASSIGN(auto doc, DecodePutResult(buf->ToString()));
  EXPECT_EQ(doc.endpoint, "grpc+tls://h:1");
  EXPECT_EQ(doc.key, "a/s/o:x");
  EXPECT_EQ(doc.version, 1LL << 40);
  EXPECT_EQ(doc.epoch, "e1");
  EXPECT_STATUS(Invalid, "BSON", DecodePutResult("garbage"));
}

TEST(SchemaTest, ResponseSchemaMatchesUpstream) {
  auto schema = ResponseSchema("abc");
  ASSERT_EQ(schema->num_fields(), 3);
  EXPECT_TRUE(schema->field(0)->type()->Equals(arrow::uint64()));
  EXPECT_EQ(schema->field(1)->name(), "kind");
  EXPECT_TRUE(schema->field(2)->type()->Equals(arrow::binary()));
  EXPECT_FALSE(schema->field(2)->nullable());
  EXPECT_EQ(schema->metadata()->Get(kEpochMetadataKey).ValueOrDie(), "abc");
  EXPECT_EQ(ResponseSchema()->metadata(), nullptr);
}

}  // namespace
}  // namespace foc
