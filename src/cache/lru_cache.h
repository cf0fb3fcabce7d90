// A byte-charged LRU cache with pinned entries, in the manner of LevelDB's util/cache.cc.
//
// Invariants (all under mu_):
//   * Every entry is in exactly one of three states:
//       - in the table and on lru_   : cached and not pinned (refs == 0);
//       - in the table and on in_use_: cached and pinned by >= 1 Handle (refs >= 1);
//       - out of the table           : erased or replaced while pinned; it lives only for
//       its
//                                      handles and is freed when the last one is
//                                      released.
//   * usage_ is the sum of charges of all live entries, including detached pinned ones:
//   memory
//     held by a reader is counted until the reader lets go (stats().bytes). detached_ is
//     the part of usage_ held by detached entries.
//   * Limits apply to the entries in the table (usage_ - detached_ and table_.size()):
//   memory
//     pinned by readers of a replaced or erased value is freed when they finish, so
//     evicting other entries to pay for it would only lose data (e.g. a PATCH replacing
//     an object it still holds pinned must not evict the new version).
//   * Only entries on lru_ are evicted, oldest first, one at a time, and only while the
//   cache
//     is over a limit: eviction removes exactly what is needed and never an entry in use.
//   * An entry is never evicted by its own insertion: after an insert the new entry is
//     present (pinned by the returned handle) even if it alone exceeds the limit; callers
//     that must not cache oversize values check Fits() first.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "base/check.h"
#include "base/mutex.h"

namespace foc {

/// Counters of an LruCache.
struct LruCacheStats {
  int64_t bytes = 0;           ///< charges of all live entries (cached or pinned)
  int64_t entries = 0;         ///< entries in the table
  int64_t pinned_entries = 0;  ///< entries pinned by a handle (in the table)
  int64_t evictions = 0;       ///< entries evicted for space since creation
  int64_t evicted_bytes = 0;
};

template <typename V>
class LruCache {
 public:
  struct Options {
    int64_t max_bytes = 0;    ///< 0: unlimited
    int64_t max_entries = 0;  ///< 0: unlimited
  };
  /// One entry evicted for space.
  struct Evicted {
    std::string key;
    V value;
    int64_t charge = 0;
  };
  /// Called (under no cache lock) once per eviction burst — everything one Insert or
  /// Release evicted — with the entries oldest first; never with an empty list.
  using EvictCallback = std::function<void(std::vector<Evicted>& evicted)>;

 private:
  struct Entry {
    std::string key;
    V value;
    int64_t charge;
    int refs = 0;
    bool in_table = true;
    typename std::list<Entry*>::iterator pos;  // position in lru_ or in_use_
  };

 public:
  /// A pin on one entry; the entry is not evicted (nor its charge released) while a
  /// Handle to it is alive. Movable, not copyable.
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& o) noexcept : cache_(o.cache_), entry_(o.entry_) {
      o.cache_ = nullptr;
      o.entry_ = nullptr;
    }
    Handle& operator=(Handle&& o) noexcept {
      if (this != &o) {
        Reset();
        std::swap(cache_, o.cache_);
        std::swap(entry_, o.entry_);
      }
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { Reset(); }

    explicit operator bool() const { return entry_ != nullptr; }
    const V& value() const { return entry_->value; }
    const std::string& key() const { return entry_->key; }
    int64_t charge() const { return entry_->charge; }
    void Reset() {
      if (entry_) cache_->Release(entry_);
      cache_ = nullptr;
      entry_ = nullptr;
    }

   private:
    friend class LruCache;
    Handle(LruCache* cache, Entry* entry) : cache_(cache), entry_(entry) {}
    LruCache* cache_ = nullptr;
    Entry* entry_ = nullptr;
  };

  explicit LruCache(Options options, EvictCallback on_evict = {})
      : options_(options), on_evict_(std::move(on_evict)) {}
  ~LruCache() {
    // All handles must be released before the cache is destroyed.
    for (auto& [k, e] : table_) delete e;
  }
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  /// Whether a value of `charge` bytes could ever be cached (is within max_bytes).
  bool Fits(int64_t charge) const {
    return options_.max_bytes == 0 || charge <= options_.max_bytes;
  }

