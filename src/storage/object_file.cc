#include "storage/object_file.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/compression.h>
#include <arrow/util/key_value_metadata.h>

// xxHash (Debian's libxxhash-dev) compiled into this file: no library to ship at run
// time.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/check.h"
#include "storage/durable_file.h"

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
    // The IPC reader checks buffer sizes, not offsets: a damaged or hostile file could
    // point a cell outside its buffer. For binary columns this reads the offsets only.
    if (auto st = batch->ValidateFull(); !st.ok())
      return arrow::Status::Invalid("malformed record batch ", b, ": ", st.message());
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

constexpr char kChecksumKey[] = "flame.cache.checksum";
constexpr char kChecksumPrefix[] = "xxh3-64:";
// IPC file trailer: int32 footer length, then the magic "ARROW1".
constexpr int64_t kTrailerBytes = 10;
constexpr int64_t kHashChunkBytes = 8 << 20;

class ChecksumMismatchDetail final : public arrow::StatusDetail {
 public:
  const char* type_id() const override { return "foc::ChecksumMismatch"; }
  std::string ToString() const override { return "checksum mismatch"; }
};

template <typename... Args>
arrow::Status ChecksumError(Args&&... args) {
  return arrow::Status::Invalid("corrupt object file: ", std::forward<Args>(args)...)
      .WithDetail(std::make_shared<ChecksumMismatchDetail>());
}

std::string Hex64(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

// The bytes of `tail` (the end of an IPC file, footer and trailer included) that come
// before the footer, by the footer length the trailer records.
arrow::Result<int64_t> BytesBeforeFooter(std::string_view tail) {
  if (static_cast<int64_t>(tail.size()) < kTrailerBytes)
    return arrow::Status::IOError("object file writer wrote no footer");
  int32_t footer = 0;
  std::memcpy(&footer, tail.data() + tail.size() - kTrailerBytes, sizeof(footer));
  const int64_t before = static_cast<int64_t>(tail.size()) - kTrailerBytes - footer;
  if (footer < 0 || before < 0)
    return arrow::Status::IOError("object file writer: unexpected footer framing");
  return before;
}

// The first pass of a write: an OutputStream that hashes what the IPC writer gives it.
// Once `closing()` is called (just before the writer's Close, which writes what is left
// of the file and its footer) bytes are kept instead, so that Finish() can hash exactly
// the bytes before the footer, whatever Close writes first (the schema of a table
// without batches).
class HashingSink final : public arrow::io::OutputStream {
 public:
  HashingSink() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~HashingSink() override { XXH3_freeState(state_); }
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return position_; }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (closing_) {
      tail_.append(static_cast<const char*>(data), static_cast<size_t>(nbytes));
    } else {
      XXH3_64bits_update(state_, data, static_cast<size_t>(nbytes));
    }
    position_ += nbytes;
    return arrow::Status::OK();
  }
  void closing() { closing_ = true; }
  // The hash of every byte before the footer.
  arrow::Result<uint64_t> Finish() {
    ARROW_ASSIGN_OR_RAISE(const int64_t before, BytesBeforeFooter(tail_));
    XXH3_64bits_update(state_, tail_.data(), static_cast<size_t>(before));
    return XXH3_64bits_digest(state_);
  }

 private:
  XXH3_state_t* state_;
  int64_t position_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  std::string tail_;
};

using BatchesWriter = std::function<arrow::Status(arrow::ipc::RecordBatchWriter*)>;

// Writes an IPC file whose footer metadata records the checksum of every byte before
// the footer and the object's version. Two passes over the same (deterministic) IPC
// serialisation: the first only hashes, the second writes with the footer metadata.
arrow::Status WriteChecked(arrow::io::OutputStream* out,
                           const std::shared_ptr<arrow::Schema>& schema,
                           const arrow::ipc::IpcWriteOptions& ipc, uint64_t version,
                           const BatchesWriter& batches) {
  HashingSink hasher;
  {
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(&hasher, schema, ipc));
    ARROW_RETURN_NOT_OK(batches(writer.get()));
    hasher.closing();
    ARROW_RETURN_NOT_OK(writer->Close());
  }
  ARROW_ASSIGN_OR_RAISE(const uint64_t digest, hasher.Finish());
  auto metadata = arrow::key_value_metadata(
      {kChecksumKey, kVersionMetadataKey},
      {std::string(kChecksumPrefix) + Hex64(digest), std::to_string(version)});
  ARROW_ASSIGN_OR_RAISE(auto writer,
                        arrow::ipc::MakeFileWriter(out, schema, ipc, metadata));
  ARROW_RETURN_NOT_OK(batches(writer.get()));
  return writer->Close();
}

