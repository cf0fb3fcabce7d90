// The flame-object-cache protocol through a real in-process Flight server on port 0 and
// the Arrow Flight C++ client: every RPC, the get-decision table on the wire, error
// codes.
#include <thread>

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/flight/client.h>
#include <arrow/table.h>
#include <arrow/util/key_value_metadata.h>

#include "protocol/protocol.h"
#include "testing/gtest_util.h"
#include "testing/test_server.h"

namespace foc {
namespace {
namespace fl = arrow::flight;

class FlightProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void TearDown() override { Stop(); }

  void Start(StoreOptions options) {
    server_.store_options = options;
    ASSERT_OK(server_.Start());
    auto client_location =
        fl::Location::ForGrpcTcp("127.0.0.1", server_.port()).ValueOrDie();
    client_ = fl::FlightClient::Connect(client_location).ValueOrDie();
  }
  void Stop() {
    if (client_) {
      ASSERT_OK(client_->Close());
    }
    client_.reset();
    ASSERT_OK(server_.Stop());
  }

  static std::shared_ptr<arrow::RecordBatch> Row(const std::string& data) {
    arrow::UInt64Builder v;
    arrow::BinaryBuilder d;
    EXPECT_OK(v.Append(0));
    EXPECT_OK(d.Append(data));
    return arrow::RecordBatch::Make(UploadSchema(), 1,
                                    {v.Finish().ValueOrDie(), d.Finish().ValueOrDie()});
  }

  arrow::Result<PutResultDoc> Put(
      const fl::FlightDescriptor& descriptor,
      const std::shared_ptr<arrow::Schema>& schema,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
    ARROW_ASSIGN_OR_RAISE(auto put, client_->DoPut(descriptor, schema));
    for (const auto& b : batches) ARROW_RETURN_NOT_OK(put.writer->WriteRecordBatch(*b));
    ARROW_RETURN_NOT_OK(put.writer->DoneWriting());
    std::shared_ptr<arrow::Buffer> meta;
    ARROW_RETURN_NOT_OK(put.reader->ReadMetadata(&meta));
    std::shared_ptr<arrow::Buffer> extra;
    ARROW_RETURN_NOT_OK(put.reader->ReadMetadata(&extra));
    if (extra) return arrow::Status::Invalid("more than one PutResult");
    ARROW_RETURN_NOT_OK(put.writer->Close());
    if (!meta) return arrow::Status::Invalid("no PutResult");
    return DecodePutResult(meta->ToString());
  }
  arrow::Result<PutResultDoc> PutBytes(const std::string& path, const std::string& data) {
    return Put(fl::FlightDescriptor::Path({path}), UploadSchema(), {Row(data)});
  }
  arrow::Result<PutResultDoc> PatchBytes(const std::string& key,
                                         const std::string& data) {
    return Put(fl::FlightDescriptor::Command("PATCH:" + key), UploadSchema(),
               {Row(data)});
  }

  struct Reply {
    std::shared_ptr<arrow::Schema> schema;
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    // (version, kind, data) per row
    std::vector<std::tuple<uint64_t, std::string, std::string>> rows;
  };
  arrow::Result<Reply> Get(const std::string& ticket) {
    fl::FlightCallOptions options;
    // Replies arrive zero-copy; have offsets realigned before reading them.
    options.read_options.ensure_alignment =
        arrow::ipc::Alignment::kDataTypeSpecificAlignment;
    ARROW_ASSIGN_OR_RAISE(auto stream, client_->DoGet(options, fl::Ticket{ticket}));
    Reply reply;
    ARROW_ASSIGN_OR_RAISE(reply.schema, stream->GetSchema());
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, stream->Next());
      if (!chunk.data) break;
      reply.batches.push_back(chunk.data);
      if (chunk.data->schema()->GetFieldIndex("kind") < 0) continue;
      for (int64_t i = 0; i < chunk.data->num_rows(); ++i) {
        auto v = std::static_pointer_cast<arrow::UInt64Array>(chunk.data->column(0));
        auto k = std::static_pointer_cast<arrow::StringArray>(chunk.data->column(1));
        auto d = std::static_pointer_cast<arrow::BinaryArray>(chunk.data->column(2));
        reply.rows.emplace_back(v->Value(i), k->GetString(i), d->GetString(i));
      }
    }
    return reply;
  }

  testing::TestServer server_;
  std::unique_ptr<fl::FlightClient> client_;
};

