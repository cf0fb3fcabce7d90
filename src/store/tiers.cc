#include "store/tiers.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/check.h"
#include "storage/storage_full.h"

namespace foc {

const char* TierName(TierKind tier) {
  return tier == TierKind::kMemory ? "memory" : "durable";
}

// ---------------------------------------------------------------------------------------
// MemoryTier

MemoryTier::MemoryTier(int64_t max_bytes, int64_t max_objects, bool sole_copy,
                       bool refuse_when_full, EvictionHandler on_evict)
    : sole_copy_(sole_copy),
      refuse_when_full_(sole_copy && refuse_when_full),
      cache_(
          Cache::Options{max_bytes, max_objects},
          [on_evict = std::move(on_evict)](std::vector<Cache::Evicted>& evicted) {
            std::vector<Eviction> burst;
            burst.reserve(evicted.size());
            for (auto& e : evicted) {
              burst.push_back(Eviction{std::move(e.key), e.value->version(), e.charge});
            }
            on_evict(TierKind::kMemory, std::move(burst));
          }) {}

namespace {
// Keeps a memory pin alive for as long as the returned object pointer lives.
template <typename Handle>
struct PinnedObject {
  Handle handle;
  Object::Ptr object;
};
}  // namespace

Object::Ptr MemoryTier::Pin(Cache::Handle handle) {
  auto holder = std::make_shared<PinnedObject<Cache::Handle>>();
  holder->object = handle.value();
  holder->handle = std::move(handle);
  const Object* raw = holder->object.get();
  return Object::Ptr(std::move(holder), raw);
}

Object::Ptr MemoryTier::Lookup(const std::string& key) {
  if (auto handle = cache_.Lookup(key)) return Pin(std::move(handle));
  return nullptr;
}

arrow::Result<Object::Ptr> MemoryTier::Insert(const std::string& key,
                                              Object::Ptr object) {
  const int64_t charge = object->memory_charge();
  if (!cache_.Fits(charge)) {
    if (!sole_copy_) {
      cache_.Erase(key);  // served from the durable tier, not cached
      return object;
    }
    return arrow::Status::CapacityError(
        "object ", key, " needs ", charge,
        " bytes of memory, more than eviction.max_memory (", max_bytes(),
        " bytes); with storage: none it cannot be kept");
  }
  auto inserted = cache_.Insert(key, std::move(object), charge, !refuse_when_full_);
  if (!inserted.ok()) {
    return inserted.status().WithMessage(
        "cannot store ", key, ": ", inserted.status().message(),
        " (storage: none; eviction refuses writes when memory is full)");
  }
  return Pin(*std::move(inserted));
}

void MemoryTier::Erase(const std::string& key) { cache_.Erase(key); }

// ---------------------------------------------------------------------------------------
// DurableTier

DurableTier::DurableTier(std::unique_ptr<StorageEngine> engine)
    : engine_(std::move(engine)),
      limited_(engine_->Usage().capacity_bytes > 0),
      // Unlimited: the engine enforces the capacity; the LRU only orders and charges.
      lru_(LruCache<uint64_t>::Options{0, 0}) {}

void DurableTier::Stored(const ObjectKey& key, uint64_t version) {
  if (!limited_) return;
  const int64_t bytes = engine_->StoredBytes(key);
  if (bytes <= 0) {
    lru_.Erase(key.str());
    return;
  }
  (void)lru_.Insert(key.str(), version, bytes);  // unlimited: never fails
}

void DurableTier::Touched(const std::string& key) {
  if (limited_) lru_.Lookup(key);  // the pin is released at once: most recently used
}

void DurableTier::Forget(const std::string& key) {
  if (limited_) lru_.Erase(key);
}

int64_t DurableTier::BytesToEvictFor(const std::string& key,
                                     const arrow::Status& failure) const {
  if (!limited_ || !IsCapacityLimit(failure)) return 0;
  const int64_t needed = std::max<int64_t>(BytesToFree(failure), 1);
  // What evicting every other object would free (the key's own bytes are already
  // accounted for by the engine: released by a replacing write, kept by an append).
  const int64_t others = lru_.stats().bytes - lru_.ChargeOf(key);
  return needed <= others ? needed : 0;
}

std::optional<Eviction> DurableTier::TakeOldest(const std::string& except) {
  auto oldest = lru_.EvictOldest(except);
  if (!oldest) return std::nullopt;
  return Eviction{std::move(oldest->key), oldest->value, oldest->charge};
}

std::string DurableTier::Kind() const {
  std::string d = engine_->Describe();
  return d.substr(0, d.find(':'));
}

// ---------------------------------------------------------------------------------------
// RecentEvictions

std::optional<RecentEvictions::Forgotten> RecentEvictions::Add(const std::string& key,
                                                               Entry entry) {
  const uint64_t seq = next_seq_++;
  entries_[key] = Slot{entry, seq};
  order_.emplace_back(key, seq);
  std::optional<Forgotten> forgotten;
  while (entries_.size() > capacity_ && !order_.empty()) {
    auto [old_key, old_seq] = std::move(order_.front());
    order_.pop_front();
    auto it = entries_.find(old_key);
    if (it == entries_.end() || it->second.seq != old_seq) continue;  // stale
    // At most one is forgotten per Add (one was added); keep the highest version if a
    // stale-skipping loop ever found two.
    if (!forgotten || forgotten->version < it->second.entry.version) {
      forgotten = Forgotten{old_key, it->second.entry.version};
    }
    entries_.erase(it);
  }
  // Stale positions (keys written again or deleted) are dropped when they pile up.
  DropStalePositions(&order_, entries_, capacity_);
  // Bounded: the set never holds more than its capacity, and every entry has a position.
  FOC_DCHECK_LE(entries_.size(), capacity_);
  FOC_DCHECK_LE(entries_.size(), order_.size());
  return forgotten;
}

std::optional<RecentEvictions::Entry> RecentEvictions::Take(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  Entry e = it->second.entry;
  entries_.erase(it);
  return e;
}

const RecentEvictions::Entry* RecentEvictions::Find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second.entry;
}

