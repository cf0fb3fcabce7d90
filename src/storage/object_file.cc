#include "storage/object_file.h"

#include <cstring>
#include <limits>
#include <vector>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/compression.h>

namespace foc {
namespace {

arrow::Result<arrow::ipc::IpcWriteOptions> WriteOptions(
    const ObjectFileWriteOptions& options) {
  auto ipc = arrow::ipc::IpcWriteOptions::Defaults();
  ipc.use_threads = false;
  if (options.compress) {
    ARROW_ASSIGN_OR_RAISE(ipc.codec,
                          arrow::util::Codec::Create(arrow::Compression::ZSTD));
  }
  return ipc;
}

arrow::ipc::IpcReadOptions ReadOptions() {
  auto ipc = arrow::ipc::IpcReadOptions::Defaults();
  ipc.use_threads = false;
  return ipc;
}

bool IsBinaryLike(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
      return true;
    default:
      return false;
  }
}

// Checks the opaque shape by position (as upstream): column 0 an unsigned/signed 64-bit
// integer, column 1 binary-like. Extra columns are ignored.
arrow::Status CheckOpaqueSchema(const arrow::Schema& schema) {
  if (schema.num_fields() < 2) {
    return arrow::Status::Invalid(
        "not an object file: expected columns (version, data), found ",
        schema.num_fields(), " column(s)");
  }
  const auto id = schema.field(0)->type()->id();
  if (id != arrow::Type::UINT64 && id != arrow::Type::INT64) {
    return arrow::Status::Invalid("not an object file: column 0 (version) has type ",
                                  schema.field(0)->type()->ToString());
  }
  if (!IsBinaryLike(*schema.field(1)->type())) {
    return arrow::Status::Invalid("not an object file: column 1 (data) has type ",
                                  schema.field(1)->type()->ToString());
  }
  return arrow::Status::OK();
}

uint64_t VersionAt(const arrow::Array& column, int64_t row) {
  if (column.IsNull(row)) return 0;
  if (column.type_id() == arrow::Type::UINT64) {
    return static_cast<const arrow::UInt64Array&>(column).Value(row);
  }
  const int64_t v = static_cast<const arrow::Int64Array&>(column).Value(row);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

// The concatenated data of every row of one binary-like column, as one buffer: a slice of
// the column's value buffer (no copy) unless nulls force a gather.
template <typename ArrayType>
arrow::Result<std::shared_ptr<arrow::Buffer>> ColumnPayload(const ArrayType& array) {
  const int64_t n = array.length();
  if (n == 0) return std::make_shared<arrow::Buffer>(nullptr, 0);
  const auto& values = array.value_data();
  if (array.null_count() == 0) {
    const int64_t start = array.value_offset(0);
    const int64_t end = array.value_offset(n);
    if (end == start || !values) return std::make_shared<arrow::Buffer>(nullptr, 0);
    if (start < 0 || end < start || end > values->size()) {
      return arrow::Status::Invalid("corrupt data column: offsets ", start, "..", end,
                                    " outside a buffer of ", values->size(), " bytes");
    }
    return arrow::SliceBuffer(values, start, end - start);
  }
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!array.IsNull(i)) total += array.value_length(i);
  }
  ARROW_ASSIGN_OR_RAISE(auto out, arrow::AllocateBuffer(total));
  uint8_t* dst = out->mutable_data();
  for (int64_t i = 0; i < n; ++i) {
    if (array.IsNull(i)) continue;
    auto view = array.GetView(i);
    std::memcpy(dst, view.data(), view.size());
    dst += view.size();
  }
  return std::shared_ptr<arrow::Buffer>(std::move(out));
}

arrow::Result<std::shared_ptr<arrow::Buffer>> DataPayload(const arrow::Array& column) {
  switch (column.type_id()) {
    case arrow::Type::BINARY:
    case arrow::Type::STRING:
      return ColumnPayload(static_cast<const arrow::BinaryArray&>(column));
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::LARGE_STRING:
      return ColumnPayload(static_cast<const arrow::LargeBinaryArray&>(column));
    default:
      return arrow::Status::Invalid("data column has type ", column.type()->ToString());
  }
}

