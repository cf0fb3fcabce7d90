#include "store/object_store.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "cache/lru_cache.h"
#include "storage/storage_full.h"
#include "store/key_locks.h"

namespace foc {
namespace {

// What the index knows of a key.
struct IndexEntry {
  uint64_t version = 0;  // current version: the next write gets version + 1
  int64_t payload_bytes = 0;
  int32_t delta_count = 0;
  bool evicted = false;       // memory-only storage: dropped for space, payload gone
  bool disk_evicted = false;  // disk storage: removed to stay within the capacity
  bool native = false;        // a native Arrow table (for listings: kind)
};

// Recency of the objects on disk (resident or not), for evicting from a capacity-limited
// disk store. Only maintained when the storage has a capacity limit.
class DiskLru {
 public:
  void Touch(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pos_.find(key);
    if (it != pos_.end()) {
      order_.splice(order_.end(), order_, it->second);
    } else {
      pos_[key] = order_.insert(order_.end(), key);
    }
  }
  void Remove(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pos_.find(key);
    if (it == pos_.end()) return;
    order_.erase(it->second);
    pos_.erase(it);
  }
  /// The least recently used key other than `except`; empty when there is none.
  std::string Oldest(const std::string& except) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& k : order_) {
      if (k != except) return k;
    }
    return {};
  }

 private:
  mutable std::mutex mu_;
  std::list<std::string> order_;  // oldest first
  std::unordered_map<std::string, std::list<std::string>::iterator> pos_;
};

using Cache = LruCache<Object::Ptr>;

// Keeps a memory-cache pin alive for as long as the returned object pointer lives.
struct PinnedObject {
  Cache::Handle handle;
  Object::Ptr object;
};

Object::Ptr Pin(Cache::Handle handle) {
  auto holder = std::make_shared<PinnedObject>();
  holder->object = handle.value();
  holder->handle = std::move(handle);
  const Object* raw = holder->object.get();
  return Object::Ptr(std::move(holder), raw);
}

arrow::Status EvictedError(const ObjectKey& key, bool from_disk = false) {
  if (from_disk) {
    return arrow::Status::KeyError("object ", key.str(),
                                   " was evicted from disk storage to stay within the "
                                   "storage capacity (cache.capacity); "
                                   "write it again, or configure a larger capacity");
  }
  return arrow::Status::KeyError(
      "object ", key.str(),
      " was evicted under memory pressure (storage: none keeps objects only in memory); "
      "write it again, or configure disk storage or a larger eviction.max_memory");
}

}  // namespace

class ObjectStore::Impl {
 public:
  Impl(StoreOptions options, std::unique_ptr<StorageEngine> storage)
      : options_(options),
        storage_(std::move(storage)),
        memory_only_(!storage_->persistent()),
        disk_limited_(storage_->persistent() && storage_->Usage().capacity_bytes > 0),
        cache_(Cache::Options{options.eviction ? options.max_memory_bytes : 0,
                              options.eviction ? options.max_objects : 0},
               [this](const std::string& key, const Object::Ptr& obj) {
                 OnEvict(key, obj);
               }) {}