using RowT = std::tuple<uint64_t, std::string, std::string>;

TEST_F(FlightProtocolTest, PutGetPatchWalkTheDecisionTable) {
  ASSERT_OK_AND_ASSIGN(auto put, PutBytes("app/s", "base"));
  EXPECT_EQ(put.version, 1);
  EXPECT_EQ(put.endpoint, "grpc://127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_TRUE(put.key.starts_with("app/s/"));
  EXPECT_FALSE(put.epoch.empty());
  ASSERT_OK_AND_ASSIGN(auto p2, PatchBytes(put.key, "patch-1"));
  ASSERT_OK_AND_ASSIGN(auto p3, PatchBytes(put.key, "patch-2"));
  EXPECT_EQ(p2.version, 2);
  EXPECT_EQ(p3.version, 3);

  ASSERT_OK_AND_ASSIGN(auto full, Get(put.key + ":0"));
  EXPECT_EQ(full.rows,
            (std::vector<RowT>{
                {1, "base", "base"}, {2, "patch", "patch-1"}, {3, "patch", "patch-2"}}));
  EXPECT_EQ(full.batches.size(), 3u);  // one row per batch
  EXPECT_TRUE(full.schema->Equals(*ResponseSchema(put.epoch), /*check_metadata=*/true));

  ASSERT_OK_AND_ASSIGN(auto bare, Get(put.key));
  EXPECT_EQ(bare.rows.size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto patches, Get(put.key + ":1"));
  EXPECT_EQ(patches.rows,
            (std::vector<RowT>{{2, "patch", "patch-1"}, {3, "patch", "patch-2"}}));
  ASSERT_OK_AND_ASSIGN(auto last, Get(put.key + ":2"));
  EXPECT_EQ(last.rows, (std::vector<RowT>{{3, "patch", "patch-2"}}));
  ASSERT_OK_AND_ASSIGN(auto not_modified, Get(put.key + ":3"));
  EXPECT_TRUE(not_modified.batches.empty());
  EXPECT_EQ(not_modified.schema->num_fields(), 3);
  ASSERT_OK_AND_ASSIGN(auto ahead, Get(put.key + ":99"));
  EXPECT_EQ(ahead.rows.size(), 3u);

  ASSERT_OK_AND_ASSIGN(auto update, PutBytes(put.key, "updated-base"));
  EXPECT_EQ(update.version, 4);
  EXPECT_EQ(update.key, put.key);
  ASSERT_OK_AND_ASSIGN(auto after, Get(put.key + ":1"));
  EXPECT_EQ(after.rows, (std::vector<RowT>{{4, "base", "updated-base"}}));
}

TEST_F(FlightProtocolTest, ChunkedUploadsAreConcatenatedInOrder) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches{Row("abc"), Row("def"),
                                                           Row("ghi")};
  ASSERT_OK_AND_ASSIGN(auto put, Put(fl::FlightDescriptor::Path({"app/pkg/file.tar.gz"}),
                                     UploadSchema(), batches));
  EXPECT_EQ(put.key, "app/pkg/file.tar.gz");
  ASSERT_OK_AND_ASSIGN(auto got, Get(put.key + ":0"));
  EXPECT_EQ(got.rows, (std::vector<RowT>{{1, "base", "abcdefghi"}}));
}

TEST_F(FlightProtocolTest, LargeBinaryUploadsAndEmptyUploadsAreAccepted) {
  auto schema = arrow::schema({arrow::field("version", arrow::uint64()),
                               arrow::field("data", arrow::large_binary())});
  arrow::UInt64Builder v;
  arrow::LargeBinaryBuilder d;
  ASSERT_OK(v.Append(0));
  ASSERT_OK(d.Append("large"));
  auto batch = arrow::RecordBatch::Make(
      schema, 1, {v.Finish().ValueOrDie(), d.Finish().ValueOrDie()});
  ASSERT_OK_AND_ASSIGN(auto put,
                       Put(fl::FlightDescriptor::Path({"a/s/lb"}), schema, {batch}));
  ASSERT_OK_AND_ASSIGN(auto got, Get("a/s/lb:0"));
  EXPECT_EQ(std::get<2>(got.rows.at(0)), "large");
  ASSERT_OK_AND_ASSIGN(
      auto empty, Put(fl::FlightDescriptor::Path({"a/s/empty"}), UploadSchema(), {}));
  ASSERT_OK_AND_ASSIGN(auto got_empty, Get("a/s/empty:0"));
  EXPECT_EQ(got_empty.rows, (std::vector<RowT>{{1, "base", ""}}));
}

