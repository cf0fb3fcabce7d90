#include "store/object_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/check.h"
#include "base/mutex.h"
#include "store/key_locks.h"
#include "store/tiers.h"
#include "store/version_floors.h"

namespace foc {
namespace {

// What the index knows of a live key (evicted keys leave the index).
struct IndexEntry {
  uint64_t version = 0;  // current version: the next write gets version + 1
  int64_t payload_bytes = 0;
  int32_t delta_count = 0;
  bool native = false;  // a native Arrow table (for listings: kind)
};

IndexEntry EntryOf(const Object& object) {
  return IndexEntry{object.version(), object.payload_bytes(),
                    static_cast<int32_t>(object.deltas().size()), object.is_native()};
}

// A line of eviction summaries at most this often per tier.
constexpr std::chrono::seconds kEvictionLogInterval{10};

}  // namespace

class ObjectStore::Impl {
 public:
  Impl(StoreOptions options, std::unique_ptr<StorageEngine> storage)
      : options_(options),
        durable_(storage ? std::make_unique<DurableTier>(std::move(storage)) : nullptr),
        memory_(options.eviction ? options.max_memory_bytes : 0,
                options.eviction ? options.max_objects : 0,
                /*sole_copy=*/durable_ == nullptr,
                options.memory_full == MemoryFullPolicy::kRefuse,
                [this](TierKind tier, const std::vector<Eviction>& burst) {
                  OnEvicted(tier, burst, /*end_of_burst=*/true);
                }),
        recent_(static_cast<size_t>(std::max<int64_t>(options.recent_evictions, 1))),
        floors_(static_cast<size_t>(std::max<int64_t>(options.max_version_floors, 1))),
        eviction_log_(kEvictionLogInterval) {}

  arrow::Status Open() {
    int64_t count = 0;
    if (durable_) {
      StorageEngine& engine = durable_->engine();
      ARROW_ASSIGN_OR_RAISE(epoch_, engine.InstanceId());
      std::vector<StoredObjectInfo> scanned;
      ARROW_RETURN_NOT_OK(engine.Scan(
          [&](StoredObjectInfo info) { scanned.push_back(std::move(info)); }));
      count = static_cast<int64_t>(scanned.size());
      {
        WriterMutexLock lock(&index_mu_);
        for (const auto& info : scanned) {
          index_[info.key.str()] =
              IndexEntry{info.version, info.payload_bytes, info.delta_count, info.native};
        }
      }
      // After the scan (the engine may hold its own locks while visiting): charge the
      // durable tier's LRU what the engine counted for each object.
      if (durable_->limited()) {
        for (const auto& info : scanned) durable_->Stored(info.key, info.version);
      }
      ARROW_ASSIGN_OR_RAISE(auto floors, engine.LoadFloors());
      for (const auto& f : floors) RaiseFloor(f.pattern, f.version);
    }
    // A memory-only store is a new data set at every start (clients must not trust
    // what they cached from a previous one).
    if (epoch_.empty()) epoch_ = NewUuid4();
    spdlog::info("store: {} objects indexed, {} version floors, {}", count,
                 version_floors_size(),
                 durable_ ? "storage " + durable_->Describe()
                          : std::string("storage none (memory tier only)"));
    return arrow::Status::OK();
  }

  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) {
    ARROW_ASSIGN_OR_RAISE(
        auto key, ObjectKey::Make(target.app, target.session,
                                  target.has_object() ? target.object : NewUuid4()));
    while (true) {
      arrow::Status st;
      {
        auto guard = locks_.Exclusive(key.str());
        ARROW_ASSIGN_OR_RAISE(const uint64_t current, CurrentVersionForWrite(key));
        ARROW_ASSIGN_OR_RAISE(const uint64_t version, NextVersion(key, current));
        if (payload.spooled) {
          st = StoreSpooled(key, version, payload.spooled.get());
          if (st.ok()) {
            bytes_written_ += payload.spooled->payload_bytes();
            changes_.Publish({key.str(), version, ChangeKind::kPut});
            return WriteResult{std::move(key), version};
          }
        } else {
          Object::Ptr object = payload.table ? Object::MakeNative(version, *payload.table)
                                             : Object::MakeOpaque(version, payload.data);
          st = Store(key, object, /*append=*/false);
          if (st.ok()) {
            bytes_written_ += object->payload_bytes();
            changes_.Publish({key.str(), version, ChangeKind::kPut});
            return WriteResult{std::move(key), version};
          }
        }
      }
      // Outside the key's lock (eviction takes other keys' locks): make room, try again.
      ARROW_RETURN_NOT_OK(MakeRoom(key, st));
    }
  }

