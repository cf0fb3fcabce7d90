// Golden wire samples (tests/wire/): the IPC bytes of each DoGet reply shape and the BSON
// PutResults, as our encoders (protocol/) produce them. This test fails when an encoder's
// bytes change; tests/python/test_wire_samples.py reads the same files with pyarrow and
// bson. Regenerate after an intended change with scripts/gen-wire-samples.sh (which runs
// this test with FOC_WIRE_WRITE=1) and say why in the commit.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>

#include "object/object.h"
#include "protocol/protocol.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

constexpr char kEpoch[] = "epoch-1";

// An IPC stream (schema message, batches, end-of-stream marker) with default options:
// what a Flight DoGet carries, message for message.
arrow::Result<std::string> Stream(
    const std::shared_ptr<arrow::Schema>& schema,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, schema));
  for (const auto& b : batches) ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*b));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  return buffer->ToString();
}

arrow::Result<std::string> OpaqueReply(
    const std::vector<std::tuple<uint64_t, std::string_view, std::string>>& rows) {
  const auto schema = ResponseSchema(kEpoch);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (const auto& [version, kind, data] : rows) {
    ARROW_ASSIGN_OR_RAISE(
        auto b, ReplyRow(schema, version, kind, arrow::Buffer::FromString(data)));
    batches.push_back(std::move(b));
  }
  return Stream(schema, batches);
}

arrow::Result<std::string> NativeReply() {
  auto schema = arrow::schema(
      {arrow::field("x", arrow::int64()), arrow::field("y", arrow::utf8())},
      arrow::key_value_metadata({kFormatMetadataKey}, {kNativeTableFormat}));
  schema = WithNativeVersion(schema, 4);
  auto md = schema->metadata()->Copy();
  md->Append(kEpochMetadataKey, kEpoch);  // as the server adds it (flight_service.cc)
  schema = schema->WithMetadata(md);
  arrow::Int64Builder x;
  arrow::StringBuilder y;
  ARROW_RETURN_NOT_OK(x.AppendValues({1, 2, 3}));
  ARROW_RETURN_NOT_OK(y.Append("a"));
  ARROW_RETURN_NOT_OK(y.Append("b"));
  ARROW_RETURN_NOT_OK(y.AppendNull());
  ARROW_ASSIGN_OR_RAISE(auto xs, x.Finish());
  ARROW_ASSIGN_OR_RAISE(auto ys, y.Finish());
  return Stream(schema, {arrow::RecordBatch::Make(schema, 3, {xs, ys})});
}

arrow::Result<std::string> PutResult(std::string epoch) {
  ARROW_ASSIGN_OR_RAISE(
      auto buffer, EncodePutResult({"grpc://127.0.0.1:9090", "app/ses/obj", 3, epoch}));
  return buffer->ToString();
}

// tests/wire/README.md describes each file; test_wire_samples.py checks their content.
std::vector<std::pair<std::string, arrow::Result<std::string>>> Samples() {
  return {
      {"reply_not_modified.arrows", OpaqueReply({})},
      {"reply_full.arrows",
       OpaqueReply(
           {{1, kKindBase, "hello"}, {2, kKindPatch, " world"}, {3, kKindPatch, "!"}})},
      {"reply_patch_only.arrows", OpaqueReply({{3, kKindPatch, "!"}})},
      {"reply_empty_payload.arrows", OpaqueReply({{1, kKindBase, ""}})},
      {"reply_native.arrows", NativeReply()},
      {"put_result.bson", PutResult("")},
      {"put_result_epoch.bson", PutResult(kEpoch)},
  };
}

TEST(WireSamplesTest, EncodersProduceTheCommittedBytes) {
  const bool write = std::getenv("FOC_WIRE_WRITE") != nullptr;
  for (auto& [name, bytes] : Samples()) {
    ASSERT_OK(bytes.status()) << name;
    const std::string path = std::string(FOC_WIRE_DIR) + "/" + name;
    if (write) {
      std::ofstream(path, std::ios::binary) << *bytes;
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good()) << "missing " << path << " (scripts/gen-wire-samples.sh)";
    std::stringstream committed;
    committed << in.rdbuf();
    EXPECT_EQ(committed.str(), *bytes)
        << name
        << ": the encoder's bytes differ from the committed sample; if the change "
        << "is intended, run scripts/gen-wire-samples.sh and explain it in the commit";
  }
}

TEST(WireSamplesTest, CommittedPutResultsDecode) {
  for (const char* name : {"put_result.bson", "put_result_epoch.bson"}) {
    std::ifstream in(std::string(FOC_WIRE_DIR) + "/" + name, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    ASSERT_OK_AND_ASSIGN(auto doc, DecodePutResult(s.str()));
    EXPECT_EQ(doc.endpoint, "grpc://127.0.0.1:9090");
    EXPECT_EQ(doc.key, "app/ses/obj");
    EXPECT_EQ(doc.version, 3);
  }
}

}  // namespace
}  // namespace foc