// Checks the version recorded in a file's footer against the one read from the file.
// Files without our metadata (written by upstream or pyarrow) pass unchecked.
arrow::Status VerifyVersion(const arrow::ipc::RecordBatchFileReader& reader,
                            uint64_t version_read) {
  const auto metadata = reader.metadata();
  if (!metadata) return arrow::Status::OK();
  const auto version = metadata->Get(kVersionMetadataKey);
  if (version.ok() && *version != std::to_string(version_read)) {
    return ChecksumError("its footer records version ", *version,
                         " but it holds version ", version_read);
  }
  return arrow::Status::OK();
}

// Checks the checksum recorded in a file's footer against its bytes before the footer.
// Files without one (written by upstream or pyarrow) pass unchecked.
arrow::Status VerifyBytes(arrow::io::RandomAccessFile* file,
                          const arrow::ipc::RecordBatchFileReader& reader) {
  const auto metadata = reader.metadata();
  if (!metadata) return arrow::Status::OK();
  const auto recorded = metadata->Get(kChecksumKey);
  if (!recorded.ok()) return arrow::Status::OK();
  if (!recorded->starts_with(kChecksumPrefix))
    return ChecksumError("unknown checksum '", *recorded, "'");
  ARROW_ASSIGN_OR_RAISE(const int64_t size, file->GetSize());
  if (size < kTrailerBytes) return ChecksumError("truncated");
  ARROW_ASSIGN_OR_RAISE(auto trailer, file->ReadAt(size - kTrailerBytes, kTrailerBytes));
  int32_t footer = 0;
  std::memcpy(&footer, trailer->data(), sizeof(footer));
  const int64_t end = size - kTrailerBytes - footer;
  if (footer < 0 || end < 0) return ChecksumError("bad footer length ", footer);
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  arrow::Status st;
  for (int64_t at = 0; at < end && st.ok();) {
    auto chunk = file->ReadAt(at, std::min(kHashChunkBytes, end - at));
    if (!chunk.ok()) {
      st = chunk.status();
      break;
    }
    if ((*chunk)->size() == 0) {
      st = ChecksumError("short read at ", at);
      break;
    }
    XXH3_64bits_update(state, (*chunk)->data(), static_cast<size_t>((*chunk)->size()));
    at += (*chunk)->size();
  }
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  ARROW_RETURN_NOT_OK(st);
  const std::string got = std::string(kChecksumPrefix) + Hex64(digest);
  if (got != *recorded) {
    return ChecksumError("checksum mismatch: its bytes hash to ", got,
                         ", the file records ", *recorded);
  }
  return arrow::Status::OK();
}

}  // namespace

bool IsChecksumMismatch(const arrow::Status& st) {
  return !st.ok() && st.detail() &&
         std::string_view(st.detail()->type_id()) == "foc::ChecksumMismatch";
}

std::shared_ptr<arrow::Schema> OpaqueFileSchema(bool large) {
  return arrow::schema(
      {arrow::field("version", arrow::uint64(), /*nullable=*/false),
       arrow::field("data", large ? arrow::large_binary() : arrow::binary(),
                    /*nullable=*/false)});
}

namespace {

// The one-row batch of an opaque file: `version` and `data` (the payload buffer itself,
// no copy: offsets [0, size]).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> OpaqueBatch(
    uint64_t version, const std::shared_ptr<arrow::Buffer>& data) {
  const int64_t size = data ? data->size() : 0;
  const bool large = size > std::numeric_limits<int32_t>::max();
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
  return arrow::RecordBatch::Make(schema, 1, {version_data, data_data});
}

