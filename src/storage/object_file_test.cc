#include "storage/object_file.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include <arrow/array/builder_primitive.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/util/key_value_metadata.h>

#include "storage/durable_file.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

using testing::ForeignFileShape;
using testing::TempDir;

std::string ToString(const std::shared_ptr<arrow::Buffer>& b) {
  return b ? b->ToString() : "";
}

arrow::Result<std::shared_ptr<arrow::io::MemoryMappedFile>> Map(const std::string& path) {
  return arrow::io::MemoryMappedFile::Open(path, arrow::io::FileMode::READ);
}

arrow::Status WriteOpaque(const std::string& path, uint64_t version,
                          const std::string& data, bool compress) {
  return WriteFileSynced(path,
                         [&](arrow::io::OutputStream* out) {
                           return WriteOpaqueFile(
                               out, version, arrow::Buffer::FromString(data), {compress});
                         })
      .status();
}

TEST(ObjectFileTest, OpaqueRoundTripUncompressedIsZeroCopy) {
  TempDir dir;
  const std::string path = dir.path() + "/o.arrow";
  const std::string payload(1 << 20, 'p');
  ASSERT_OK(WriteOpaque(path, 7, payload, false));
  ASSERT_OK_AND_ASSIGN(auto file, Map(path));
  ASSERT_OK_AND_ASSIGN(auto whole, file->ReadAt(0, file->GetSize().ValueOrDie()));
  ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));
  EXPECT_EQ(object->base_version(), 7u);
  EXPECT_FALSE(object->is_native());
  ASSERT_EQ(ToString(object->data()), payload);
  // The payload is a slice of the mapping, not a copy.
  EXPECT_GE(object->data()->data(), whole->data());
  EXPECT_LE(object->data()->data() + object->data()->size(),
            whole->data() + whole->size());
  ASSERT_OK_AND_ASSIGN(auto header, ReadFileHeader(file));
  EXPECT_EQ(header.version, 7u);
  EXPECT_FALSE(header.native);
}

TEST(ObjectFileTest, OpaqueRoundTripCompressedAndEmpty) {
  TempDir dir;
  ASSERT_OK(WriteOpaque(dir.path() + "/z.arrow", 3, std::string(100000, 'z'), true));
  ASSERT_OK_AND_ASSIGN(auto file, Map(dir.path() + "/z.arrow"));
  ASSERT_OK_AND_ASSIGN(auto delta, ReadDeltaFile(file));
  EXPECT_EQ(delta.version, 3u);
  EXPECT_EQ(ToString(delta.data), std::string(100000, 'z'));
  EXPECT_LT(FileSize(dir.path() + "/z.arrow").ValueOrDie(), 10000);

  ASSERT_OK(WriteOpaque(dir.path() + "/e.arrow", 1, "", false));
  ASSERT_OK_AND_ASSIGN(auto efile, Map(dir.path() + "/e.arrow"));
  ASSERT_OK_AND_ASSIGN(auto empty, ReadBaseFile(efile));
  EXPECT_EQ(empty->data()->size(), 0);
}

TEST(ObjectFileTest, ReadsUpstreamAndPyarrowShapes) {
  TempDir dir;
  struct Case {
    const char* name;
    ForeignFileShape shape;
  } cases[] = {
      {"upstream-zstd", {true, false, false, 1 << 30}},
      {"pyarrow-nullable", {false, true, false, 1 << 30}},
      {"pyarrow-large", {false, true, true, 1 << 30}},
      {"pyarrow-batches", {false, true, false, 1}},
      {"zstd-large-batches", {true, true, true, 2}},
  };
  for (const auto& c : cases) {
    const std::string path = dir.path() + "/" + c.name + ".arrow";
    ASSERT_OK(testing::WriteForeignOpaqueFile(
        path,
        {{5, std::string("ab")}, {0, std::nullopt}, {0, std::string("cd")}, {0, "e"}},
        c.shape));
    ASSERT_OK_AND_ASSIGN(auto file, Map(path));
    ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));
    EXPECT_EQ(object->base_version(), 5u) << c.name;
    EXPECT_EQ(ToString(object->data()), "abcde") << c.name;
    ASSERT_OK_AND_ASSIGN(auto header, ReadFileHeader(file));
    EXPECT_EQ(header.version, 5u) << c.name;
  }
}

