// The store's tiers: where an object's bytes live (docs/architecture.md, "Tiers").
//
// The object store keeps the index, versions, floors and per-key ordering; the bytes are
// in at most two tiers:
//   * MemoryTier  — the LruCache of objects, charged in memory bytes. A cache of the
//                   durable copy, or the only copy (`storage: none`), where it applies
//                   evict-or-refuse (`eviction.memory_full`).
//   * DurableTier — one StorageEngine (disk or S3) and, with a capacity limit
//                   (`cache.capacity`), an LruCache of the stored objects (no payloads)
//                   charged in stored bytes as the engine reports them.
// Both report what they evict to one handler in the store (ObjectStore::Impl::OnEvicted),
// which keeps the index, the recent-evictions set and the version floors right and logs
// one summary line per burst (EvictionLog).
//
// The two tiers do not share a virtual interface: the store calls them at different
// points of a write (durable first, then memory) with different failure rules (a durable
// failure fails the write; a memory miss is only a cache miss unless memory is the only
// copy), so a common `Tier` base would be a switch in disguise.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "base/mutex.h"
#include "cache/lru_cache.h"
#include "object/object.h"
#include "storage/storage_engine.h"
#include "store/fifo_positions.h"

namespace foc {

enum class TierKind { kMemory, kDurable };

/// "memory" or "durable".
const char* TierName(TierKind tier);

/// One object a tier evicted for space.
struct Eviction {
  std::string key;
  uint64_t version = 0;
  int64_t bytes = 0;  ///< what the tier charged for it: memory bytes or stored bytes
};

/// Where the memory tier reports an eviction burst (everything one insert evicted).
using EvictionHandler = std::function<void(TierKind tier, std::vector<Eviction> burst)>;

/// The objects held in memory, pinned while read.
class MemoryTier {
 public:
  /// `sole_copy`: no durable tier behind it (`storage: none`): an object that cannot be
  /// kept is refused instead of skipped, and with `refuse_when_full` a write that would
  /// need evictions is refused too. `on_evict` receives every eviction burst.
  MemoryTier(int64_t max_bytes, int64_t max_objects, bool sole_copy,
             bool refuse_when_full, EvictionHandler on_evict);

  /// The resident object, pinned while the returned pointer (or a copy) lives; nullptr
  /// when it is not resident.
  Object::Ptr Lookup(const std::string& key);

  /// Makes `object` the resident copy of `key` and returns it pinned. As a cache: an
  /// object larger than the whole limit is not kept (and any older copy dropped); it is
  /// returned unpinned. As the sole copy: CapacityError when it can never fit, or (refuse
  /// mode) when it would need evictions; the tier is then unchanged.
  arrow::Result<Object::Ptr> Insert(const std::string& key, Object::Ptr object);

  /// Drops the resident copy; its memory is released when its last reader lets go.
  void Erase(const std::string& key);

  bool sole_copy() const { return sole_copy_; }
  int64_t max_bytes() const { return cache_.options().max_bytes; }
  LruCacheStats stats() const { return cache_.stats(); }

 private:
  using Cache = LruCache<Object::Ptr>;
  static Object::Ptr Pin(Cache::Handle handle);

  const bool sole_copy_;
  const bool refuse_when_full_;
  Cache cache_;
};

/// The durable copy: a storage engine and, with a capacity limit, the recency of what it
/// stores. The limit itself is enforced by the engine at the moment of the write (only it
/// knows a file's exact size, after writing it and before making it visible), which
/// refuses with the number of bytes to free (storage/storage_full.h); the tier's LRU,
/// charged in the stored bytes the engine reports, decides what goes. The store does the
/// evicting (DurableTier::TakeOldest), because it must hold the victim's key lock.
class DurableTier {
 public:
  explicit DurableTier(std::unique_ptr<StorageEngine> engine);

  StorageEngine& engine() const { return *engine_; }
  bool limited() const { return limited_; }