// What an opaque file holds around its payload: everything the IPC writer writes before
// the payload bytes (magic, schema, record batch header, the version and offsets
// buffers) and after them (padding, footer, trailer).
struct OpaqueFraming {
  std::string before;
  std::string after;
};

// Where the payload would be written, this sink finds a placeholder: a buffer that claims
// `size` bytes at an address the IPC writer passes on without reading (it never reads
// uncompressed bodies). Everything else is kept.
class FramingSink final : public arrow::io::OutputStream {
 public:
  FramingSink(const uint8_t* placeholder, int64_t size)
      : placeholder_(placeholder), size_(size) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return position_; }
  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (!seen_ && data == placeholder_ && nbytes == size_) {
      seen_ = true;
    } else {
      (seen_ ? framing_.after : framing_.before)
          .append(static_cast<const char*>(data), static_cast<size_t>(nbytes));
    }
    position_ += nbytes;
    return arrow::Status::OK();
  }
  using arrow::io::OutputStream::Write;

  bool seen() const { return seen_; }
  OpaqueFraming Take() { return std::move(framing_); }

 private:
  const uint8_t* const placeholder_;
  const int64_t size_;
  int64_t position_ = 0;
  bool seen_ = false;
  bool closed_ = false;
  OpaqueFraming framing_;
};

// Never read: only its address marks the payload (FramingSink).
const uint8_t kPayloadPlaceholder[8] = {};

// The framing WriteOpaqueFile writes around a payload of `size` (> 0) bytes at `version`,
// with `metadata` in the footer.
arrow::Result<OpaqueFraming> FramingOf(
    uint64_t version, int64_t size,
    const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) {
  FOC_DCHECK(size > 0);
  ARROW_ASSIGN_OR_RAISE(auto batch, OpaqueBatch(version, std::make_shared<arrow::Buffer>(
                                                             kPayloadPlaceholder, size)));
  FramingSink sink(kPayloadPlaceholder, size);
  ARROW_ASSIGN_OR_RAISE(auto ipc, WriteOptions({}));
  ARROW_ASSIGN_OR_RAISE(
      auto writer, arrow::ipc::MakeFileWriter(&sink, batch->schema(), ipc, metadata));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
  ARROW_RETURN_NOT_OK(writer->Close());
  if (!sink.seen()) {
    return arrow::Status::IOError(
        "object file spool: the IPC writer did not pass the payload through as one "
        "buffer");
  }
  return sink.Take();
}

}  // namespace

arrow::Status WriteOpaqueFile(arrow::io::OutputStream* out, uint64_t version,
                              const std::shared_ptr<arrow::Buffer>& data,
                              const ObjectFileWriteOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto batch, OpaqueBatch(version, data));
  ARROW_ASSIGN_OR_RAISE(auto ipc, WriteOptions(options));
  return WriteChecked(out, batch->schema(), ipc, version,
                      [&](arrow::ipc::RecordBatchWriter* writer) {
                        return writer->WriteRecordBatch(*batch);
                      });
}

// ---------------------------------------------------------------------------------------
// OpaqueFileSpool

arrow::Result<std::unique_ptr<OpaqueFileSpool>> OpaqueFileSpool::Create(
    std::string path) {
  // The framing before the payload has the same length whatever the version and size
  // (fixed-width fields only); Finish checks that it still has.
  ARROW_ASSIGN_OR_RAISE(const auto framing, FramingOf(0, 1, nullptr));
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return FileError(errno, "create", path);
  return std::unique_ptr<OpaqueFileSpool>(new OpaqueFileSpool(
      std::move(path), fd, static_cast<int64_t>(framing.before.size())));
}

OpaqueFileSpool::OpaqueFileSpool(std::string path, int fd, int64_t payload_offset)
    : path_(std::move(path)), fd_(fd), payload_offset_(payload_offset) {}

OpaqueFileSpool::~OpaqueFileSpool() { ::close(fd_); }

