// The Arrow IPC *file* format of stored bases and deltas (upstream-server.md §6.3.2).
//
// Opaque base and delta files: schema `version: uint64, data: binary`, one batch of one
// row (version, payload). Native base files: the object's own schema (carrying
// `flame.cache.format=arrow-table-v1` and `flame.cache.version=<base version>`) and its
// batches.
//
// Readers are lenient, so that stores written by upstream (ZSTD bodies, non-nullable
// fields) and by pyarrow (uncompressed, nullable fields, large_binary, several rows or
// batches) all load: the columns are taken by position, the version comes from the first
// row, the payload is the concatenation of every row's data (a null cell contributes
// nothing).
//
// Checksums: every file written here records, in its IPC footer's custom metadata,
// `flame.cache.checksum = xxh3-64:<16 hex>` (XXH3-64 of every byte before the footer:
// magic, schema, dictionaries, record batches) and `flame.cache.version = <version>`.
// Reading a whole file verifies the checksum before decoding anything and the version
// after; ReadFileHeader checks the version always and the checksum on request. A
// mismatch is Invalid with IsChecksumMismatch(); files without that metadata (upstream,
// pyarrow) are read unchecked. The footer itself is checked by its flatbuffer structure
// and by the version cross-check, not by the checksum.
//
// Zero copy: read from a memory-mapped file, an uncompressed file's payload is a slice of
// the mapping (several rows of one batch included); only compressed bodies and payloads
// spread over several batches are copied.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "object/object.h"
#include "storage/storage_engine.h"

namespace foc {

/// How files are written.
struct ObjectFileWriteOptions {
  /// ZSTD-compress record batch bodies (what upstream writes). Off by default: see
  /// docs/storage.md ("Compression").
  bool compress = false;
};

/// The schema of opaque base and delta files: `version: uint64 not null, data: binary not
/// null` (large_binary when `large`: payloads of 2 GiB or more).
std::shared_ptr<arrow::Schema> OpaqueFileSchema(bool large = false);

/// Writes an opaque one-row file (a base or a delta) to `out` (not closed).
arrow::Status WriteOpaqueFile(arrow::io::OutputStream* out, uint64_t version,
                              const std::shared_ptr<arrow::Buffer>& data,
                              const ObjectFileWriteOptions& options = {});

/// An opaque base file whose payload arrives in pieces and whose version is known only
/// at the end: a large upload written to storage as it arrives (StorageEngine's
/// BeginUpload). Each piece is written at its final offset in the file at once, and
/// Finish writes the IPC framing around the payload (magic, schema and record-batch
/// header before it; padding, footer and trailer after it). The result is byte for byte
/// the file WriteOpaqueFile writes for the same version and payload, checksum included,
/// yet no more than one piece of the payload is ever in memory and no payload byte is
/// copied in memory. Payloads up to 2 GiB - 1 (the `binary` column; larger ones are
/// refused before, see flight/). Not thread-safe.
class OpaqueFileSpool {
 public:
  /// Creates `path` exclusively (mode 0644). The caller owns the name: it removes the
  /// file unless it renamed it away.
  static arrow::Result<std::unique_ptr<OpaqueFileSpool>> Create(std::string path);
  ~OpaqueFileSpool();  ///< closes the file (leaves it in place)
  OpaqueFileSpool(const OpaqueFileSpool&) = delete;
  OpaqueFileSpool& operator=(const OpaqueFileSpool&) = delete;

  /// Writes the next `size` payload bytes. CapacityError when the device is full
  /// (storage_full.h), Invalid beyond 2 GiB - 1 bytes in all.
  arrow::Status Append(const uint8_t* data, int64_t size);
  /// Writes the framing for `version` (with the checksum of the file's bytes before its
  /// footer, which reads the payload back once, a chunk at a time), truncates the file to
  /// its size and fsyncs it. Returns the file size. May be called again (a retry with
  /// another version) as long as the file was not renamed.
  arrow::Result<int64_t> Finish(uint64_t version);

  const std::string& path() const { return path_; }
  int64_t payload_bytes() const { return payload_bytes_; }

 private:
  OpaqueFileSpool(std::string path, int fd, int64_t payload_offset);

  std::string path_;
  int fd_;
  int64_t payload_offset_;  ///< where the payload starts: the framing before it
  int64_t payload_bytes_ = 0;
};

/// Writes a native table file: `table.schema` and its batches, to `out` (not closed).
arrow::Status WriteNativeFile(arrow::io::OutputStream* out, const NativeTable& table,
                              const ObjectFileWriteOptions& options = {});

/// Reads a base file: a native table (schema metadata marks it) or an opaque row.
/// Invalid for anything else.
arrow::Result<Object::Ptr> ReadBaseFile(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file);

/// Reads a delta file (opaque row). Invalid for anything else.
arrow::Result<Delta> ReadDeltaFile(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file);

/// What a file says about itself without its payload.
struct ObjectFileHeader {
  uint64_t version = 0;
  bool native = false;
};

/// Reads the footer and, for opaque files, only the `version` column of the first batch
/// (the data column is neither read nor decompressed). Native files: the schema metadata
/// only. The version is checked against the footer's; with `verify_checksum` the whole
/// file is hashed too (meant for files already in memory).
arrow::Result<ObjectFileHeader> ReadFileHeader(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file,
    bool verify_checksum = false);

/// True for the error of a file whose bytes do not match its recorded checksum or
/// version: the file is corrupt (quarantine it, never serve it).
bool IsChecksumMismatch(const arrow::Status& st);

/// Describes a base or delta file for a same-machine reader (MAP): its path, size, the
/// version it holds and the checksum its footer records. Reads the footer and the version
/// column only.
arrow::Result<LocalObjectFile> DescribeObjectFile(const std::string& path);

/// The schema in the file's footer.
arrow::Result<std::shared_ptr<arrow::Schema>> ReadFileSchema(
    const std::shared_ptr<arrow::io::RandomAccessFile>& file);

}  // namespace foc