  /// Inserts or replaces `key` and returns a pin on the new entry. Evicts least recently
  /// used unpinned entries while over a limit. With `allow_evict` false, fails with
  /// CapacityError instead when the insert would need to evict anything (memory-only
  /// storage in "refuse" mode), leaving the cache unchanged.
  arrow::Result<Handle> Insert(std::string key, V value, int64_t charge,
                               bool allow_evict = true) {
    std::vector<Evicted> evicted;
    Handle handle;
    {
      MutexLock lock(&mu_);
      auto it = table_.find(key);
      const int64_t replaced = it == table_.end() ? 0 : it->second->charge;
      const int64_t replaced_entries = it == table_.end() ? 0 : 1;
      if (!allow_evict) {
        const bool bytes_ok =
            options_.max_bytes == 0 ||
            usage_ - detached_ - replaced + charge <= options_.max_bytes;
        const bool count_ok =
            options_.max_entries == 0 ||
            static_cast<int64_t>(table_.size()) - replaced_entries + 1 <=
                options_.max_entries;
        if (!bytes_ok || !count_ok) {
          // In this layer's own terms (Options::max_bytes / max_entries); the layers
          // above name the configuration key when they pass the message on.
          return arrow::Status::CapacityError(
              "memory limit reached: storing ", charge,
              " bytes would exceed the cache's ",
              bytes_ok ? "entry limit (" : "byte limit (", usage_ - detached_, " of ",
              options_.max_bytes, " bytes and ", table_.size(), " of ",
              options_.max_entries, " entries in use)");
        }
      }
      if (it != table_.end()) Detach(it->second);
      auto* e = new Entry{key, std::move(value), charge, 0, true, {}};
      e->refs = 1;  // the returned handle
      e->pos = in_use_.insert(in_use_.end(), e);
      table_.emplace(std::move(key), e);
      usage_ += charge;
      handle = Handle(this, e);
      EvictLocked(&evicted);
    }
    if (!evicted.empty()) on_evict_(evicted);
    return handle;
  }

  /// Looks `key` up and pins it (most recently used); an empty Handle when absent.
  Handle Lookup(const std::string& key) {
    MutexLock lock(&mu_);
    auto it = table_.find(key);
    if (it == table_.end()) return Handle();
    Entry* e = it->second;
    if (e->refs == 0) {
      lru_.erase(e->pos);
      e->pos = in_use_.insert(in_use_.end(), e);
    }
    e->refs++;
    CheckInvariantsLocked();
    return Handle(this, e);
  }

  /// Removes `key`; its memory is released when the last handle to it goes. True if it
  /// was in the table.
  bool Erase(const std::string& key) {
    MutexLock lock(&mu_);
    auto it = table_.find(key);
    const bool found = it != table_.end();
    if (found) Detach(it->second);
    CheckInvariantsLocked();
    return found;
  }

  /// Removes every entry for which `matches(key, value)` is true (called under the
  /// cache's lock: it must not call back into the cache); returns how many. Not counted
  /// as evictions.
  int64_t EraseIf(
      const std::function<bool(const std::string& key, const V& value)>& matches) {
    MutexLock lock(&mu_);
    std::vector<Entry*> victims;
    for (const auto& [key, e] : table_) {
      if (matches(key, e->value)) victims.push_back(e);
    }
    for (Entry* e : victims) Detach(e);
    CheckInvariantsLocked();
    return static_cast<int64_t>(victims.size());
  }

  /// The charge of `key` (0 when absent), without touching its recency.
  int64_t ChargeOf(const std::string& key) const {
    MutexLock lock(&mu_);
    auto it = table_.find(key);
    return it == table_.end() ? 0 : it->second->charge;
  }

  /// Evicts the least recently used unpinned entry other than `except` (counted as an
  /// eviction, not reported to the callback) and returns it; nullopt when there is none.
  /// For callers that decide themselves when to evict (the store's durable tier, whose
  /// evictions must happen under other locks than the cache's).
  std::optional<Evicted> EvictOldest(const std::string& except) {
    MutexLock lock(&mu_);
    for (Entry* e : lru_) {
      if (e->key == except) continue;
      Evicted out{e->key, e->value, e->charge};
      stats_.evictions++;
      stats_.evicted_bytes += e->charge;
      Detach(e);
      CheckInvariantsLocked();
      return out;
    }
    return std::nullopt;
  }

  LruCacheStats stats() const {
    MutexLock lock(&mu_);
    LruCacheStats s = stats_;
    s.bytes = usage_;
    s.entries = static_cast<int64_t>(table_.size());
    s.pinned_entries = static_cast<int64_t>(in_use_.size());
    return s;
  }
  const Options& options() const { return options_; }

  /// Checks every invariant of the header comment now (debug and ASan builds; a no-op in
  /// release builds). Tests call it after sequences of operations.
  void CheckInvariants() const {
    MutexLock lock(&mu_);
    CheckInvariantsLocked(/*full=*/true);
  }