TEST(ObjectFileTest, NativeRoundTripKeepsSchemaAndVersion) {
  TempDir dir;
  for (bool zstd : {false, true}) {
    const std::string path = dir.path() + (zstd ? "/nz.arrow" : "/n.arrow");
    ASSERT_OK(testing::WriteForeignNativeFile(path, 9, zstd));
    ASSERT_OK_AND_ASSIGN(auto file, Map(path));
    ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));
    ASSERT_TRUE(object->is_native());
    EXPECT_EQ(object->base_version(), 9u);
    ASSERT_EQ(object->table()->batches.size(), 1u);
    EXPECT_EQ(object->table()->batches[0]->num_rows(), 3);
    ASSERT_OK_AND_ASSIGN(auto header, ReadFileHeader(file));
    EXPECT_TRUE(header.native);
    EXPECT_EQ(header.version, 9u);
    // And back through our writer.
    const std::string copy = path + ".copy";
    ASSERT_OK(WriteFileSynced(copy, [&](arrow::io::OutputStream* out) {
                return WriteNativeFile(out, *object->table());
              }).status());
    ASSERT_OK_AND_ASSIGN(auto copy_file, Map(copy));
    ASSERT_OK_AND_ASSIGN(auto again, ReadBaseFile(copy_file));
    EXPECT_TRUE(again->table()->batches[0]->Equals(*object->table()->batches[0]));
    EXPECT_EQ(NativeSchemaVersion(*again->table()->schema), 9u);
    ASSERT_OK_AND_ASSIGN(auto schema, ReadFileSchema(copy_file));
    EXPECT_TRUE(IsNativeTableSchema(*schema));
  }
}

TEST(ObjectFileTest, HeaderDoesNotDecompressTheData) {
  TempDir dir;
  const std::string path = dir.path() + "/big.arrow";
  ASSERT_OK(WriteOpaque(path, 4, std::string(32 << 20, 'x'), true));  // 32 MiB, ZSTD
  ASSERT_OK_AND_ASSIGN(auto file, Map(path));
  auto* pool = arrow::default_memory_pool();
  const int64_t before = pool->total_bytes_allocated();
  ASSERT_OK_AND_ASSIGN(auto header, ReadFileHeader(file));
  const int64_t header_bytes = pool->total_bytes_allocated() - before;
  EXPECT_EQ(header.version, 4u);
  EXPECT_LT(header_bytes, 1 << 20)
      << "reading a header allocated " << header_bytes << " bytes";
  ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));  // this one decompresses
  EXPECT_GE(pool->total_bytes_allocated() - before, 32 << 20);
  EXPECT_EQ(object->data()->size(), 32 << 20);
}