TEST_F(FlightProtocolTest, NativeTablesKeepSchemaMetadataAndBatches) {
  auto md = arrow::key_value_metadata(
      {"flame.cache.format", "flame.cache.version", "flame.cache.logical_type", "pandas"},
      {"arrow-table-v1", "0", "pandas.dataframe", "{}"});
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int32()), arrow::field("label", arrow::utf8())}, md);
  arrow::Int32Builder ids;
  arrow::StringBuilder labels;
  ASSERT_OK(ids.AppendValues({1, 2, 3}));
  ASSERT_OK(labels.AppendValues({"a", "b", "c"}));
  auto b1 = arrow::RecordBatch::Make(
      schema, 3, {ids.Finish().ValueOrDie(), labels.Finish().ValueOrDie()});
  auto b2 = b1->Slice(1, 2);
  ASSERT_OK_AND_ASSIGN(auto put,
                       Put(fl::FlightDescriptor::Path({"app/s"}), schema, {b1, b2}));
  ASSERT_OK_AND_ASSIGN(auto got, Get(put.key + ":0"));
  ASSERT_EQ(got.batches.size(), 2u);
  EXPECT_EQ(got.batches[0]->num_rows(), 3);
  EXPECT_EQ(got.batches[1]->num_rows(), 2);
  EXPECT_EQ(got.schema->metadata()->Get("flame.cache.version").ValueOrDie(), "1");
  EXPECT_EQ(got.schema->metadata()->Get("flame.cache.logical_type").ValueOrDie(),
            "pandas.dataframe");
  EXPECT_EQ(got.schema->metadata()->Get("pandas").ValueOrDie(), "{}");
  EXPECT_TRUE(got.batches[1]->column(1)->Equals(*b2->column(1)));
  ASSERT_OK_AND_ASSIGN(auto nm, Get(put.key + ":1"));
  EXPECT_TRUE(nm.batches.empty());
  // A PATCH of a native table is refused clearly (upstream accepts it and never shows
  // it).
  EXPECT_STATUS(Invalid, "native Arrow table", PatchBytes(put.key, "delta"));
  // GetFlightInfo and GetSchema carry the table's schema.
  ASSERT_OK_AND_ASSIGN(auto info,
                       client_->GetFlightInfo(fl::FlightDescriptor::Path({put.key})));
  arrow::ipc::DictionaryMemo memo;
  ASSERT_OK_AND_ASSIGN(auto info_schema, info->GetSchema(&memo));
  EXPECT_EQ(info_schema->field(0)->name(), "id");
}

TEST_F(FlightProtocolTest, DeleteByKeySessionAndApp) {
  for (const char* k : {"a/s/x", "a/s/y", "a/s2/x", "a/s-extra/x", "b/s/x"}) {
    ASSERT_OK(PutBytes(k, "v"));
  }
  auto del = [&](const std::string& body,
                 const std::string& type = "DELETE") -> arrow::Result<std::string> {
    ARROW_ASSIGN_OR_RAISE(auto results, client_->DoAction(fl::Action{
                                            type, arrow::Buffer::FromString(body)}));
    ARROW_ASSIGN_OR_RAISE(auto r, results->Next());
    ARROW_ASSIGN_OR_RAISE(auto none, results->Next());
    if (none) return arrow::Status::Invalid("more than one result");
    return r->body->ToString();
  };
  ASSERT_OK_AND_ASSIGN(auto ok, del("a/s/x"));
  EXPECT_EQ(ok, "OK");
  EXPECT_STATUS(KeyError, "not found", Get("a/s/x:0"));
  ASSERT_OK(Get("a/s/y:0"));
  ASSERT_OK(del("a/s"));
  EXPECT_STATUS(KeyError, "not found", Get("a/s/y:0"));
  ASSERT_OK(Get("a/s2/x:0"));
  ASSERT_OK(Get("a/s-extra/x:0"));
  ASSERT_OK(del("a/*"));
  EXPECT_STATUS(KeyError, "not found", Get("a/s2/x:0"));
  ASSERT_OK(Get("b/s/x:0"));
  ASSERT_OK(del("nothing/here"));  // idempotent
  EXPECT_STATUS(Invalid, "Unknown action type", del("a/*", "PURGE"));
  EXPECT_STATUS(Invalid, "wildcard", del("a/*/x"));
  // Re-created after DELETE: the version continues above the old one.
  ASSERT_OK_AND_ASSIGN(auto again, PutBytes("a/s/x", "new"));
  EXPECT_GT(again.version, 1);
}