 private:
  // The invariants of the header comment, as code (on in debug and ASan builds,
  // base/check.h). The O(1) ones run on every mutation; the walk over all entries runs
  // on every 64th (and on every call of CheckInvariants()), so that debug builds stay
  // usable with large caches.
  void CheckInvariantsLocked(bool full = false) const FOC_REQUIRES(mu_) {
#if FOC_DCHECK_IS_ON
    FOC_DCHECK_EQ(lru_.size() + in_use_.size(), table_.size());
    FOC_DCHECK_GE(detached_, 0);
    FOC_DCHECK_LE(detached_, usage_);
    if (!full && ++mutations_ % 64 != 0) return;
    int64_t cached = 0;
    for (const auto& [key, e] : table_) {
      FOC_DCHECK(e->in_table);
      FOC_DCHECK_EQ(e->key, key);
      FOC_DCHECK_GE(e->charge, 0);
      FOC_DCHECK_GE(e->refs, 0);
      cached += e->charge;
    }
    for (const Entry* e : lru_) FOC_DCHECK_EQ(e->refs, 0);
    for (const Entry* e : in_use_) FOC_DCHECK_GT(e->refs, 0);
    // usage_ is the sum of the charges of all live entries: those in the table and the
    // detached ones still pinned (detached_).
    FOC_DCHECK_EQ(usage_, cached + detached_);
#else
    (void)full;
#endif
  }

  bool OverLimit() const FOC_REQUIRES(mu_) {
    return (options_.max_bytes > 0 && usage_ - detached_ > options_.max_bytes) ||
           (options_.max_entries > 0 &&
            static_cast<int64_t>(table_.size()) > options_.max_entries);
  }

  // Evicts unpinned entries, oldest first, while over a limit; collects them for
  // on_evict_.
  void EvictLocked(std::vector<Evicted>* evicted) FOC_REQUIRES(mu_) {
    while (OverLimit() && !lru_.empty()) {
      Entry* victim = lru_.front();
      // Only unpinned entries are on lru_: a pinned entry is never evicted.
      FOC_DCHECK_EQ(victim->refs, 0);
      FOC_DCHECK(victim->in_table);
      stats_.evictions++;
      stats_.evicted_bytes += victim->charge;
      if (on_evict_)
        evicted->push_back(Evicted{victim->key, victim->value, victim->charge});
      Detach(victim);
    }
    // Eviction stops exactly when the table is within its limits, or when everything
    // left is pinned.
    FOC_DCHECK(!OverLimit() || lru_.empty());
    CheckInvariantsLocked();
  }

  // Takes `e` out of the table; frees it now if unpinned, else when its last handle goes.
  void Detach(Entry* e) FOC_REQUIRES(mu_) {
    FOC_DCHECK(e->in_table);
    table_.erase(e->key);
    e->in_table = false;
    if (e->refs == 0) {
      lru_.erase(e->pos);
      usage_ -= e->charge;
      delete e;
    } else {
      in_use_.erase(e->pos);
      detached_ += e->charge;
    }
  }

  void Release(Entry* e) {
    std::vector<Evicted> evicted;
    {
      MutexLock lock(&mu_);
      FOC_DCHECK_GT(e->refs, 0);  // a Handle releases its pin once
      if (--e->refs > 0) return;
      if (!e->in_table) {
        usage_ -= e->charge;
        detached_ -= e->charge;
        FOC_DCHECK_GE(detached_, 0);
        delete e;
        return;
      }
      in_use_.erase(e->pos);
      e->pos = lru_.insert(lru_.end(), e);
      // A pinned entry may have kept the cache over its limit; settle now.
      EvictLocked(&evicted);
    }
    if (!evicted.empty()) on_evict_(evicted);
  }

  const Options options_;
  const EvictCallback on_evict_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry*> table_ FOC_GUARDED_BY(mu_);
  std::list<Entry*> lru_ FOC_GUARDED_BY(mu_);     // unpinned, oldest first
  std::list<Entry*> in_use_ FOC_GUARDED_BY(mu_);  // pinned
  int64_t usage_ FOC_GUARDED_BY(mu_) = 0;
  int64_t detached_ FOC_GUARDED_BY(mu_) = 0;  // charges of detached entries still pinned
  LruCacheStats stats_ FOC_GUARDED_BY(mu_);
  mutable int64_t mutations_ FOC_GUARDED_BY(mu_) = 0;  // paces the full invariant check
};

}  // namespace foc
