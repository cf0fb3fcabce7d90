// The storage engine interface: where objects live beyond memory.
//
// The object store (src/store/) is the only caller. It serialises calls per key: at most
// one writer (Put/Append/Remove) or several readers (Read/ReadNativeSchema) of one key at
// a time, so an engine needs no per-key locking of its own; calls for different keys run
// in parallel.
//
// There is no engine for `storage: none`: a memory-only store has no durable tier at all
// (see docs/architecture.md, "Tiers").
//
// Durability contract:
//   * Put, Append, Remove and RecordFloor return OK only once the change is durable (data
//   and
//     directory entries fsync'ed); after a crash at any instant each object is either
//     wholly old or wholly new, never torn, never a new base with stale deltas.
//   * Full disk: RESOURCE_EXHAUSTED (arrow::Status::CapacityError / IOError tagged ENOSPC
//   is
//     mapped by the engine to arrow::Status::CapacityError), nothing stored is damaged.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "key/key.h"
#include "object/object.h"

namespace foc {

/// What a scan learns about one stored object without reading its payload.
struct StoredObjectInfo {
  ObjectKey key;
  uint64_t version = 0;       ///< current version (max of base and delta versions)
  int64_t payload_bytes = 0;  ///< stored payload bytes, an estimate for native tables
  int32_t delta_count = 0;
  bool native = false;
};

/// A version floor: every key matching `pattern` (KeyPattern text) once had versions up
/// to `version`, then was deleted. Re-created keys continue above the floor.
struct VersionFloor {
  std::string pattern;
  uint64_t version = 0;
};

/// One immutable Arrow IPC file of a stored object, for a reader on the same machine to
/// map (MAP, docs/protocol.md). Such a file is never modified in place: a new version is
/// a new file (renamed into place), so a reader that opened it keeps that version's bytes
/// even after the name is replaced or unlinked.
struct LocalObjectFile {
  std::string path;      ///< absolute path
  uint64_t version = 0;  ///< the version the file holds (footer `flame.cache.version`)
  std::string checksum;  ///< footer `flame.cache.checksum` ("" for files without one)
  int64_t bytes = 0;     ///< file size
};

/// Disk usage as the engine sees it.
struct StorageUsage {
  int64_t stored_bytes = 0;    ///< bytes of object files (bases + deltas)
  int64_t capacity_bytes = 0;  ///< configured limit; 0 = unlimited
};

/// A large opaque upload written to storage as it arrives (StorageEngine::BeginUpload):
/// the server holds one received batch of it at a time, never the whole payload
/// (docs/storage.md, "Large uploads"). Destroying it discards whatever was not committed
/// by StorageEngine::PutSpooled. One upload's stream uses it: not thread-safe.
class UploadSpool {
 public:
  virtual ~UploadSpool() = default;
  /// Writes the next bytes of the payload. CapacityError when the device is full.
  virtual arrow::Status Append(const arrow::Buffer& bytes) = 0;
  /// Payload bytes written so far.
  virtual int64_t payload_bytes() const = 0;
};

class StorageEngine {
 public:
  virtual ~StorageEngine() = default;

  /// e.g. "disk:/var/lib/flame/cache".
  virtual std::string Describe() const = 0;

  /// An identifier of the stored data set, stable across restarts.
  virtual arrow::Result<std::string> InstanceId() = 0;

  /// Builds the startup index: calls `visit` once per stored object, reading only file
  /// footers/metadata, never payloads. Unreadable or foreign files are quarantined and
  /// logged, never fatal. Leftovers of interrupted writes are cleaned up first.
  /// `visit` is never called concurrently, but may be called from threads of the engine's
  /// (the disk engine reads sessions in parallel); all calls happen before Scan returns.
  virtual arrow::Status Scan(const std::function<void(StoredObjectInfo)>& visit) = 0;

  /// Reads the whole object. NotFound (arrow::Status::KeyError) when absent.
  virtual arrow::Result<Object::Ptr> Read(const ObjectKey& key) = 0;

  /// Reads only the schema of a native-table object; nullptr when the object is opaque.
  /// KeyError when absent.
  virtual arrow::Result<std::shared_ptr<arrow::Schema>> ReadNativeSchema(
      const ObjectKey& key) = 0;

  /// Durably replaces the object with `object` (its deltas, if any, are discarded; the
  /// object passed in has none).
  virtual arrow::Status Put(const ObjectKey& key, const Object& object) = 0;

  /// Starts a spooled upload (UploadSpool), in a temporary file that is not an object
  /// until PutSpooled commits it and that recovery removes after a crash.
  /// NotImplemented (the default) for engines that take the whole payload in Put (S3).
  virtual arrow::Result<std::unique_ptr<UploadSpool>> BeginUpload() {
    return arrow::Status::NotImplemented("storage ", Describe(),
                                         " takes uploads whole (no spooling)");
  }

  /// Durably makes the payload of `spool` (from this engine's BeginUpload) the opaque
  /// object `key` at `version`, with Put's guarantees: the object is wholly old or
  /// wholly new after a crash at any instant, and its deltas are discarded. A failure
  /// before the commit (capacity, full device) leaves the spool intact, so that the
  /// store can make room and call again (with another version).
  virtual arrow::Status PutSpooled(const ObjectKey& key, uint64_t version,
                                   UploadSpool* spool) {
    (void)version;
    (void)spool;
    return arrow::Status::NotImplemented(
        "storage ", Describe(), " cannot commit a spooled upload of ", key.str());
  }

  /// Durably appends `object.deltas().back()`; `object` is the object after the append.
  /// KeyError when the base is missing.
  virtual arrow::Status Append(const ObjectKey& key, const Object& object) = 0;

  /// Durably removes the object (missing is fine).
  virtual arrow::Status Remove(const ObjectKey& key) = 0;

  /// Durably records a version floor (before the keys it covers are removed).
  virtual arrow::Status RecordFloor(const VersionFloor& floor) = 0;
  /// All recorded floors (after compaction).
  virtual arrow::Result<std::vector<VersionFloor>> LoadFloors() = 0;

  virtual StorageUsage Usage() const = 0;

  /// The bytes `key` occupies in storage as the engine counts them against the capacity
  /// (all its files: base and deltas, with their framing); 0 when it is not stored. The
  /// store's durable tier charges its LRU with this after every write and scan.
  virtual int64_t StoredBytes(const ObjectKey& key) const = 0;

  /// The files holding the object now, for same-machine readers (MAP): its base, then
  /// its live deltas in order. The caller holds the key's reader lock. NotImplemented for
  /// engines without local files (the default; S3).
  virtual arrow::Result<std::vector<LocalObjectFile>> LocalFiles(const ObjectKey& key) {
    return arrow::Status::NotImplemented(
        "storage ", Describe(), " keeps no local files of ", key.str(), " to map");
  }
};

}  // namespace foc
