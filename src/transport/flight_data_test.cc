#include "transport/flight_data.h"

#include <string>

#include <arrow/api.h>
#include <arrow/ipc/writer.h>
#include <gtest/gtest.h>

namespace foc::transport {
namespace {

namespace fl = arrow::flight;

// A record batch payload as Arrow Flight's DoGet sends it: a large binary cell (sent
// zero copy) and a small one.
fl::FlightPayload BatchPayload(const std::string& big, const std::string& small) {
  auto schema = arrow::schema(
      {arrow::field("version", arrow::uint64()), arrow::field("data", arrow::binary())});
  arrow::UInt64Builder versions;
  EXPECT_TRUE(versions.AppendValues({7, 8}).ok());
  arrow::BinaryBuilder data;
  EXPECT_TRUE(data.Append(big).ok());
  EXPECT_TRUE(data.Append(small).ok());
  auto batch = arrow::RecordBatch::Make(
      schema, 2, {versions.Finish().ValueOrDie(), data.Finish().ValueOrDie()});
  fl::FlightPayload payload;
  EXPECT_TRUE(arrow::ipc::GetRecordBatchPayload(
                  *batch, arrow::ipc::IpcWriteOptions::Defaults(), &payload.ipc_message)
                  .ok());
  payload.app_metadata = arrow::Buffer::FromString("app");
  return payload;
}

TEST(FlightDataTest, EncodedPayloadDecodesToTheSameBuffers) {
  const std::string big(3 * kZeroCopyBytes + 5, 'x');
  fl::FlightPayload payload = BatchPayload(big, "tail");
  grpc::ByteBuffer encoded;
  ASSERT_TRUE(EncodeFlightData(payload, &encoded).ok());
  // The same bytes as Arrow's own serialization.
  auto buffers = payload.SerializeToBuffers();
  ASSERT_TRUE(buffers.ok());
  std::string expected;
  for (const auto& b : *buffers) {
    if (b) expected += b->ToString();
  }
  EXPECT_EQ(ToString(encoded), expected);

  fl::internal::FlightData decoded;
  ASSERT_TRUE(DecodeFlightData(encoded, &decoded).ok());
  EXPECT_EQ(decoded.descriptor, nullptr);
  ASSERT_NE(decoded.metadata, nullptr);
  EXPECT_TRUE(decoded.metadata->Equals(*payload.ipc_message.metadata));
  ASSERT_NE(decoded.app_metadata, nullptr);
  EXPECT_EQ(decoded.app_metadata->ToString(), "app");
  ASSERT_NE(decoded.body, nullptr);
  EXPECT_EQ(decoded.body->size(), payload.ipc_message.body_length);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(decoded.body->data()) % 8, 0u);
  auto message = decoded.OpenMessage();
  ASSERT_TRUE(message.ok()) << message.status();
}

TEST(FlightDataTest, DescriptorIsDecoded) {
  fl::FlightPayload payload;
  auto descriptor = fl::FlightDescriptor::Path({"app", "session", "key"});
  payload.descriptor =
      arrow::Buffer::FromString(descriptor.SerializeToString().ValueOrDie());
  grpc::ByteBuffer encoded;
  ASSERT_TRUE(EncodeFlightData(payload, &encoded).ok());
  fl::internal::FlightData decoded;
  ASSERT_TRUE(DecodeFlightData(encoded, &decoded).ok());
  ASSERT_NE(decoded.descriptor, nullptr);
  EXPECT_EQ(decoded.descriptor->path, descriptor.path);
}

TEST(FlightDataTest, MalformedFramingIsInvalid) {
  fl::internal::FlightData decoded;
  // data_header claims 100 bytes, 2 follow.
  EXPECT_TRUE(
      DecodeFlightData(ToByteBuffer(std::string("\x12\x64zz", 4)), &decoded).IsInvalid());
  // A tag cut off in the middle of its varint.
  EXPECT_TRUE(DecodeFlightData(ToByteBuffer("\x82"), &decoded).IsInvalid());
  // Wire type 3 (groups) is not skippable here.
  EXPECT_TRUE(DecodeFlightData(ToByteBuffer("\x0b"), &decoded).IsInvalid());
  // An unknown varint field is skipped.
  ASSERT_TRUE(
      DecodeFlightData(ToByteBuffer(std::string("\x20\x05\x1a\x01m", 5)), &decoded).ok());
  EXPECT_EQ(decoded.app_metadata->ToString(), "m");
}

TEST(FlightDataTest, BytesField1) {
  EXPECT_EQ(ToString(EncodeBytesField1("ab")), std::string("\x0a\x02"
                                                           "ab",
                                                           4));
  EXPECT_EQ(ToString(EncodeBytesField1("")), "");
}

}  // namespace
}  // namespace foc::transport
