#include "protocol/protocol.h"

#include <arrow/array.h>
#include <arrow/record_batch.h>
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

// Uploads and replies are built by one function (protocol.cc OneRow): both share the
// payload buffer, and the upload row is exactly UploadSchema with version 0.
TEST(RowTest, UploadAndReplyRowsShareThePayloadBuffer) {
  auto data = arrow::Buffer::FromString("payload");
  ASSERT_OK_AND_ASSIGN(auto upload, UploadRow(data));
  EXPECT_TRUE(upload->schema()->Equals(*UploadSchema()));
  ASSERT_EQ(upload->num_rows(), 1);
  EXPECT_EQ(std::static_pointer_cast<arrow::UInt64Array>(upload->column(0))->Value(0),
            0u);
  auto upload_data = std::static_pointer_cast<arrow::BinaryArray>(upload->column(1));
  EXPECT_EQ(upload_data->GetView(0), "payload");
  EXPECT_EQ(upload_data->value_data()->data(), data->data());  // not copied
  ASSERT_OK(upload->ValidateFull());

  ASSERT_OK_AND_ASSIGN(auto reply, ReplyRow(ResponseSchema(), 7, kKindPatch, data));
  EXPECT_EQ(std::static_pointer_cast<arrow::UInt64Array>(reply->column(0))->Value(0), 7u);
  EXPECT_EQ(std::static_pointer_cast<arrow::StringArray>(reply->column(1))->GetView(0),
            kKindPatch);
  EXPECT_EQ(std::static_pointer_cast<arrow::BinaryArray>(reply->column(2))
                ->value_data()
                ->data(),
            data->data());
  ASSERT_OK(reply->ValidateFull());
}

}  // namespace
}  // namespace foc