std::vector<std::pair<std::string, RecentEvictions::Entry>> RecentEvictions::WithPrefix(
    const std::string& prefix) const {
  std::vector<std::pair<std::string, Entry>> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.starts_with(prefix); ++it) {
    out.emplace_back(it->first, it->second.entry);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// EvictionLog

EvictionLog::~EvictionLog() {
  MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  for (int t = 0; t < 2; ++t) {
    if (pending_[t].objects > 0) LogLocked(static_cast<TierKind>(t), &pending_[t], now);
  }
}

void EvictionLog::Add(TierKind tier, int64_t objects, int64_t bytes) {
  if (objects <= 0) return;
  MutexLock lock(&mu_);
  Pending& p = pending_[static_cast<int>(tier)];
  if (p.objects == 0) p.since = std::chrono::steady_clock::now();
  p.objects += objects;
  p.bytes += bytes;
}

void EvictionLog::Flush(TierKind tier, const std::string& why) {
  MutexLock lock(&mu_);
  Pending& p = pending_[static_cast<int>(tier)];
  p.why = why;
  if (p.objects == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (p.last_line && now - *p.last_line < interval_) return;
  LogLocked(tier, &p, now);
}

void EvictionLog::LogLocked(TierKind tier, Pending* p,
                            std::chrono::steady_clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - p->since).count();
  spdlog::warn(
      "store: evicted {} object{} ({} bytes) from the {} tier in the last {:.1f} s {}",
      p->objects, p->objects == 1 ? "" : "s", p->bytes, TierName(tier), seconds, p->why);
  p->objects = 0;
  p->bytes = 0;
  p->last_line = now;
}

}  // namespace foc