struct OpaqueRow {
  uint64_t version = 0;
  std::shared_ptr<arrow::Buffer> data;
};

// Reads an opaque file: version of the first row, data of all rows of all batches.
arrow::Result<OpaqueRow> ReadOpaque(arrow::ipc::RecordBatchFileReader* reader) {
  ARROW_RETURN_NOT_OK(CheckOpaqueSchema(*reader->schema()));
  const int batches = reader->num_record_batches();
  OpaqueRow row;
  bool have_version = false;
  std::vector<std::shared_ptr<arrow::Buffer>> pieces;
  for (int b = 0; b < batches; ++b) {
    ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(b));
    if (batch->num_rows() == 0) continue;
    if (!have_version) {
      row.version = VersionAt(*batch->column(0), 0);
      have_version = true;
    }
    ARROW_ASSIGN_OR_RAISE(auto piece, DataPayload(*batch->column(1)));
    if (piece->size() > 0) pieces.push_back(std::move(piece));
  }
  if (!have_version) {
    return arrow::Status::Invalid(
        "object file has no rows (expected one row: version, data)");
  }
  if (pieces.empty()) {
    row.data = std::make_shared<arrow::Buffer>(nullptr, 0);
  } else if (pieces.size() == 1) {
    row.data = std::move(pieces.front());
  } else {
    ARROW_ASSIGN_OR_RAISE(row.data, arrow::ConcatenateBuffers(pieces));
  }
  return row;
}

arrow::Result<std::shared_ptr<arrow::ipc::RecordBatchFileReader>> OpenReader(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file,
    const arrow::ipc::IpcReadOptions& options) {
  auto reader = arrow::ipc::RecordBatchFileReader::Open(file, options);
  if (!reader.ok()) {
    return arrow::Status::Invalid("not an Arrow IPC file: ", reader.status().message());
  }
  return reader;
}

// Wraps decoding failures of a well-framed file as Invalid (undecodable content), keeping
// I/O errors as they are.
arrow::Status AsInvalid(const arrow::Status& st) {
  if (st.ok() || st.IsInvalid() || st.IsIOError()) return st;
  return arrow::Status::Invalid("undecodable object file: ", st.ToString());
}

}  // namespace

std::shared_ptr<arrow::Schema> OpaqueFileSchema(bool large) {
  return arrow::schema(
      {arrow::field("version", arrow::uint64(), /*nullable=*/false),
       arrow::field("data", large ? arrow::large_binary() : arrow::binary(),
                    /*nullable=*/false)});
}

arrow::Status WriteOpaqueFile(arrow::io::OutputStream* out, uint64_t version,
                              const std::shared_ptr<arrow::Buffer>& data,
                              const ObjectFileWriteOptions& options) {
  const int64_t size = data ? data->size() : 0;
  const bool large = size > std::numeric_limits<int32_t>::max();
  // One row whose data cell is the payload buffer itself (no copy): offsets [0, size].
  std::shared_ptr<arrow::Buffer> offsets;
  if (large) {
    const int64_t o[2] = {0, size};
    ARROW_ASSIGN_OR_RAISE(offsets, arrow::AllocateBuffer(sizeof(o)));
    std::memcpy(offsets->mutable_data(), o, sizeof(o));
  } else {
    const int32_t o[2] = {0, static_cast<int32_t>(size)};
    ARROW_ASSIGN_OR_RAISE(offsets, arrow::AllocateBuffer(sizeof(o)));
    std::memcpy(offsets->mutable_data(), o, sizeof(o));
  }
  ARROW_ASSIGN_OR_RAISE(auto version_buf, arrow::AllocateBuffer(sizeof(uint64_t)));
  std::memcpy(version_buf->mutable_data(), &version, sizeof(version));
  auto schema = OpaqueFileSchema(large);
  auto version_data =
      arrow::ArrayData::Make(arrow::uint64(), 1, {nullptr, std::move(version_buf)}, 0);
  auto data_data =
      arrow::ArrayData::Make(schema->field(1)->type(), 1,
                             {nullptr, std::move(offsets),
                              data ? data : std::make_shared<arrow::Buffer>(nullptr, 0)},
                             0);
  auto batch = arrow::RecordBatch::Make(schema, 1, {version_data, data_data});
  ARROW_ASSIGN_OR_RAISE(auto ipc, WriteOptions(options));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, schema, ipc));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
  return writer->Close();
}