  /// `key` is stored at `version` (after a write, the startup scan or an adoption): it
  /// becomes the most recently used, charged what the engine now reports for it.
  void Stored(const ObjectKey& key, uint64_t version);
  /// `key` was read: it becomes the most recently used.
  void Touched(const std::string& key);
  /// `key` is no longer stored (deleted, evicted, or in an unknown state after a failed
  /// write).
  void Forget(const std::string& key);

  /// After a write to `key` failed with `failure`: the stored bytes to evict from other
  /// objects for it to fit, or 0 when evicting cannot help (another error, a full device,
  /// an object larger than the whole capacity, nothing else stored).
  int64_t BytesToEvictFor(const std::string& key, const arrow::Status& failure) const;

  /// The least recently used stored object other than `except`, taken out of the LRU
  /// (the caller removes it under its key lock); nullopt when there is none.
  std::optional<Eviction> TakeOldest(const std::string& except);

  /// e.g. "disk:/var/lib/flame/cache".
  std::string Describe() const { return engine_->Describe(); }
  /// The first word of Describe(): "disk", "s3", ...
  std::string Kind() const;

 private:
  const std::unique_ptr<StorageEngine> engine_;
  const bool limited_;
  LruCache<uint64_t> lru_;  // value: the stored version; only maintained when limited_
};

/// Keys evicted recently, with the version they had and the tier that evicted them: lets
/// GET answer "evicted" (not "not found") without keeping evicted keys in the index.
/// Bounded: beyond `capacity` the oldest is forgotten and handed back to the caller,
/// which folds its version into a floor so versions stay monotonic. Not thread-safe (the
/// store guards it with its index lock).
class RecentEvictions {
 public:
  struct Entry {
    uint64_t version = 0;
    TierKind tier = TierKind::kMemory;
  };
  struct Forgotten {
    std::string key;
    uint64_t version = 0;
  };

  explicit RecentEvictions(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  /// Records `key` as evicted; returns the entry forgotten to make room, if any.
  std::optional<Forgotten> Add(const std::string& key, Entry entry);
  /// Removes `key` (written again, or deleted) and returns what was recorded.
  std::optional<Entry> Take(const std::string& key);
  const Entry* Find(const std::string& key) const;
  /// Keys starting with `prefix`, in order.
  std::vector<std::pair<std::string, Entry>> WithPrefix(const std::string& prefix) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Slot {
    Entry entry;
    uint64_t seq = 0;
  };
  const size_t capacity_;
  uint64_t next_seq_ = 0;
  std::map<std::string, Slot> entries_;  // ordered: DELETE by prefix
  FifoPositions order_;                  // oldest first; stale seqs skipped
};

/// One warning line per tier per eviction burst, and at most one per `interval`: a burst
/// is what accumulated since the tier's last line (a steady stream of single evictions
/// gives one line per interval, not one per object). Thread-safe.
class EvictionLog {
 public:
  explicit EvictionLog(std::chrono::steady_clock::duration interval)
      : interval_(interval) {}
  ~EvictionLog();  // logs what is still pending

  /// Counts evicted objects; nothing is logged until Flush.
  void Add(TierKind tier, int64_t objects, int64_t bytes);
  /// Ends a burst: logs the tier's pending count unless a line was logged less than
  /// `interval` ago (then it stays pending for the next Flush). `why` completes the line.
  void Flush(TierKind tier, const std::string& why);

 private:
  struct Pending {
    int64_t objects = 0;
    int64_t bytes = 0;
    std::optional<std::chrono::steady_clock::time_point> last_line;
    std::chrono::steady_clock::time_point since{};
    std::string why;
  };
  void LogLocked(TierKind tier, Pending* p, std::chrono::steady_clock::time_point now)
      FOC_REQUIRES(mu_);

  const std::chrono::steady_clock::duration interval_;
  Mutex mu_;
  Pending pending_[2] FOC_GUARDED_BY(mu_);
};

}  // namespace foc