  arrow::Status Open() {
    ARROW_ASSIGN_OR_RAISE(epoch_, storage_->InstanceId());
    if (epoch_.empty()) epoch_ = NewUuid4();
    int64_t count = 0;
    ARROW_RETURN_NOT_OK(storage_->Scan([&](StoredObjectInfo info) {
      index_[info.key.str()] = IndexEntry{
          info.version, info.payload_bytes, info.delta_count, false, false, info.native};
      if (disk_limited_) disk_lru_.Touch(info.key.str());
      ++count;
    }));
    ARROW_ASSIGN_OR_RAISE(auto floors, storage_->LoadFloors());
    for (auto& f : floors) {
      auto& v = floors_[f.pattern];
      v = std::max(v, f.version);
    }
    spdlog::info("store: {} objects indexed, {} version floors, storage {}", count,
                 floors_.size(), storage_->Describe());
    return arrow::Status::OK();
  }

  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) {
    ARROW_ASSIGN_OR_RAISE(
        auto key, ObjectKey::Make(target.app, target.session,
                                  target.has_object() ? target.object : NewUuid4()));
    while (true) {
      arrow::Status st;
      int64_t write_bytes = 0;
      {
        auto guard = locks_.Exclusive(key.str());
        ARROW_ASSIGN_OR_RAISE(const uint64_t current, CurrentVersionForWrite(key));
        ARROW_ASSIGN_OR_RAISE(const uint64_t version, NextVersion(key, current));
        Object::Ptr object = payload.table ? Object::MakeNative(version, *payload.table)
                                           : Object::MakeOpaque(version, payload.data);
        st = Store(key, object, /*append=*/false);
        write_bytes = object->payload_bytes();
        if (st.ok()) {
          bytes_written_ += object->payload_bytes();
          changes_.Publish({key.str(), version, ChangeKind::kPut});
          return WriteResult{std::move(key), version};
        }
      }
      // Outside the key's lock (eviction takes other keys' locks): make room, try again.
      ARROW_RETURN_NOT_OK(MakeRoomOnDisk(key, st, write_bytes, /*replace=*/true));
    }
  }

  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   std::shared_ptr<arrow::Buffer> delta) {
    while (true) {
      arrow::Status st;
      {
        auto guard = locks_.Exclusive(key.str());
        auto written = PatchLocked(key, delta, &st);
        if (written.ok() || st.ok()) return written;
      }
      ARROW_RETURN_NOT_OK(MakeRoomOnDisk(key, st, delta ? delta->size() : 0, false));
    }
  }

  // Patch under the key's writer lock. A failure of the storage write is also put in
  // `*store_status` (so the caller can make room on disk and retry).
  arrow::Result<WriteResult> PatchLocked(const ObjectKey& key,
                                         const std::shared_ptr<arrow::Buffer>& delta,
                                         arrow::Status* store_status) {
    auto loaded = Load(key);
    if (!loaded.ok()) {
      // An evicted object keeps its index entry (marked evicted by Load or by eviction):
      // say so; any other missing object is "not found for patch".
      if (loaded.status().IsKeyError() && !IsEvicted(key)) {
        return arrow::Status::KeyError("object ", key.str(), " not found for patch");
      }
      return loaded.status();
    }
    const Object::Ptr& object = *loaded;
    if (object->is_native()) {
      return arrow::Status::Invalid(
          "object ", key.str(),
          " is a native Arrow table; PATCH applies only to opaque objects (replace the "
          "table with a PUT to the same key instead)");
    }
    if (options_.max_deltas > 0 &&
        static_cast<int64_t>(object->deltas().size()) >= options_.max_deltas) {
      return arrow::Status::Invalid("object ", key.str(),
                                    " has reached maximum delta count (",
                                    options_.max_deltas, ")");
    }
    const int64_t delta_bytes = delta ? delta->size() : 0;
    // An object adopted from storage carries its file's version, which may be below the
    // key's floor (placed there after a DELETE): continue above both.
    ARROW_ASSIGN_OR_RAISE(const uint64_t version,
                          NextVersion(key, std::max(object->version(), FloorFor(key))));
    ARROW_ASSIGN_OR_RAISE(auto patched, object->WithDelta(Delta{version, delta}));
    *store_status = Store(key, patched, /*append=*/true);
    ARROW_RETURN_NOT_OK(*store_status);
    bytes_written_ += delta_bytes;
    changes_.Publish({key.str(), patched->version(), ChangeKind::kPatch});
    return WriteResult{key, patched->version()};
  }

  arrow::Result<ReadResult> Get(const ObjectKey& key, uint64_t client_version) {
    auto guard = locks_.Shared(key.str());
    ARROW_ASSIGN_OR_RAISE(auto object, Load(key));
    const GetPlan plan = PlanGet(*object, client_version);
    switch (plan.kind) {
      case GetReplyKind::kNotModified:
        not_modified_++;
        break;
      case GetReplyKind::kPatches:
        patch_replies_++;
        for (size_t i = plan.first_delta; i < object->deltas().size(); ++i) {
          const auto& d = object->deltas()[i].data;
          bytes_read_ += d ? d->size() : 0;
        }
        break;
      case GetReplyKind::kFull:
        full_replies_++;
        bytes_read_ += object->payload_bytes();
        break;
      case GetReplyKind::kNative:
        native_replies_++;
        bytes_read_ += object->payload_bytes();
        break;
    }
    return ReadResult{std::move(object), plan};
  }

  arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(const ObjectKey& key) {
    auto guard = locks_.Shared(key.str());
    if (auto handle = cache_.Lookup(key.str())) {
      const auto& table = handle.value()->table();
      return table ? table->schema : nullptr;
    }
    ARROW_RETURN_NOT_OK(CheckIndexed(key));
    return storage_->ReadNativeSchema(key);
  }

  arrow::Result<LocalObject> MapLocal(const ObjectKey& key) {
    auto guard = locks_.Shared(key.str());
    ARROW_RETURN_NOT_OK(CheckIndexed(key));
    ARROW_ASSIGN_OR_RAISE(auto files, storage_->LocalFiles(key));
    LocalObject out{key, files.back().version, false, std::move(files)};
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key.str());
      if (it == index_.end() || it->second.version != out.version) {
        return arrow::Status::IOError("object ", key.str(),
                                      ": its files do not hold its current version");
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto schema, storage_->ReadNativeSchema(key));
    out.native = schema != nullptr;
    return out;
  }

  arrow::Result<int64_t> Delete(const KeyPattern& pattern) {
    // Enumerate under the index lock, then take each key's writer lock in turn: a write
    // to a key either completes before its removal or starts after it (then it survives,
    // as a write issued after the DELETE would).
    std::vector<std::string> keys;
    uint64_t floor = 0;
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      for (auto it = index_.lower_bound(pattern.key_prefix());
           it != index_.end() && it->first.starts_with(pattern.key_prefix()); ++it) {
        if (pattern.kind() == KeyPattern::Kind::kObject &&
            it->first != pattern.key_prefix()) {
          continue;
        }
        keys.push_back(it->first);
        floor = std::max(floor, it->second.version);
      }
    }
    if (pattern.kind() == KeyPattern::Kind::kObject && keys.empty() && !memory_only_) {
      // An object written into the storage directory behind our back (flamepy local
      // mode).
      ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(pattern.key_prefix()));
      auto guard = locks_.Exclusive(key.str());
      if (auto adopted = Adopt(key); adopted.ok()) {
        keys.push_back(key.str());
        floor = (*adopted)->version();
      }
    }
    if (floor > 0) ARROW_RETURN_NOT_OK(RecordFloor(pattern.str(), floor));
    int64_t removed = 0;
    for (const auto& k : keys) {
      ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(k));
      auto guard = locks_.Exclusive(k);
      uint64_t version = 0;
      {
        std::shared_lock<std::shared_mutex> lock(index_mu_);
        auto it = index_.find(k);
        if (it == index_.end()) continue;  // deleted concurrently
        version = it->second.version;
      }
      if (version > floor)
        ARROW_RETURN_NOT_OK(RecordFloor(k, version));  // patched meanwhile
      ARROW_RETURN_NOT_OK(storage_->Remove(key));
      cache_.Erase(k);
      if (disk_limited_) disk_lru_.Remove(k);
      std::unique_lock<std::shared_mutex> lock(index_mu_);
      index_.erase(k);
      changes_.Publish({k, version, ChangeKind::kDelete});
      ++removed;
    }
    return removed;
  }

  std::vector<ObjectListing> List() const {
    std::vector<ObjectListing> out;
    std::shared_lock<std::shared_mutex> lock(index_mu_);
    out.reserve(index_.size());
    for (const auto& [k, e] : index_) {
      if (e.evicted) continue;
      auto key = ObjectKey::Parse(k);
      if (key.ok()) out.push_back(Listing(*std::move(key), e));
    }
    return out;
  }

  arrow::Result<ObjectListing> Lookup(const ObjectKey& key) const {
    std::shared_lock<std::shared_mutex> lock(index_mu_);
    auto it = index_.find(key.str());
    if (it == index_.end() || it->second.evicted)
      return arrow::Status::KeyError("object ", key.str(), " not found");
    return Listing(key, it->second);
  }

  static ObjectListing Listing(ObjectKey key, const IndexEntry& e) {
    return ObjectListing{std::move(key), e.version, e.payload_bytes, e.delta_count,
                         e.native};
  }

  StoreStats stats() const {
    StoreStats s;
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      for (const auto& [k, e] : index_) s.objects += e.evicted ? 0 : 1;
    }
    const auto cs = cache_.stats();
    s.resident_objects = cs.entries;
    s.resident_bytes = cs.bytes;
    s.memory_evictions = cs.evictions;
    s.lost_objects = lost_objects_;
    s.refused_writes = refused_writes_;
    s.not_modified_replies = not_modified_;
    s.patch_replies = patch_replies_;
    s.full_replies = full_replies_;
    s.native_replies = native_replies_;
    s.bytes_written = bytes_written_;
    s.bytes_read = bytes_read_;
    s.storage = storage_->Usage();
    return s;
  }

  const std::string& epoch() const { return epoch_; }
  const StorageEngine& storage() const { return *storage_; }
  ChangeFeed& changes() { return changes_; }

 private:
  // The version a write continues from: the highest of the key's current version and the
  // version floors covering it (a key deleted and re-created continues above its old
  // versions, also when the new object was placed in the storage directory behind our
  // back and adopted with its file's version).
  arrow::Result<uint64_t> CurrentVersionForWrite(const ObjectKey& key) {
    const uint64_t floor = FloorFor(key);
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end()) return std::max(it->second.version, floor);
    }
    if (!memory_only_) {
      // flamepy's local-storage mode writes objects straight into the storage directory.
      if (auto adopted = Adopt(key); adopted.ok()) {
        return std::max((*adopted)->version(), floor);
      }
    }
    return floor;
  }

  // current + 1, refused at the top of the version space: a wrapped version would go
  // backwards, and a client holding a high version would be told "not modified".
  static arrow::Result<uint64_t> NextVersion(const ObjectKey& key, uint64_t current) {
    if (current == std::numeric_limits<uint64_t>::max()) {
      return arrow::Status::CapacityError(
          "object ", key.str(), " has reached the largest version (", current,
          "); a further write would wrap its version to 0, so it is refused: write to "
          "another key");
    }
    return current + 1;
  }

  uint64_t FloorFor(const ObjectKey& key) {
    std::lock_guard<std::mutex> lock(floors_mu_);
    uint64_t floor = 0;
    for (const std::string& p :
         {key.str(), std::string(key.prefix()), std::string(key.app()) + "/*"}) {
      auto it = floors_.find(p);
      if (it != floors_.end()) floor = std::max(floor, it->second);
    }
    return floor;
  }

  arrow::Status RecordFloor(const std::string& pattern, uint64_t version) {
    ARROW_RETURN_NOT_OK(storage_->RecordFloor(VersionFloor{pattern, version}));
    std::lock_guard<std::mutex> lock(floors_mu_);
    auto& v = floors_[pattern];
    v = std::max(v, version);
    return arrow::Status::OK();
  }

  arrow::Status CheckIndexed(const ObjectKey& key) {
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end()) {
        if (it->second.evicted) return EvictedError(key, it->second.disk_evicted);
        return arrow::Status::OK();
      }
    }
    if (!memory_only_) return Adopt(key).status();
    return arrow::Status::KeyError("object ", key.str(), " not found");
  }

  bool IsEvicted(const ObjectKey& key) const {
    std::shared_lock<std::shared_mutex> lock(index_mu_);
    auto it = index_.find(key.str());
    return it != index_.end() && it->second.evicted;
  }

  // Reads an object that exists in storage but not in the index, and indexes it. Caller
  // holds the key's lock (shared or exclusive).
  arrow::Result<Object::Ptr> Adopt(const ObjectKey& key) {
    ARROW_ASSIGN_OR_RAISE(auto object, storage_->Read(key));
    std::unique_lock<std::shared_mutex> lock(index_mu_);
    auto [it, inserted] = index_.try_emplace(
        key.str(), IndexEntry{object->version(), object->payload_bytes(),
                              static_cast<int32_t>(object->deltas().size()), false, false,
                              object->is_native()});
    if (inserted) spdlog::info("store: adopted {} found in storage", key.str());
    return object;
  }

  // The object, from memory (pinned) or storage (cached when it fits). Caller holds the
  // key's lock.
  arrow::Result<Object::Ptr> Load(const ObjectKey& key) {
    ARROW_ASSIGN_OR_RAISE(auto object, LoadObject(key));
    // Only objects that exist enter the disk recency list: GETs of missing keys must not
    // grow it.
    if (disk_limited_) disk_lru_.Touch(key.str());
    return object;
  }

  arrow::Result<Object::Ptr> LoadObject(const ObjectKey& key) {
    if (auto handle = cache_.Lookup(key.str())) return Pin(std::move(handle));
    {
      std::unique_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end() && it->second.evicted) {
        return EvictedError(key, it->second.disk_evicted);
      }
      if (memory_only_) {
        if (it == index_.end()) {
          return arrow::Status::KeyError("object ", key.str(), " not found");
        }
        // Indexed but not resident: evicted between our write and now.
        it->second.evicted = true;
        return EvictedError(key);
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto object, Adopt(key));
    if (cache_.Fits(object->memory_charge())) {
      ARROW_ASSIGN_OR_RAISE(auto handle,
                            cache_.Insert(key.str(), object, object->memory_charge()));
      return Pin(std::move(handle));
    }
    return object;  // larger than the whole memory limit: served from storage, not cached
  }

  // Makes `object` the key's new state: durable first, then memory, then the index.
  // Caller holds the key's writer lock.
  arrow::Status Store(const ObjectKey& key, const Object::Ptr& object, bool append) {
    const int64_t charge = object->memory_charge();
    const IndexEntry entry{object->version(),
                           object->payload_bytes(),
                           static_cast<int32_t>(object->deltas().size()),
                           false,
                           false,
                           object->is_native()};
    if (memory_only_) {
      if (!cache_.Fits(charge)) {
        refused_writes_++;
        return arrow::Status::CapacityError(
            "object ", key.str(), " needs ", charge,
            " bytes of memory, more than eviction.max_memory (",
            options_.max_memory_bytes, " bytes); with storage: none it cannot be kept");
      }
      // Index first, so that an eviction racing with the insert sees this version.
      IndexEntry previous;
      bool had_previous = false;
      {
        std::unique_lock<std::shared_mutex> lock(index_mu_);
        auto it = index_.find(key.str());
        if (it != index_.end()) {
          previous = it->second;
          had_previous = true;
        }
        index_[key.str()] = entry;
      }
      const bool allow_evict = options_.memory_full == MemoryFullPolicy::kEvict;
      auto inserted = cache_.Insert(key.str(), object, charge, allow_evict);
      if (!inserted.ok()) {
        refused_writes_++;
        std::unique_lock<std::shared_mutex> lock(index_mu_);
        if (had_previous) {
          index_[key.str()] = previous;
        } else {
          index_.erase(key.str());
        }
        return inserted.status().WithMessage(
            "cannot store ", key.str(), ": ", inserted.status().message(),
            " (storage: none; eviction refuses writes when memory is full)");
      }
      return arrow::Status::OK();
    }
    arrow::Status written =
        append ? storage_->Append(key, *object) : storage_->Put(key, *object);
    if (!written.ok()) {
      if (!written.IsCapacityError()) {
        // The write may have landed on disk although it failed (e.g. the directory fsync
        // after the rename): forget what memory knows, so the next access reads the state
        // from storage and the next version is above whatever is there.
        cache_.Erase(key.str());
        std::unique_lock<std::shared_mutex> lock(index_mu_);
        index_.erase(key.str());
      }
      return written;
    }
    if (disk_limited_) disk_lru_.Touch(key.str());
    if (cache_.Fits(charge)) {
      ARROW_ASSIGN_OR_RAISE(auto handle, cache_.Insert(key.str(), object, charge));
    } else {
      cache_.Erase(key.str());
    }
    std::unique_lock<std::shared_mutex> lock(index_mu_);
    index_[key.str()] = entry;
    return arrow::Status::OK();
  }

  // After a write of `write_bytes` to `key` (a replacing PUT, or an appended delta)
  // failed with `failure`: when the disk store's capacity limit was the reason, removes
  // least-recently-used other objects from disk until the write fits (at least one),
  // reporting them as evicted, and returns OK to retry. Returns `failure` itself when
  // retrying cannot help: another error, a full device (ENOSPC), an object larger than
  // the whole capacity, or nothing left to evict. Holds no key lock when called.
  arrow::Status MakeRoomOnDisk(const ObjectKey& key, const arrow::Status& failure,
                               int64_t write_bytes, bool replace) {
    if (!disk_limited_ || !IsCapacityLimit(failure)) return failure;
    constexpr int64_t kFileOverhead =
        1024;  // IPC framing of one file, as the engine estimates
    int64_t own = 0;
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end() && !it->second.evicted) own = it->second.payload_bytes;
    }
    const StorageUsage usage = storage_->Usage();
    const int64_t object_after = (replace ? 0 : own) + write_bytes + kFileOverhead;
    if (object_after > usage.capacity_bytes) return failure;
    const int64_t needed = write_bytes + kFileOverhead - (replace ? own : 0);
    bool evicted_any = false;
    while (!evicted_any ||
           storage_->Usage().stored_bytes + needed > usage.capacity_bytes) {
      const std::string victim = disk_lru_.Oldest(key.str());
      if (victim.empty()) return failure;
      ARROW_ASSIGN_OR_RAISE(bool evicted, EvictFromDisk(victim));
      evicted_any = evicted_any || evicted;
    }
    return arrow::Status::OK();
  }

  // Removes `victim` from disk and memory, keeping its index entry (and version, also as
  // a persisted floor) so that a GET says it was evicted and a new PUT continues its
  // versions.
  arrow::Result<bool> EvictFromDisk(const std::string& victim) {
    ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(victim));
    auto guard = locks_.Exclusive(victim);
    disk_lru_.Remove(victim);
    uint64_t version = 0;
    int64_t bytes = 0;
    {
      std::shared_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(victim);
      if (it == index_.end() || it->second.evicted) return false;
      version = it->second.version;
      bytes = it->second.payload_bytes;
    }
    ARROW_RETURN_NOT_OK(RecordFloor(victim, version));
    ARROW_RETURN_NOT_OK(storage_->Remove(key));
    cache_.Erase(victim);
    {
      std::unique_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(victim);
      if (it != index_.end()) {
        it->second.evicted = true;
        it->second.disk_evicted = true;
      }
    }
    lost_objects_++;
    spdlog::warn(
        "store: evicted {} (version {}, {} bytes) from disk to stay within the "
        "storage capacity of {} bytes",
        victim, version, bytes, storage_->Usage().capacity_bytes);
    return true;
  }

  void OnEvict(const std::string& key, const Object::Ptr& object) {
    if (!memory_only_) return;  // the durable copy stays on disk
    {
      std::unique_lock<std::shared_mutex> lock(index_mu_);
      auto it = index_.find(key);
      if (it == index_.end() || it->second.version != object->version()) return;
      it->second.evicted = true;
    }
    lost_objects_++;
    spdlog::warn(
        "store: evicted {} (version {}, {} bytes) under memory pressure; with storage: "
        "none "
        "it is gone",
        key, object->version(), object->payload_bytes());
  }

  const StoreOptions options_;
  const std::unique_ptr<StorageEngine> storage_;
  const bool memory_only_;
  const bool
      disk_limited_;  // disk storage with a capacity limit: evict from disk for space
  std::string epoch_;
  DiskLru disk_lru_;

  KeyLocks locks_;
  Cache cache_;

  mutable std::shared_mutex index_mu_;
  std::map<std::string, IndexEntry> index_;  // ordered: prefix scans for DELETE

  std::mutex floors_mu_;
  std::unordered_map<std::string, uint64_t> floors_;  // pattern -> version floor

  std::atomic<int64_t> lost_objects_{0};
  std::atomic<int64_t> refused_writes_{0};
  std::atomic<int64_t> not_modified_{0};
  std::atomic<int64_t> patch_replies_{0};
  std::atomic<int64_t> full_replies_{0};
  std::atomic<int64_t> native_replies_{0};
  std::atomic<int64_t> bytes_written_{0};
  std::atomic<int64_t> bytes_read_{0};
  ChangeFeed changes_;  // published to under the key's writer lock: commit order per key
};