TEST_F(FlightProtocolTest, ClientMistakesAreInvalidArgumentOrNotFound) {
  EXPECT_STATUS(Invalid, "Invalid key", Get("bad"));
  EXPECT_STATUS(Invalid, "version", Get("a/b/c:x"));
  EXPECT_STATUS(Invalid, "'..'", PutBytes("../etc", "x"));
  EXPECT_STATUS(Invalid, "'*'", PutBytes("app/*", "x"));
  EXPECT_STATUS(KeyError, "not found for patch", PatchBytes("a/s/missing", "x"));
  EXPECT_STATUS(Invalid, "PATCH", PatchBytes("a/s", "x"));
  auto wrong = arrow::schema(
      {arrow::field("version", arrow::int32()), arrow::field("data", arrow::binary())});
  arrow::Int32Builder v;
  arrow::BinaryBuilder d;
  ASSERT_OK(v.Append(0));
  ASSERT_OK(d.Append("x"));
  auto batch = arrow::RecordBatch::Make(
      wrong, 1, {v.Finish().ValueOrDie(), d.Finish().ValueOrDie()});
  EXPECT_STATUS(Invalid, "must be uint64",
                Put(fl::FlightDescriptor::Path({"a/s"}), wrong, {batch}));
  EXPECT_STATUS(
      Invalid, "Unknown DoPut command",
      Put(fl::FlightDescriptor::Command("DROP:a/s/o"), UploadSchema(), {Row("x")}));
}

// A client controls every buffer of an upload: offsets pointing outside the data buffer
// must be refused, never sliced into an object (an out-of-bounds read of server memory).
TEST_F(FlightProtocolTest, UploadsWithOutOfRangeOffsetsAreRefused) {
  arrow::UInt64Builder v;
  ASSERT_OK(v.Append(0));
  const int32_t offsets[2] = {0, 1 << 20};  // 1 MiB cell in a 4-byte data buffer
  auto offsets_buf = arrow::Buffer::FromString(
      std::string(reinterpret_cast<const char*>(offsets), sizeof(offsets)));
  auto data = arrow::ArrayData::Make(
      arrow::binary(), 1, {nullptr, offsets_buf, arrow::Buffer::FromString("abcd")}, 0);
  auto bad = arrow::RecordBatch::Make(UploadSchema(), 1,
                                      {v.Finish().ValueOrDie(), arrow::MakeArray(data)});
  EXPECT_STATUS(Invalid, "",
                Put(fl::FlightDescriptor::Path({"a/s/bad"}), UploadSchema(), {bad}));
  EXPECT_STATUS(Invalid, "",
                Put(fl::FlightDescriptor::Path({"a/s"}), UploadSchema(), {bad}));
  ASSERT_OK(PutBytes("a/s/o", "x").status());
  EXPECT_STATUS(Invalid, "",
                Put(fl::FlightDescriptor::Command("PATCH:a/s/o"), UploadSchema(), {bad}));
  // A native table is stored as sent: its batches must be valid too.
  auto native_schema = arrow::schema({arrow::field("s", arrow::binary())})
                           ->WithMetadata(arrow::key_value_metadata(
                               {"flame.cache.format"}, {"arrow-table-v1"}));
  auto native = arrow::RecordBatch::Make(native_schema, 1, {arrow::MakeArray(data)});
  EXPECT_STATUS(Invalid, "",
                Put(fl::FlightDescriptor::Path({"a/s/t"}), native_schema, {native}));
  EXPECT_STATUS(KeyError, "", Get("a/s/bad:0"));
}

