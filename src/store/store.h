// The interface every RPC handler goes through (src/flight/): what a server serves,
// whoever owns the versions.
//
// Two implementations:
//   * ObjectStore (store/object_store.h): this server is the authority. It assigns
//     versions, keeps floors, and places bytes in its own memory and storage tiers.
//   * UpstreamStore (node/upstream_store.h): a node-local tier. Another server (the
//     upstream) is the authority; this one forwards writes, keeps a version-checked copy
//     of what its clients read, and never invents a version.
// Cluster mode (docs/cluster.md) is meant to be a third: versions committed in etcd.
//
// Contract shared by all implementations (what flight/ relies on):
//   * a write returns only after the authority acknowledged it, with the version the
//     authority assigned; versions of a key strictly increase within one epoch;
//   * Get(key, v) plans its reply against the current version (store/PlanGet): a reply
//     never claims a version the authority did not assign;
//   * errors are arrow::Status in the project's mapping (KeyError = NOT_FOUND, Invalid =
//     INVALID_ARGUMENT, CapacityError = RESOURCE_EXHAUSTED, IOError/UNAVAILABLE when the
//     durable copy or the authority cannot be reached; flight/status.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "key/key.h"
#include "object/object.h"
#include "storage/storage_engine.h"

namespace foc {

class ChangeFeed;

/// An uploaded base: opaque bytes, or a native Arrow table.
struct Payload {
  std::shared_ptr<arrow::Buffer> data;  ///< opaque payload (when table is empty)
  std::optional<NativeTable> table;     ///< native table upload
  /// An opaque payload written to storage as it arrived (Store::BeginUpload) instead of
  /// `data`.
  std::shared_ptr<UploadSpool> spooled = nullptr;
};

/// The result of a write.
struct WriteResult {
  ObjectKey key;
  uint64_t version;
};

/// The result of a read: the object (pinned while this is alive) and what to send.
struct ReadResult {
  Object::Ptr object;
  GetPlan plan;
};

/// One entry of a listing.
struct ObjectListing {
  ObjectKey key;
  uint64_t version;
  int64_t payload_bytes;
  int32_t delta_count = -1;  ///< -1: this store does not know without reading
  std::optional<bool> native = std::nullopt;  ///< a native Arrow table; nullopt: unknown
};

/// Counters for metrics.
struct StoreStats {
  int64_t objects = 0;           ///< keys readable now
  int64_t resident_objects = 0;  ///< objects held in memory
  int64_t resident_bytes = 0;    ///< memory charge of resident (and pinned) objects
  int64_t memory_evictions = 0;  ///< objects dropped from memory for space
  int64_t lost_objects = 0;      ///< objects evicted and therefore gone (memory-only, or
                                 ///< removed from a capacity-limited disk store)
  int64_t refused_writes = 0;    ///< memory-only refuse mode: writes refused
  int64_t not_modified_replies = 0;
  int64_t patch_replies = 0;
  int64_t full_replies = 0;
  int64_t native_replies = 0;
  int64_t bytes_written = 0;  ///< payload bytes accepted by PUT/PATCH
  int64_t bytes_read = 0;     ///< payload bytes sent by GET
  StorageUsage storage;
};

/// The immutable files of one version of an object, for a reader on the same machine
/// (MAP, docs/protocol.md): `files[0]` is the base, the rest its deltas in order.
struct LocalObject {
  ObjectKey key;
  uint64_t version = 0;  ///< the object's current version (the last file's)
  bool native = false;   ///< the base is a native Arrow table
  std::vector<LocalObjectFile> files;
};

/// What flight/ serves. Thread-safe: every method may be called from any RPC thread.
class Store {
 public:
  virtual ~Store() = default;

  /// Identifies the data set being served (sent as schema metadata `flame.cache.epoch`
  /// and PutResult field `epoch`); clients drop cache entries of another epoch. May
  /// change while serving (a node tier's upstream restarted memory-only); "" = unknown.
  virtual std::string epoch() const = 0;

  /// PUT to a session (new object, generated id) or a full key (create or replace).
  virtual arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) = 0;
  /// Starts writing a large opaque upload to durable storage as it arrives, for a later
  /// Put with Payload::spooled (docs/storage.md, "Large uploads"). NotImplemented (the
  /// default) when this store keeps uploads in memory until Put.
  virtual arrow::Result<std::unique_ptr<UploadSpool>> BeginUpload() {
    return arrow::Status::NotImplemented("this store takes uploads whole");
  }
  /// Appends a delta. KeyError if the object does not exist; Invalid for native tables.
  virtual arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                           std::shared_ptr<arrow::Buffer> delta) = 0;
  /// Versioned read. KeyError if absent (the message says when it was evicted).
  virtual arrow::Result<ReadResult> Get(const ObjectKey& key,
                                        uint64_t client_version) = 0;
  /// The schema of a native table (nullptr if opaque); KeyError if absent.
  virtual arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(
      const ObjectKey& key) = 0;
  /// Deletes everything matching; returns how many objects were removed (-1: the
  /// authority did not say).
  virtual arrow::Result<int64_t> Delete(const KeyPattern& pattern) = 0;
  /// Every readable object.
  virtual arrow::Result<std::vector<ObjectListing>> List() const = 0;
  /// One object's listing entry from this store's own index (no payload read, no remote
  /// call); KeyError if it is absent. NotImplemented (the default) when the store has no
  /// such index (a node tier, a cluster member): GetFlightInfo then carries no metadata
  /// and clients' `stat` falls back to a read (docs/protocol.md).
  virtual arrow::Result<ObjectListing> Lookup(const ObjectKey& key) const {
    return arrow::Status::NotImplemented("no metadata lookup for ", key.str());
  }

  virtual StoreStats stats() const = 0;
  /// The change feed WATCH serves from (store/change_feed.h), or null when this store
  /// cannot offer one (WATCH is then refused with UNIMPLEMENTED).
  virtual ChangeFeed* change_feed() = 0;

  /// Called by WATCH after it subscribed to change_feed() with `patterns` and before it
  /// reads the listing (List) for the snapshot: a store whose feed republishes another
  /// server's changes (a node tier) makes sure they are being received from here on.
  virtual arrow::Status PrepareWatch(const std::vector<KeyPattern>& patterns) {
    (void)patterns;
    return arrow::Status::OK();
  }

  /// The files of the current version of `key` for a same-machine reader to map (MAP).
  /// KeyError if absent; NotImplemented when this store has no such files (the reader
  /// then reads over gRPC).
  virtual arrow::Result<LocalObject> MapLocal(const ObjectKey& key) {
    return arrow::Status::NotImplemented("this server offers no files to map (",
                                         key.str(), ")");
  }
};

}  // namespace foc