arrow::Status OpaqueFileSpool::Append(const uint8_t* data, int64_t size) {
  FOC_DCHECK(size >= 0);
  if (payload_bytes_ + size > std::numeric_limits<int32_t>::max()) {
    return arrow::Status::Invalid(
        "payload of at least ", payload_bytes_ + size, " bytes exceeds the limit of ",
        std::numeric_limits<int32_t>::max(), " bytes (2 GiB - 1) of a spooled upload");
  }
  ARROW_RETURN_NOT_OK(
      PwriteAll(fd_, data, size, payload_offset_ + payload_bytes_, path_));
  payload_bytes_ += size;
  return arrow::Status::OK();
}

arrow::Result<int64_t> OpaqueFileSpool::Finish(uint64_t version) {
  if (payload_bytes_ == 0) {
    return arrow::Status::Invalid("object file spool: an empty payload is not spooled");
  }
  // First the framing without footer metadata: the checksum covers the bytes before the
  // footer, which the metadata does not change.
  ARROW_ASSIGN_OR_RAISE(const auto plain, FramingOf(version, payload_bytes_, nullptr));
  if (static_cast<int64_t>(plain.before.size()) != payload_offset_) {
    return arrow::Status::IOError("object file spool: the framing before the payload is ",
                                  plain.before.size(), " bytes, not ", payload_offset_);
  }
  ARROW_ASSIGN_OR_RAISE(const int64_t padding, BytesBeforeFooter(plain.after));
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, plain.before.data(), plain.before.size());
  std::vector<uint8_t> chunk(
      static_cast<size_t>(std::min<int64_t>(kHashChunkBytes, payload_bytes_)));
  arrow::Status read;
  for (int64_t at = 0; at < payload_bytes_ && read.ok();) {
    const int64_t n =
        std::min<int64_t>(static_cast<int64_t>(chunk.size()), payload_bytes_ - at);
    read = PreadAll(fd_, chunk.data(), n, payload_offset_ + at, path_);
    XXH3_64bits_update(state, chunk.data(), static_cast<size_t>(n));
    at += n;
  }
  XXH3_64bits_update(state, plain.after.data(), static_cast<size_t>(padding));
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  ARROW_RETURN_NOT_OK(read);
  auto metadata = arrow::key_value_metadata(
      {kChecksumKey, kVersionMetadataKey},
      {std::string(kChecksumPrefix) + Hex64(digest), std::to_string(version)});
  ARROW_ASSIGN_OR_RAISE(const auto framed, FramingOf(version, payload_bytes_, metadata));
  if (framed.before != plain.before ||
      framed.after.compare(0, static_cast<size_t>(padding), plain.after, 0,
                           static_cast<size_t>(padding)) != 0) {
    return arrow::Status::IOError(
        "object file spool: the footer metadata changed the bytes before the footer");
  }
  const int64_t end = payload_offset_ + payload_bytes_;
  const int64_t size = end + static_cast<int64_t>(framed.after.size());
  ARROW_RETURN_NOT_OK(PwriteAll(fd_, framed.before.data(),
                                static_cast<int64_t>(framed.before.size()), 0, path_));
  ARROW_RETURN_NOT_OK(PwriteAll(fd_, framed.after.data(),
                                static_cast<int64_t>(framed.after.size()), end, path_));
  // A retry with a shorter version leaves no stale tail.
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return FileError(errno, "truncate", path_);
  if (::fsync(fd_) != 0) return FileError(errno, "fsync", path_);
  return size;
}

arrow::Status WriteNativeFile(arrow::io::OutputStream* out, const NativeTable& table,
                              const ObjectFileWriteOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto ipc, WriteOptions(options));
  return WriteChecked(out, table.schema, ipc, NativeSchemaVersion(*table.schema),
                      [&](arrow::ipc::RecordBatchWriter* writer) {
                        for (const auto& batch : table.batches) {
                          // Batches carry the upload's schema; the file's schema (with
                          // the version) is authoritative.
                          ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
                        }
                        return arrow::Status::OK();
                      });
}