TEST_F(FlightProtocolTest, KeysWithColonsAreReadable) {
  ASSERT_OK(PutBytes("app/s/model:v2", "weights"));
  ASSERT_OK_AND_ASSIGN(auto got, Get("app/s/model:v2:0"));
  EXPECT_EQ(std::get<2>(got.rows.at(0)), "weights");
}

TEST_F(FlightProtocolTest, FlightInfoListingAndSchema) {
  ASSERT_OK_AND_ASSIGN(auto put, PutBytes("app/s/o", "12345"));
  ASSERT_OK_AND_ASSIGN(auto info,
                       client_->GetFlightInfo(fl::FlightDescriptor::Path({"app/s/o"})));
  ASSERT_EQ(info->endpoints().size(), 1u);
  EXPECT_EQ(info->endpoints()[0].ticket.ticket, "app/s/o:0");
  EXPECT_EQ(info->endpoints()[0].locations.at(0).ToString(), put.endpoint);
  ASSERT_OK_AND_ASSIGN(auto listing, client_->ListFlights());
  ASSERT_OK_AND_ASSIGN(auto first, listing->Next());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->total_bytes(), 5);
  ASSERT_OK_AND_ASSIGN(auto none, listing->Next());
  EXPECT_EQ(none, nullptr);
  ASSERT_OK_AND_ASSIGN(auto schema_result,
                       client_->GetSchema(fl::FlightDescriptor::Path({"app/s/o"})));
  arrow::ipc::DictionaryMemo memo;
  ASSERT_OK_AND_ASSIGN(auto schema, schema_result->GetSchema(&memo));
  EXPECT_EQ(schema->field(1)->name(), "kind");
  EXPECT_STATUS(Invalid, "Empty descriptor path",
                client_->GetFlightInfo(fl::FlightDescriptor::Command("x")));
}

TEST_F(FlightProtocolTest, ConcurrentPatchersOnOneKeyGetDistinctVersions) {
  ASSERT_OK_AND_ASSIGN(auto put, PutBytes("app/s/hot", "b"));
  const int kThreads = 8, kEach = 25;
  std::vector<std::vector<int64_t>> versions(kThreads);
  std::vector<std::thread> threads;
  const int port = server_.port();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto loc = fl::Location::ForGrpcTcp("127.0.0.1", port).ValueOrDie();
      auto client = fl::FlightClient::Connect(loc).ValueOrDie();
      for (int i = 0; i < kEach; ++i) {
        auto w =
            client
                ->DoPut(fl::FlightDescriptor::Command("PATCH:app/s/hot"), UploadSchema())
                .ValueOrDie();
        EXPECT_OK(w.writer->WriteRecordBatch(*Row(std::to_string(t))));
        EXPECT_OK(w.writer->DoneWriting());
        std::shared_ptr<arrow::Buffer> meta;
        EXPECT_OK(w.reader->ReadMetadata(&meta));
        EXPECT_OK(w.writer->Close());
        versions[t].push_back(DecodePutResult(meta->ToString()).ValueOrDie().version);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> all;
  for (const auto& v : versions) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], static_cast<int64_t>(i) + 2);
  ASSERT_OK_AND_ASSIGN(auto got, Get("app/s/hot:0"));
  EXPECT_EQ(got.rows.size(), all.size() + 1);
}

TEST_F(FlightProtocolTest, MemoryOnlyFullIsUnavailableWithResourceExhaustedMessage) {
  Stop();
  StoreOptions options;
  options.max_memory_bytes = 10000;
  options.memory_full = MemoryFullPolicy::kRefuse;
  Start(options);
  ASSERT_OK(PutBytes("a/s/one", std::string(6000, 'x')));
  auto refused = PutBytes("a/s/two", std::string(6000, 'y'));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("RESOURCE_EXHAUSTED"), std::string::npos)
      << refused.status().ToString();
  auto detail = fl::FlightStatusDetail::UnwrapStatus(refused.status());
  ASSERT_NE(detail, nullptr) << refused.status().ToString();
  EXPECT_EQ(detail->code(), fl::FlightStatusCode::Unavailable);
  ASSERT_OK(Get("a/s/one:0"));
}

}  // namespace
}  // namespace foc