arrow::Status WriteNativeFile(arrow::io::OutputStream* out, const NativeTable& table,
                              const ObjectFileWriteOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto ipc, WriteOptions(options));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, table.schema, ipc));
  for (const auto& batch : table.batches) {
    // Batches carry the upload's schema; the file's schema (with the version) is
    // authoritative.
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
  }
  return writer->Close();
}

arrow::Result<Object::Ptr> ReadBaseFile(
    std::shared_ptr<arrow::io::RandomAccessFile> file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  const auto& schema = reader->schema();
  if (IsNativeTableSchema(*schema)) {
    NativeTable table;
    table.schema = schema;
    table.batches.reserve(reader->num_record_batches());
    for (int b = 0; b < reader->num_record_batches(); ++b) {
      auto batch = reader->ReadRecordBatch(b);
      ARROW_RETURN_NOT_OK(AsInvalid(batch.status()));
      table.batches.push_back(std::move(batch).ValueUnsafe());
    }
    return Object::MakeNative(NativeSchemaVersion(*schema), std::move(table));
  }
  auto row = ReadOpaque(reader.get());
  ARROW_RETURN_NOT_OK(AsInvalid(row.status()));
  return Object::MakeOpaque(row->version, std::move(row->data));
}

arrow::Result<Delta> ReadDeltaFile(std::shared_ptr<arrow::io::RandomAccessFile> file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  if (IsNativeTableSchema(*reader->schema())) {
    return arrow::Status::Invalid("a delta file cannot hold a native table");
  }
  auto row = ReadOpaque(reader.get());
  ARROW_RETURN_NOT_OK(AsInvalid(row.status()));
  return Delta{row->version, std::move(row->data)};
}

arrow::Result<ObjectFileHeader> ReadFileHeader(
    std::shared_ptr<arrow::io::RandomAccessFile> file) {
  // One footer read; only the version column is ever loaded: the data column is neither
  // read nor decompressed. (The reader's schema is the projection, with the schema's
  // metadata.)
  auto options = ReadOptions();
  options.included_fields = {0};
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, options));
  const auto& schema = reader->schema();
  if (IsNativeTableSchema(*schema)) {
    return ObjectFileHeader{NativeSchemaVersion(*schema), true};
  }
  if (schema->num_fields() < 1)
    return arrow::Status::Invalid("not an object file: no columns");
  const auto id = schema->field(0)->type()->id();
  if (id != arrow::Type::UINT64 && id != arrow::Type::INT64) {
    return arrow::Status::Invalid("not an object file: column 0 (version) has type ",
                                  schema->field(0)->type()->ToString());
  }
  for (int b = 0; b < reader->num_record_batches(); ++b) {
    auto batch = reader->ReadRecordBatch(b);
    ARROW_RETURN_NOT_OK(AsInvalid(batch.status()));
    if ((*batch)->num_rows() > 0) {
      return ObjectFileHeader{VersionAt(*(*batch)->column(0), 0), false};
    }
  }
  return arrow::Status::Invalid(
      "object file has no rows (expected one row: version, data)");
}

arrow::Result<std::shared_ptr<arrow::Schema>> ReadFileSchema(
    std::shared_ptr<arrow::io::RandomAccessFile> file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  return reader->schema();
}

}  // namespace foc
