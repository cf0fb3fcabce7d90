// Per-key reader/writer locks whose table shrinks back as keys go idle.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace foc {

/// Hands out per-key std::shared_mutex locks. A slot exists only while someone holds or
/// waits for it, so the table never grows with the number of keys ever seen (upstream's
/// does).
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

 private:
  struct Slot {
    std::shared_mutex mu;
    int refs = 0;
  };
  std::shared_mutex* Acquire(const std::string& key);
  void Release(const std::string& key);

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Slot>> slots_;
};

}  // namespace foc
