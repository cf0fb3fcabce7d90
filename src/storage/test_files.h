// Test helper: writes Arrow IPC files the way other writers do (upstream's Rust server:
// ZSTD, non-nullable fields; pyarrow: uncompressed, nullable, maybe large_binary or
// several rows), with Arrow's own builders and writer, independent of object_file.cc.
// Test code only.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/compression.h>

namespace foc::testing {

/// A fresh directory under the system temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "foc-storage-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ForeignFileShape {
  bool zstd = false;
  bool nullable = false;
  bool large_binary = false;
  int rows_per_batch = 1 << 30;  ///< split rows into batches of this many
};

/// Writes an opaque-shaped IPC file with one row per (version, data); a nullopt data is
/// null.
inline arrow::Status WriteForeignOpaqueFile(
    const std::string& path,
    const std::vector<std::pair<uint64_t, std::optional<std::string>>>& rows,
    const ForeignFileShape& shape) {
  auto schema = arrow::schema(
      {arrow::field("version", arrow::uint64(), shape.nullable),
       arrow::field("data", shape.large_binary ? arrow::large_binary() : arrow::binary(),
                    shape.nullable)});
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  if (shape.zstd) {
    ARROW_ASSIGN_OR_RAISE(options.codec,
                          arrow::util::Codec::Create(arrow::Compression::ZSTD));
  }
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, schema, options));
  size_t i = 0;
  do {
    arrow::UInt64Builder versions;
    arrow::BinaryBuilder small;
    arrow::LargeBinaryBuilder large;
    int64_t n = 0;
    for (; i < rows.size() && n < shape.rows_per_batch; ++i, ++n) {
      ARROW_RETURN_NOT_OK(versions.Append(rows[i].first));
      if (rows[i].second) {
        ARROW_RETURN_NOT_OK(shape.large_binary ? large.Append(*rows[i].second)
                                               : small.Append(*rows[i].second));
      } else {
        ARROW_RETURN_NOT_OK(shape.large_binary ? large.AppendNull() : small.AppendNull());
      }
    }
    std::shared_ptr<arrow::Array> v, d;
    ARROW_RETURN_NOT_OK(versions.Finish(&v));
    ARROW_RETURN_NOT_OK(shape.large_binary ? large.Finish(&d) : small.Finish(&d));
    ARROW_RETURN_NOT_OK(
        writer->WriteRecordBatch(*arrow::RecordBatch::Make(schema, n, {v, d})));
  } while (i < rows.size());
  ARROW_RETURN_NOT_OK(writer->Close());
  return out->Close();
}

/// A small native table (pyarrow.table-like) with the flame metadata at `version`.
inline arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeNativeBatch(
    uint64_t version) {
  auto md = arrow::key_value_metadata(
      {"flame.cache.format", "flame.cache.version", "flame.cache.logical_type"},
      {"arrow-table-v1", std::to_string(version), "pyarrow.table"});
  auto schema = arrow::schema(
      {arrow::field("x", arrow::int64()), arrow::field("s", arrow::utf8())}, md);
  arrow::Int64Builder xb;
  arrow::StringBuilder sb;
  ARROW_RETURN_NOT_OK(xb.AppendValues({1, 2, 3}));
  ARROW_RETURN_NOT_OK(sb.AppendValues({"a", "b", "c"}));
  std::shared_ptr<arrow::Array> x, s;
  ARROW_RETURN_NOT_OK(xb.Finish(&x));
  ARROW_RETURN_NOT_OK(sb.Finish(&s));
  return arrow::RecordBatch::Make(schema, 3, {x, s});
}

/// Writes a native table file (upstream shape: ZSTD when `zstd`).
inline arrow::Status WriteForeignNativeFile(const std::string& path, uint64_t version,
                                            bool zstd) {
  ARROW_ASSIGN_OR_RAISE(auto batch, MakeNativeBatch(version));
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  if (zstd) {
    ARROW_ASSIGN_OR_RAISE(options.codec,
                          arrow::util::Codec::Create(arrow::Compression::ZSTD));
  }
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto writer,
                        arrow::ipc::MakeFileWriter(out, batch->schema(), options));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
  ARROW_RETURN_NOT_OK(writer->Close());
  return out->Close();
}

}  // namespace foc::testing