arrow::Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(
    StoreOptions options, std::unique_ptr<StorageEngine> storage) {
  auto impl = std::make_unique<Impl>(options, std::move(storage));
  ARROW_RETURN_NOT_OK(impl->Open());
  return std::unique_ptr<ObjectStore>(new ObjectStore(std::move(impl)));
}

ObjectStore::ObjectStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ObjectStore::~ObjectStore() = default;

std::string ObjectStore::epoch() const { return impl_->epoch(); }
arrow::Result<WriteResult> ObjectStore::Put(const PutTarget& target, Payload payload) {
  return impl_->Put(target, std::move(payload));
}
arrow::Result<WriteResult> ObjectStore::Patch(const ObjectKey& key,
                                              std::shared_ptr<arrow::Buffer> delta) {
  return impl_->Patch(key, std::move(delta));
}
arrow::Result<ReadResult> ObjectStore::Get(const ObjectKey& key,
                                           uint64_t client_version) {
  return impl_->Get(key, client_version);
}
arrow::Result<std::shared_ptr<arrow::Schema>> ObjectStore::NativeSchema(
    const ObjectKey& key) {
  return impl_->NativeSchema(key);
}
arrow::Result<int64_t> ObjectStore::Delete(const KeyPattern& pattern) {
  return impl_->Delete(pattern);
}
arrow::Result<std::vector<ObjectListing>> ObjectStore::List() const {
  return impl_->List();
}
arrow::Result<ObjectListing> ObjectStore::Lookup(const ObjectKey& key) const {
  return impl_->Lookup(key);
}
StoreStats ObjectStore::stats() const { return impl_->stats(); }
const StorageEngine& ObjectStore::storage() const { return impl_->storage(); }
ChangeFeed& ObjectStore::changes() { return impl_->changes(); }
arrow::Result<LocalObject> ObjectStore::MapLocal(const ObjectKey& key) {
  return impl_->MapLocal(key);
}

}  // namespace foc
