// Per-key reader/writer locks whose table shrinks back as keys go idle.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "base/mutex.h"

namespace foc {

/// Hands out per-key std::shared_mutex locks. A slot exists only while someone holds or
/// waits for it, so the table never grows with the number of keys ever seen (upstream's
/// does). The per-key locks are plain std::shared_mutex: which one a caller holds is
/// decided at run time, so clang's analysis cannot name it; the store states it with
/// FOC_DCHECK(locks_.Held(key)) instead.
class KeyLocks {
 public:
  /// Holds one key's lock (exclusive or shared) until destroyed.
  class Guard {
   public:
    Guard(KeyLocks* table, std::string key, bool exclusive);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    KeyLocks* table_;
    std::string key_;
    bool exclusive_;
    std::shared_mutex* mu_;
  };

  Guard Exclusive(const std::string& key) { return Guard(this, key, true); }
  Guard Shared(const std::string& key) { return Guard(this, key, false); }

  /// Number of slots in use (for tests).
  size_t size() const;
  /// True while some Guard holds or waits for `key`'s lock (for DCHECKs: a caller that
  /// must hold the key's lock can at least tell that nobody does).
  bool Held(const std::string& key) const;

 private:
  struct Slot {
    std::shared_mutex mu;
    int refs = 0;
  };
  std::shared_mutex* Acquire(const std::string& key);
  void Release(const std::string& key);

  mutable Mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Slot>> slots_ FOC_GUARDED_BY(mu_);
};

}  // namespace foc