TEST(ObjectFileTest, RejectsForeignContent) {
  TempDir dir;
  const std::string path = dir.path() + "/junk.arrow";
  ASSERT_OK(WriteFileSynced(path, [](arrow::io::OutputStream* out) {
              return out->Write("hello, not arrow", 16);
            }).status());
  ASSERT_OK_AND_ASSIGN(auto file, Map(path));
  EXPECT_STATUS(Invalid, "not an Arrow IPC file", ReadBaseFile(file));
  EXPECT_STATUS(Invalid, "not an Arrow IPC file", ReadFileHeader(file));

  // Wrong shape: a utf8 first column.
  auto schema =
      arrow::schema({arrow::field("a", arrow::utf8()), arrow::field("b", arrow::utf8())});
  const std::string shaped = dir.path() + "/shape.arrow";
  {
    ASSERT_OK_AND_ASSIGN(auto out, arrow::io::FileOutputStream::Open(shaped));
    ASSERT_OK_AND_ASSIGN(auto writer, arrow::ipc::MakeFileWriter(out, schema));
    ASSERT_OK(writer->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto sfile, Map(shaped));
  EXPECT_STATUS(Invalid, "column 0", ReadBaseFile(sfile));
  // A native table is no delta.
  ASSERT_OK(testing::WriteForeignNativeFile(dir.path() + "/n.arrow", 1, false));
  ASSERT_OK_AND_ASSIGN(auto nfile, Map(dir.path() + "/n.arrow"));
  EXPECT_STATUS(Invalid, "native", ReadDeltaFile(nfile));
  // No rows.
  ASSERT_OK(testing::WriteForeignOpaqueFile(dir.path() + "/empty.arrow", {}, {}));
  ASSERT_OK_AND_ASSIGN(auto efile, Map(dir.path() + "/empty.arrow"));
  EXPECT_STATUS(Invalid, "no rows", ReadBaseFile(efile));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(ObjectFileChecksumTest, FilesRecordTheirChecksumAndVersionInTheFooter) {
  TempDir dir;
  const std::string path = dir.path() + "/o.arrow";
  ASSERT_OK(WriteOpaque(path, 42, "payload", false));
  ASSERT_OK_AND_ASSIGN(auto file, Map(path));
  ASSERT_OK_AND_ASSIGN(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  ASSERT_NE(reader->metadata(), nullptr);
  EXPECT_EQ(reader->metadata()->Get("flame.cache.version").ValueOr(""), "42");
  EXPECT_TRUE(reader->metadata()
                  ->Get("flame.cache.checksum")
                  .ValueOr("")
                  .starts_with("xxh3-64:"));
  // The schema is upstream's: no metadata there (upstream and pyarrow read it as ever).
  EXPECT_EQ(reader->schema()->metadata(), nullptr);
  ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));
  EXPECT_EQ(ToString(object->data()), "payload");
}

// Every single flipped bit of a stored file: the read fails or returns exactly the
// original (a bit of the footer that no reader looks at); never other bytes or another
// version. Flips before the footer are all checksum mismatches.
TEST(ObjectFileChecksumTest, NoFlippedBitIsEverServed) {
  TempDir dir;
  for (const bool compress : {false, true}) {
    const std::string path = dir.path() + (compress ? "/z.arrow" : "/o.arrow");
    ASSERT_OK(WriteOpaque(path, 9, "the-precious-payload-0123456789", compress));
    const std::string good = Slurp(path);
    int32_t footer = 0;
    std::memcpy(&footer, good.data() + good.size() - 10, sizeof(footer));
    const size_t footer_start = good.size() - 10 - static_cast<size_t>(footer);
    for (size_t i = 0; i < good.size(); ++i) {
      for (const int bit : {0, 5}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        Spit(path, bad);
        auto file = Map(path).ValueOrDie();
        auto base = ReadBaseFile(file);
        if (base.ok()) {
          EXPECT_GE(i, footer_start) << "byte " << i;
          EXPECT_EQ((*base)->version(), 9u) << "byte " << i;
          EXPECT_EQ(ToString((*base)->data()), "the-precious-payload-0123456789")
              << "byte " << i;
        } else if (i >= 8 && i < footer_start) {
          EXPECT_TRUE(IsChecksumMismatch(base.status()))
              << "byte " << i << ": " << base.status().ToString();
        }
        auto delta = ReadDeltaFile(file);
        if (delta.ok()) {
          EXPECT_EQ(delta->version, 9u) << "byte " << i;
          EXPECT_EQ(ToString(delta->data), "the-precious-payload-0123456789");
        }
        auto header = ReadFileHeader(file, /*verify_checksum=*/true);
        if (header.ok()) {
          EXPECT_EQ(header->version, 9u) << "byte " << i;
        }
      }
    }
  }
}

TEST(ObjectFileChecksumTest, NativeTablesAreCheckedToo) {
  TempDir dir;
  auto schema = WithNativeVersion(
      arrow::schema(
          {arrow::field("x", arrow::int64())},
          arrow::key_value_metadata({kFormatMetadataKey}, {kNativeTableFormat})),
      5);
  for (const int batches : {0, 2}) {
    const std::string path = dir.path() + "/n" + std::to_string(batches) + ".arrow";
    NativeTable table{schema, {}};
    for (int b = 0; b < batches; ++b) {
      arrow::Int64Builder builder;
      ASSERT_OK(builder.AppendValues({1, 2, 3}));
      table.batches.push_back(
          arrow::RecordBatch::Make(schema, 3, {builder.Finish().ValueOrDie()}));
    }
    ASSERT_OK(WriteFileSynced(path, [&](arrow::io::OutputStream* out) {
                return WriteNativeFile(out, table);
              }).status());
    ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(Map(path).ValueOrDie()));
    EXPECT_TRUE(object->is_native());
    EXPECT_EQ(object->version(), 5u);
    if (batches == 0) continue;
    std::string bytes = Slurp(path);
    const size_t at = bytes.rfind(std::string("\x03\0\0\0\0\0\0\0", 8));
    ASSERT_NE(at, std::string::npos);
    bytes[at] = 4;  // the last value 3 becomes 4
    Spit(path, bytes);
    auto corrupt = ReadBaseFile(Map(path).ValueOrDie());
    EXPECT_TRUE(IsChecksumMismatch(corrupt.status())) << corrupt.status().ToString();
  }
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A spooled file is byte for byte what WriteOpaqueFile writes (checksum included), for
// payloads split anywhere, and a second Finish (a retry at another version) rewrites it.
TEST(OpaqueFileSpoolTest, WritesExactlyWhatWriteOpaqueFileWrites) {
  TempDir dir;
  for (const int64_t size :
       {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{(4 << 20) + 3}}) {
    std::string payload(static_cast<size_t>(size), '\0');
    for (int64_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 31 + 7);
    const std::string spooled = dir.path() + "/s" + std::to_string(size) + ".arrow";
    ASSERT_OK_AND_ASSIGN(auto spool, OpaqueFileSpool::Create(spooled));
    for (int64_t at = 0; at < size;) {
      const int64_t n = std::min<int64_t>(size - at, 1 + at % 1000003);
      ASSERT_OK(spool->Append(reinterpret_cast<const uint8_t*>(payload.data()) + at, n));
      at += n;
    }
    EXPECT_EQ(spool->payload_bytes(), size);
    for (const uint64_t version : {uint64_t{1} << 40, uint64_t{3}}) {
      ASSERT_OK_AND_ASSIGN(const int64_t written, spool->Finish(version));
      const std::string plain = dir.path() + "/p" + std::to_string(size) + "-" +
                                std::to_string(version) + ".arrow";
      ASSERT_OK(WriteOpaque(plain, version, payload, false));
      const std::string got = FileBytes(spooled);
      EXPECT_EQ(static_cast<int64_t>(got.size()), written);
      EXPECT_TRUE(got == FileBytes(plain)) << "size " << size << " version " << version;
      ASSERT_OK_AND_ASSIGN(auto file, Map(spooled));
      ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));  // checksum verified
      EXPECT_EQ(object->base_version(), version);
      EXPECT_TRUE(ToString(object->data()) == payload);
    }
  }
}

TEST(OpaqueFileSpoolTest, RefusesAnEmptyPayloadAndAnExistingName) {
  TempDir dir;
  const std::string path = dir.path() + "/s.arrow";
  ASSERT_OK_AND_ASSIGN(auto spool, OpaqueFileSpool::Create(path));
  EXPECT_TRUE(spool->Finish(1).status().IsInvalid());
  EXPECT_FALSE(OpaqueFileSpool::Create(path).ok());
}

}  // namespace
}  // namespace foc
