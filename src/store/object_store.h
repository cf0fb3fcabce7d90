// The object store: every RPC handler goes through it.
//
// It owns the index of all keys (version, size, state), orders operations per key
// (writers exclusive, readers shared; DELETE included), assigns versions, keeps version
// floors so that versions never go backwards or repeat for a key (not after eviction,
// restart, or DELETE and re-creation), and coordinates the storage engine (durable copy)
// with the memory cache (resident copy).
//
// Write path (PUT/PATCH): take the key's writer lock → assign version → storage engine
// writes durably → memory cache insert → index update → unlock → acknowledge. Read path
// (GET): take the key's reader lock → memory cache lookup (pin) or storage read → decide
// the reply (PlanGet) → unlock. The returned object stays pinned in the memory cache
// until the caller drops it, and shares its buffers with the cache (no copies).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "key/key.h"
#include "object/object.h"
#include "storage/storage_engine.h"
#include "store/change_feed.h"

namespace foc {

/// What the memory-only store does when a write would exceed the memory limit.
enum class MemoryFullPolicy {
  kEvict,   ///< evict least recently used objects and report them as evicted (default)
  kRefuse,  ///< refuse the write with RESOURCE_EXHAUSTED
};

struct StoreOptions {
  int64_t max_memory_bytes = int64_t{1} << 30;  ///< memory cache limit; 0 = unlimited
  int64_t max_objects = 0;                      ///< resident object limit; 0 = unlimited
  bool eviction = true;                         ///< false: `eviction.policy: none`
  MemoryFullPolicy memory_full = MemoryFullPolicy::kEvict;  ///< memory-only storage only
  int64_t max_deltas = 1000;  ///< deltas per object (upstream's limit)
};

/// An uploaded base: opaque bytes, or a native Arrow table.
struct Payload {
  std::shared_ptr<arrow::Buffer> data;  ///< opaque payload (when table is empty)
  std::optional<NativeTable> table;     ///< native table upload
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

class ObjectStore {
 public:
  /// Opens the store: scans `storage` (index only, no payloads) and loads version floors.
  static arrow::Result<std::unique_ptr<ObjectStore>> Open(
      StoreOptions options, std::unique_ptr<StorageEngine> storage);
  ~ObjectStore();

  /// Identifies this store's data set; changes whenever state may have been lost (each
  /// start of a memory-only server). Sent as schema metadata `flame.cache.epoch` and
  /// PutResult field `epoch` so clients can refuse stale cache entries.
  const std::string& epoch() const;

  /// PUT to a session (new object, generated id) or a full key (create or replace).
  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload);
  /// Appends a delta. KeyError if the object does not exist; Invalid for native tables.
  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   std::shared_ptr<arrow::Buffer> delta);
  /// Versioned read. KeyError if absent (the message says when it was evicted).
  arrow::Result<ReadResult> Get(const ObjectKey& key, uint64_t client_version);
  /// The schema of a native table (nullptr if opaque); KeyError if absent.
  arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(const ObjectKey& key);
  /// Deletes everything matching; returns how many objects were removed.
  arrow::Result<int64_t> Delete(const KeyPattern& pattern);
  /// Every readable object.
  std::vector<ObjectListing> List() const;

  StoreStats stats() const;
  const StorageEngine& storage() const;
  /// Every committed PUT, PATCH and deleted key, published after it is durable and
  /// visible, in commit order per key (see store/change_feed.h).
  ChangeFeed& changes();

  class Impl;

 private:
  explicit ObjectStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace foc
