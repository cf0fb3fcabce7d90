#include "storage/object_file.h"

#include <string>

#include <arrow/io/file.h>
#include <arrow/memory_pool.h>

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

}  // namespace
}  // namespace foc
