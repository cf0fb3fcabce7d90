// The object store: every RPC handler goes through it.
//
// It owns the index of all keys (version, size, state), orders operations per key
// (writers exclusive, readers shared; DELETE included), assigns versions, keeps version
// floors so that versions never go backwards or repeat for a key (not after eviction,
// restart, or DELETE and re-creation), and places the bytes in its tiers (store/tiers.h):
// the durable tier (a storage engine; absent with `storage: none`) and the memory tier
// (resident copy; the only copy without a durable tier). Both report evictions to one
// handler here; evicted keys leave the index, and a bounded set of recent evictions keeps
// GET's "evicted" answer for them.
//
// Write path (PUT/PATCH): take the key's writer lock → assign version → durable tier
// writes → memory tier insert → index update → unlock → acknowledge. Read path (GET):
// take the key's reader lock → memory tier lookup (pin) or durable read → decide the
// reply (PlanGet) → unlock. The returned object stays pinned in the memory tier until
// the caller drops it, and shares its buffers with it (no copies).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "cache/memory_limit.h"
#include "key/key.h"
#include "object/object.h"
#include "storage/storage_engine.h"
#include "store/change_feed.h"
#include "store/store.h"

namespace foc {

/// What the memory-only store does when a write would exceed the memory limit.
enum class MemoryFullPolicy {
  kEvict,   ///< evict least recently used objects and report them as evicted (default)
  kRefuse,  ///< refuse the write with RESOURCE_EXHAUSTED
};

struct StoreOptions {
  int64_t max_memory_bytes =
      kDefaultMaxMemoryBytes;  ///< memory cache limit; 0 = unlimited
  int64_t max_objects = 0;     ///< resident object limit; 0 = unlimited
  bool eviction = true;        ///< false: `eviction.policy: none`
  MemoryFullPolicy memory_full = MemoryFullPolicy::kEvict;  ///< memory-only storage only
  int64_t max_deltas = 1000;  ///< deltas per object (upstream's limit)
  /// Evicted keys remembered so that GET says "evicted" rather than "not found"; older
  /// ones are forgotten (their versions folded into their app's version floor).
  int64_t recent_evictions = 65536;
  /// Session and key version floors kept in memory (DELETEs' and forgotten evictions');
  /// beyond it the oldest is folded into its app's floor (store/version_floors.h).
  int64_t max_version_floors = 65536;
};

/// The store that is its own version authority (see store/store.h).
class ObjectStore final : public Store {
 public:
  /// Opens the store: scans `storage` (index only, no payloads) and loads version floors.
  /// A null `storage` (`storage: none`) opens a store with a memory tier only.
  static arrow::Result<std::unique_ptr<ObjectStore>> Open(
      StoreOptions options, std::unique_ptr<StorageEngine> storage);
  ~ObjectStore() override;

  /// Identifies this store's data set; changes whenever state may have been lost (each
  /// start of a memory-only server). Sent as schema metadata `flame.cache.epoch` and
  /// PutResult field `epoch` so clients can refuse stale cache entries.
  std::string epoch() const override;

  /// PUT to a session (new object, generated id) or a full key (create or replace).
  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) override;
  /// A spool in the storage engine (disk); NotImplemented without one that spools.
  arrow::Result<std::unique_ptr<UploadSpool>> BeginUpload() override;
  /// Appends a delta. KeyError if the object does not exist; Invalid for native tables.
  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   std::shared_ptr<arrow::Buffer> delta) override;
  /// Versioned read. KeyError if absent (the message says when it was evicted).
  arrow::Result<ReadResult> Get(const ObjectKey& key, uint64_t client_version) override;
  /// The schema of a native table (nullptr if opaque); KeyError if absent.
  arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(
      const ObjectKey& key) override;
  /// Deletes everything matching; returns how many objects were removed.
  arrow::Result<int64_t> Delete(const KeyPattern& pattern) override;
  /// Every readable object.
  arrow::Result<std::vector<ObjectListing>> List() const override;
  /// One object's index entry (no payload read); KeyError if absent.
  arrow::Result<ObjectListing> Lookup(const ObjectKey& key) const override;

  StoreStats stats() const override;
  /// The durable tier's engine; nullptr for a memory-only store.
  const StorageEngine* storage() const;
  /// Keys in the index (live objects only: evicted keys leave it).
  int64_t index_size() const;
  /// Keys in the recent-evictions set (bounded by StoreOptions::recent_evictions).
  int64_t recent_evictions_size() const;
  /// Version floors held in memory: at most StoreOptions::max_version_floors session and
  /// key floors plus one per app (store/version_floors.h).
  int64_t version_floors_size() const;
  /// Every committed PUT, PATCH and deleted key, published after it is durable and
  /// visible, in commit order per key (see store/change_feed.h).
  ChangeFeed& changes();
  ChangeFeed* change_feed() override { return &changes(); }
  /// The storage engine's files of `key` (disk storage), listed under its reader lock.
  arrow::Result<LocalObject> MapLocal(const ObjectKey& key) override;

  class Impl;

 private:
  explicit ObjectStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace foc