arrow::Result<Object::Ptr> ReadBaseFile(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  const auto& schema = reader->schema();
  if (IsNativeTableSchema(*schema)) {
    ARROW_RETURN_NOT_OK(VerifyBytes(file.get(), *reader));
    ARROW_RETURN_NOT_OK(VerifyVersion(*reader, NativeSchemaVersion(*schema)));
    NativeTable table;
    table.schema = schema;
    table.batches.reserve(reader->num_record_batches());
    // A file we wrote holds batches validated on upload and is checksummed; any other
    // file is validated here before its batches can be served.
    const bool checked = reader->metadata() && reader->metadata()->Contains(kChecksumKey);
    for (int b = 0; b < reader->num_record_batches(); ++b) {
      auto batch = reader->ReadRecordBatch(b);
      ARROW_RETURN_NOT_OK(AsInvalid(batch.status()));
      if (!checked) {
        if (auto st = (*batch)->ValidateFull(); !st.ok())
          return arrow::Status::Invalid("malformed record batch ", b, ": ", st.message());
      }
      table.batches.push_back(std::move(batch).ValueUnsafe());
    }
    return Object::MakeNative(NativeSchemaVersion(*schema), std::move(table));
  }
  ARROW_RETURN_NOT_OK(VerifyBytes(file.get(), *reader));  // before anything is decoded
  auto row = ReadOpaque(reader.get());
  ARROW_RETURN_NOT_OK(AsInvalid(row.status()));
  ARROW_RETURN_NOT_OK(VerifyVersion(*reader, row->version));
  return Object::MakeOpaque(row->version, std::move(row->data));
}

arrow::Result<Delta> ReadDeltaFile(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  if (IsNativeTableSchema(*reader->schema())) {
    return arrow::Status::Invalid("a delta file cannot hold a native table");
  }
  ARROW_RETURN_NOT_OK(VerifyBytes(file.get(), *reader));  // before anything is decoded
  auto row = ReadOpaque(reader.get());
  ARROW_RETURN_NOT_OK(AsInvalid(row.status()));
  ARROW_RETURN_NOT_OK(VerifyVersion(*reader, row->version));
  return Delta{row->version, std::move(row->data)};
}

arrow::Result<ObjectFileHeader> ReadFileHeader(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file, bool verify_checksum) {
  // One footer read; only the version column is ever loaded: the data column is neither
  // read nor decompressed. (The reader's schema is the projection, with the schema's
  // metadata.)
  auto options = ReadOptions();
  options.included_fields = {0};
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, options));
  const auto& schema = reader->schema();
  if (verify_checksum) ARROW_RETURN_NOT_OK(VerifyBytes(file.get(), *reader));
  if (IsNativeTableSchema(*schema)) {
    const uint64_t version = NativeSchemaVersion(*schema);
    ARROW_RETURN_NOT_OK(VerifyVersion(*reader, version));
    return ObjectFileHeader{version, true};
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
    if (auto st = (*batch)->ValidateFull(); !st.ok())  // the version column only
      return arrow::Status::Invalid("malformed record batch ", b, ": ", st.message());
    if ((*batch)->num_rows() > 0) {
      const uint64_t version = VersionAt(*(*batch)->column(0), 0);
      ARROW_RETURN_NOT_OK(VerifyVersion(*reader, version));
      return ObjectFileHeader{version, false};
    }
  }
  return arrow::Status::Invalid(
      "object file has no rows (expected one row: version, data)");
}

arrow::Result<std::shared_ptr<arrow::Schema>> ReadFileSchema(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  return reader->schema();
}

arrow::Result<LocalObjectFile> DescribeObjectFile(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  LocalObjectFile out;
  out.path = path;
  ARROW_ASSIGN_OR_RAISE(out.bytes, file->GetSize());
  ARROW_ASSIGN_OR_RAISE(auto header, ReadFileHeader(file));
  out.version = header.version;
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenReader(file, ReadOptions()));
  if (const auto metadata = reader->metadata()) {
    if (auto sum = metadata->Get(kChecksumKey); sum.ok()) out.checksum = *sum;
  }
  return out;
}

}  // namespace foc