  arrow::Result<std::unique_ptr<UploadSpool>> BeginUpload() {
    if (!durable_) {
      return arrow::Status::NotImplemented(
          "storage none keeps uploads in memory (no spooling)");
    }
    return durable_->engine().BeginUpload();
  }

  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   const std::shared_ptr<arrow::Buffer>& delta) {
    while (true) {
      arrow::Status st;
      {
        auto guard = locks_.Exclusive(key.str());
        auto written = PatchLocked(key, delta, &st);
        if (written.ok() || st.ok()) return written;
      }
      ARROW_RETURN_NOT_OK(MakeRoom(key, st));
    }
  }

  // Patch under the key's writer lock. A failure of the storage write is also put in
  // `*store_status` (so the caller can make room and retry).
  arrow::Result<WriteResult> PatchLocked(const ObjectKey& key,
                                         const std::shared_ptr<arrow::Buffer>& delta,
                                         arrow::Status* store_status) {
    auto loaded = Load(key);
    if (!loaded.ok()) {
      // An evicted object says so; any other missing object is "not found for patch".
      if (loaded.status().IsKeyError() && !RecentlyEvicted(key)) {
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
    if (auto object = memory_.Lookup(key.str())) {
      const auto& table = object->table();
      return table ? table->schema : nullptr;
    }
    ARROW_RETURN_NOT_OK(CheckIndexed(key));
    if (!durable_) return EvictedError(key, TierKind::kMemory);  // raced with eviction
    return durable_->engine().ReadNativeSchema(key);
  }

  arrow::Result<LocalObject> MapLocal(const ObjectKey& key) {
    auto guard = locks_.Shared(key.str());
    ARROW_RETURN_NOT_OK(CheckIndexed(key));
    if (!durable_) {
      return arrow::Status::NotImplemented("storage none keeps no local files of ",
                                           key.str(), " to map");
    }
    StorageEngine& engine = durable_->engine();
    ARROW_ASSIGN_OR_RAISE(auto files, engine.LocalFiles(key));
    LocalObject out{key, files.back().version, false, std::move(files)};
    {
      ReaderMutexLock lock(&index_mu_);
      auto it = index_.find(key.str());
      if (it == index_.end() || it->second.version != out.version) {
        return arrow::Status::IOError("object ", key.str(),
                                      ": its files do not hold its current version");
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto schema, engine.ReadNativeSchema(key));
    out.native = schema != nullptr;
    return out;
  }

  arrow::Result<int64_t> Delete(const KeyPattern& pattern) {
    // Enumerate under the index lock, then take each key's writer lock in turn: a write
    // to a key either completes before its removal or starts after it (then it survives,
    // as a write issued after the DELETE would). Recently evicted keys matching the
    // pattern are deleted too (they say "not found" from now on, not "evicted").
    std::vector<std::string> keys;
    uint64_t floor = 0;
    {
      ReaderMutexLock lock(&index_mu_);
      const std::string& prefix = pattern.key_prefix();
      const bool exact = pattern.kind() == KeyPattern::Kind::kObject;
      for (auto it = index_.lower_bound(prefix);
           it != index_.end() && it->first.starts_with(prefix); ++it) {
        if (exact && it->first != prefix) continue;
        keys.push_back(it->first);
        floor = std::max(floor, it->second.version);
      }
      for (const auto& [k, e] : recent_.WithPrefix(prefix)) {
        if (exact && k != prefix) continue;
        keys.push_back(k);
        floor = std::max(floor, e.version);
      }
    }
    if (pattern.kind() == KeyPattern::Kind::kObject && keys.empty() && durable_) {
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
      bool live = false;
      {
        WriterMutexLock lock(&index_mu_);
        auto it = index_.find(k);
        if (it != index_.end()) {
          version = it->second.version;
          live = true;
        } else if (auto evicted = recent_.Take(k)) {
          version = evicted->version;  // its bytes are already gone
        } else {
          continue;  // deleted concurrently
        }
      }
      if (version > floor)
        ARROW_RETURN_NOT_OK(RecordFloor(k, version));  // patched meanwhile
      // The guarantee DELETE gives: the key's next version is above the one removed
      // (floors may be folded into their app's, never lowered).
      FOC_DCHECK_GE(FloorFor(key), version);
      if (live) {
        if (durable_) {
          ARROW_RETURN_NOT_OK(durable_->engine().Remove(key));
          durable_->Forget(k);
        }
        memory_.Erase(k);
        WriterMutexLock lock(&index_mu_);
        index_.erase(k);
      }
      changes_.Publish({k, version, ChangeKind::kDelete});
      ++removed;
    }
    return removed;
  }

  std::vector<ObjectListing> List() const {
    std::vector<ObjectListing> out;
    ReaderMutexLock lock(&index_mu_);
    out.reserve(index_.size());
    for (const auto& [k, e] : index_) {
      auto key = ObjectKey::Parse(k);
      if (key.ok()) out.push_back(Listing(*std::move(key), e));
    }
    return out;
  }

  arrow::Result<ObjectListing> Lookup(const ObjectKey& key) const {
    ReaderMutexLock lock(&index_mu_);
    auto it = index_.find(key.str());
    if (it != index_.end()) return Listing(key, it->second);
    if (const auto* e = recent_.Find(key.str())) return EvictedError(key, e->tier);
    return arrow::Status::KeyError("object ", key.str(), " not found");
  }

  static ObjectListing Listing(ObjectKey key, const IndexEntry& e) {
    return ObjectListing{std::move(key), e.version, e.payload_bytes, e.delta_count,
                         e.native};
  }

  StoreStats stats() const {
    StoreStats s;
    {
      ReaderMutexLock lock(&index_mu_);
      s.objects = static_cast<int64_t>(index_.size());
    }
    const auto cs = memory_.stats();
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
    if (durable_) s.storage = durable_->engine().Usage();
    return s;
  }

  int64_t index_size() const {
    ReaderMutexLock lock(&index_mu_);
    return static_cast<int64_t>(index_.size());
  }
  int64_t recent_evictions_size() const {
    ReaderMutexLock lock(&index_mu_);
    return static_cast<int64_t>(recent_.size());
  }
  int64_t version_floors_size() const {
    MutexLock lock(&floors_mu_);
    return static_cast<int64_t>(floors_.size());
  }

  const std::string& epoch() const { return epoch_; }
  const StorageEngine* storage() const {
    return durable_ ? &durable_->engine() : nullptr;
  }
  ChangeFeed& changes() { return changes_; }

 private:
  arrow::Status EvictedError(const ObjectKey& key, TierKind tier) const {
    if (tier == TierKind::kDurable) {
      return arrow::Status::KeyError(
          "object ", key.str(), " was evicted from the durable tier (",
          durable_ ? durable_->Kind() : std::string("storage"),
          " storage) to stay within the storage capacity (cache.capacity); write it "
          "again, or configure a larger capacity");
    }
    return arrow::Status::KeyError(
        "object ", key.str(),
        " was evicted from the memory tier under memory pressure (storage: none keeps "
        "objects only in memory); write it again, or configure durable storage or a "
        "larger eviction.max_memory");
  }

  // The version a write continues from: the highest of the key's current version and the
  // version floors covering it (a key deleted and re-created continues above its old
  // versions, also when the new object was placed in the storage directory behind our
  // back and adopted with its file's version).
  arrow::Result<uint64_t> CurrentVersionForWrite(const ObjectKey& key) {
    const uint64_t floor = FloorFor(key);
    {
      ReaderMutexLock lock(&index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end()) return std::max(it->second.version, floor);
    }
    if (durable_) {
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

  // The highest version `key` ever had that is not in the index: floors of DELETEs and
  // of forgotten evictions, and the version of a recent eviction.
  uint64_t FloorFor(const ObjectKey& key) const {
    uint64_t floor = 0;
    {
      ReaderMutexLock lock(&index_mu_);
      if (const auto* e = recent_.Find(key.str())) floor = e->version;
    }
    MutexLock lock(&floors_mu_);
    return std::max(floor, floors_.For(key));
  }

  // A floor for `pattern`: durable first (when there is a durable tier), then in memory.
  arrow::Status RecordFloor(const std::string& pattern, uint64_t version) {
    if (durable_) {
      ARROW_RETURN_NOT_OK(durable_->engine().RecordFloor(VersionFloor{pattern, version}));
    }
    RaiseFloor(pattern, version);
    return arrow::Status::OK();
  }
  void RaiseFloor(const std::string& pattern, uint64_t version) {
    MutexLock lock(&floors_mu_);
    floors_.Raise(pattern, version);
  }

  arrow::Status CheckIndexed(const ObjectKey& key) {
    {
      ReaderMutexLock lock(&index_mu_);
      if (index_.count(key.str())) return arrow::Status::OK();
      if (const auto* e = recent_.Find(key.str())) return EvictedError(key, e->tier);
    }
    if (durable_) return Adopt(key).status();
    return arrow::Status::KeyError("object ", key.str(), " not found");
  }

  bool RecentlyEvicted(const ObjectKey& key) const {
    ReaderMutexLock lock(&index_mu_);
    return recent_.Find(key.str()) != nullptr;
  }

  // Reads an object that exists in storage but not in the index, and indexes it. Caller
  // holds the key's lock (shared or exclusive).
  arrow::Result<Object::Ptr> Adopt(const ObjectKey& key) {
    FOC_DCHECK(locks_.Held(key.str()));
    ARROW_ASSIGN_OR_RAISE(auto object, durable_->engine().Read(key));
    bool inserted = false;
    {
      WriterMutexLock lock(&index_mu_);
      inserted = index_.try_emplace(key.str(), EntryOf(*object)).second;
    }
    if (inserted) {
      durable_->Stored(key, object->version());
      spdlog::info("store: adopted {} found in storage", key.str());
    }
    return object;
  }

  // The object, from memory (pinned) or the durable tier (cached when it fits). Caller
  // holds the key's lock.
  arrow::Result<Object::Ptr> Load(const ObjectKey& key) {
    FOC_DCHECK(locks_.Held(key.str()));
    if (auto object = memory_.Lookup(key.str())) {
      if (durable_) durable_->Touched(key.str());
      return object;
    }
    {
      ReaderMutexLock lock(&index_mu_);
      if (const auto* e = recent_.Find(key.str())) return EvictedError(key, e->tier);
      if (!durable_) {
        if (!index_.count(key.str())) {
          return arrow::Status::KeyError("object ", key.str(), " not found");
        }
        // Indexed but not resident: evicted a moment ago, its report is on the way.
        return EvictedError(key, TierKind::kMemory);
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto object, Adopt(key));
    durable_->Touched(key.str());
    return memory_.Insert(key.str(), std::move(object));
  }

  // After a durable write of `key` failed with `written`: unless it was refused for
  // capacity (nothing written), the write may have landed although it failed (e.g. the
  // directory fsync after the rename): forget what memory knows, so the next access
  // reads the state from storage and the next version is above whatever is there.
  arrow::Status DurableWriteFailed(const ObjectKey& key, arrow::Status written) {
    if (!written.IsCapacityError()) {
      memory_.Erase(key.str());
      durable_->Forget(key.str());
      WriterMutexLock lock(&index_mu_);
      index_.erase(key.str());
    }
    return written;
  }

  // Makes the spooled upload the key's new state at `version`: durable (the only copy
  // written; memory keeps nothing of it, a later GET maps the stored file), then the
  // index. Caller holds the key's writer lock.
  arrow::Status StoreSpooled(const ObjectKey& key, uint64_t version, UploadSpool* spool) {
    if (!durable_) return arrow::Status::Invalid("a spooled upload needs storage");
    arrow::Status written = durable_->engine().PutSpooled(key, version, spool);
    if (!written.ok()) return DurableWriteFailed(key, std::move(written));
    durable_->Stored(key, version);
    memory_.Erase(key.str());  // the previous version, if it was resident
    WriterMutexLock lock(&index_mu_);
    index_[key.str()] = IndexEntry{version, spool->payload_bytes(), 0, false};
    recent_.Take(key.str());  // stored again: no longer "evicted"
    return arrow::Status::OK();
  }

  // Makes `object` the key's new state: durable first, then memory, then the index.
  // Caller holds the key's writer lock.
  arrow::Status Store(const ObjectKey& key, const Object::Ptr& object, bool append) {
    FOC_DCHECK(locks_.Held(key.str()));
    if (!durable_) return StoreInMemoryOnly(key, object);
    StorageEngine& engine = durable_->engine();
    arrow::Status written =
        append ? engine.Append(key, *object) : engine.Put(key, *object);
    if (!written.ok()) return DurableWriteFailed(key, std::move(written));
    durable_->Stored(key, object->version());
    ARROW_RETURN_NOT_OK(memory_.Insert(key.str(), object).status());
    WriterMutexLock lock(&index_mu_);
    IndexEntry& entry = index_[key.str()];
    // Versions of a key only go up (entry.version is 0 for a key new to the index).
    FOC_DCHECK_GT(object->version(), entry.version);
    entry = EntryOf(*object);
    recent_.Take(key.str());  // stored again: no longer "evicted"
    CheckKeyLocked(key.str());
    return arrow::Status::OK();
  }

  arrow::Status StoreInMemoryOnly(const ObjectKey& key, const Object::Ptr& object) {
    // Index first (and out of the recent evictions), so that an eviction racing with the
    // insert sees this version.
    std::optional<IndexEntry> previous;
    std::optional<RecentEvictions::Entry> previously_evicted;
    {
      WriterMutexLock lock(&index_mu_);
      auto it = index_.find(key.str());
      if (it != index_.end()) previous = it->second;
      previously_evicted = recent_.Take(key.str());
      FOC_DCHECK(!previous || object->version() > previous->version);
      FOC_DCHECK(!previously_evicted || object->version() > previously_evicted->version);
      index_[key.str()] = EntryOf(*object);
      CheckKeyLocked(key.str());
    }
    auto inserted = memory_.Insert(key.str(), object);
    if (!inserted.ok()) {
      refused_writes_++;
      WriterMutexLock lock(&index_mu_);
      if (previous) {
        index_[key.str()] = *previous;
      } else {
        index_.erase(key.str());
      }
      if (previously_evicted) ForgetIfNeeded(recent_.Add(key.str(), *previously_evicted));
    }
    return inserted.status();
  }

  // After a write to `key` failed with `failure`: when the durable tier's capacity limit
  // was the reason and evicting others can help, evicts least-recently-used other
  // objects until the engine's shortfall is covered (at least one) and returns OK to
  // retry. Returns `failure` itself otherwise. Holds no key lock when called.
  arrow::Status MakeRoom(const ObjectKey& key, const arrow::Status& failure) {
    if (!durable_) return failure;
    const int64_t needed = durable_->BytesToEvictFor(key.str(), failure);
    if (needed <= 0) return failure;
    int64_t freed = 0;
    int64_t evicted = 0;
    while (freed < needed) {
      auto victim = durable_->TakeOldest(key.str());
      if (!victim) break;
      auto removed = EvictFromDurable(*victim);
      if (!removed.ok()) {
        eviction_log_.Flush(TierKind::kDurable, DurableWhy());
        return removed.status();
      }
      if (*removed) {
        freed += victim->bytes;
        ++evicted;
      }
    }
    eviction_log_.Flush(TierKind::kDurable, DurableWhy());
    return evicted > 0 ? arrow::Status::OK() : failure;
  }

  std::string DurableWhy() const {
    return fmt::format(
        "to stay within the storage capacity of {} bytes (cache.capacity, {}); their "
        "versions are kept as floors",
        durable_->engine().Usage().capacity_bytes, durable_->Describe());
  }

  // Removes one durable victim under its key lock: its version floor first (durable, so
  // a crash after the removal cannot let the version be reused), then its files; then
  // the one handler retires it. False when the key changed meanwhile (written again:
  // it is back in the LRU as most recent; or deleted).
  arrow::Result<bool> EvictFromDurable(const Eviction& victim) {
    ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(victim.key));
    auto guard = locks_.Exclusive(victim.key);
    {
      ReaderMutexLock lock(&index_mu_);
      auto it = index_.find(victim.key);
      if (it == index_.end() || it->second.version != victim.version) return false;
    }
    ARROW_RETURN_NOT_OK(
        durable_->engine().RecordFloor(VersionFloor{victim.key, victim.version}));
    ARROW_RETURN_NOT_OK(durable_->engine().Remove(key));
    OnEvicted(TierKind::kDurable, {victim}, /*end_of_burst=*/false);
    return true;
  }

  // The one eviction handler: every tier reports what it evicted here. Each evicted
  // object whose index entry is still that version leaves the index (and the memory tier)
  // for the recent-evictions set, which keeps GET's "evicted" answer and, with the
  // floors, the key's versions; the set's oldest entry is folded into its app's floor
  // when the set is full. Memory evictions in front of a durable tier lose nothing (the
  // durable copy stays) and are only counted by the cache. A line is logged per burst
  // (EvictionLog). Called without the cache's lock; for the memory tier possibly under
  // another key's writer lock (so it takes no key locks).
  void OnEvicted(TierKind tier, const std::vector<Eviction>& burst, bool end_of_burst) {
    if (tier == TierKind::kMemory && durable_) return;
    int64_t objects = 0;
    int64_t bytes = 0;
    for (const auto& e : burst) {
      {
        WriterMutexLock lock(&index_mu_);
        auto it = index_.find(e.key);
        if (it == index_.end() || it->second.version != e.version) continue;
        index_.erase(it);
        ForgetIfNeeded(recent_.Add(e.key, RecentEvictions::Entry{e.version, tier}));
        CheckKeyLocked(e.key);
      }
      if (tier == TierKind::kDurable) memory_.Erase(e.key);
      ++objects;
      bytes += e.bytes;
    }
    lost_objects_ += objects;
    eviction_log_.Add(tier, objects, bytes);
    if (end_of_burst) {
      eviction_log_.Flush(
          tier, fmt::format("under memory pressure (eviction.max_memory {} bytes); with "
                            "storage: none they are gone",
                            memory_.max_bytes()));
    }
  }

  // Folds the version of an evicted key the recent set forgot into its app's floor: a
  // later write of the key (or any new key of the app) continues above it. In memory
  // only: a durable tier recorded the key's own floor durably when it evicted it.
  void ForgetIfNeeded(const std::optional<RecentEvictions::Forgotten>& forgotten)
      FOC_REQUIRES(index_mu_) {
    if (!forgotten) return;
    const auto slash = forgotten->key.find('/');
    RaiseFloor(forgotten->key.substr(0, slash) + "/*", forgotten->version);
  }

  // The index/tier invariant for one key: a key is live (index_) or recently evicted
  // (recent_), never both.
  void CheckKeyLocked(const std::string& key) const FOC_REQUIRES_SHARED(index_mu_) {
    FOC_DCHECK(!(index_.count(key) > 0 && recent_.Find(key) != nullptr));
    (void)key;
  }

  const StoreOptions options_;
  const std::unique_ptr<DurableTier> durable_;  // null: storage none
  std::string epoch_;

  KeyLocks locks_;
  MemoryTier memory_;

  // Lock order: a key's lock (locks_), then index_mu_, then floors_mu_ (ForgetIfNeeded
  // raises a floor under index_mu_); never floors_mu_ then index_mu_.
  mutable SharedMutex index_mu_;
  // ordered: prefix scans for DELETE. A key is in at most one of index_ and recent_.
  std::map<std::string, IndexEntry> index_ FOC_GUARDED_BY(index_mu_);
  RecentEvictions recent_ FOC_GUARDED_BY(index_mu_);

  mutable Mutex floors_mu_ FOC_ACQUIRED_AFTER(index_mu_);
  VersionFloors floors_ FOC_GUARDED_BY(floors_mu_);

  EvictionLog eviction_log_;
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
arrow::Result<std::unique_ptr<UploadSpool>> ObjectStore::BeginUpload() {
  return impl_->BeginUpload();
}
arrow::Result<WriteResult> ObjectStore::Patch(const ObjectKey& key,
                                              std::shared_ptr<arrow::Buffer> delta) {
  return impl_->Patch(key, delta);
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
const StorageEngine* ObjectStore::storage() const { return impl_->storage(); }
int64_t ObjectStore::index_size() const { return impl_->index_size(); }
int64_t ObjectStore::recent_evictions_size() const {
  return impl_->recent_evictions_size();
}
int64_t ObjectStore::version_floors_size() const { return impl_->version_floors_size(); }
ChangeFeed& ObjectStore::changes() { return impl_->changes(); }
arrow::Result<LocalObject> ObjectStore::MapLocal(const ObjectKey& key) {
  return impl_->MapLocal(key);
}

}  // namespace foc
