#include "store/key_locks.h"

#include "base/check.h"

namespace foc {

KeyLocks::Guard::Guard(KeyLocks* table, std::string key, bool exclusive)
    : table_(table),
      key_(std::move(key)),
      exclusive_(exclusive),
      mu_(table->Acquire(key_)) {
  if (exclusive_) {
    mu_->lock();
  } else {
    mu_->lock_shared();
  }
}

KeyLocks::Guard::~Guard() {
  if (exclusive_) {
    mu_->unlock();
  } else {
    mu_->unlock_shared();
  }
  table_->Release(key_);
}

std::shared_mutex* KeyLocks::Acquire(const std::string& key) {
  MutexLock lock(&mu_);
  auto& slot = slots_[key];
  if (!slot) slot = std::make_unique<Slot>();
  slot->refs++;
  return &slot->mu;
}

void KeyLocks::Release(const std::string& key) {
  MutexLock lock(&mu_);
  auto it = slots_.find(key);
  // Every Release pairs with the Acquire that created or shared the slot.
  FOC_DCHECK(it != slots_.end());
  FOC_DCHECK_GT(it->second->refs, 0);
  if (--it->second->refs == 0) slots_.erase(it);
}

bool KeyLocks::Held(const std::string& key) const {
  MutexLock lock(&mu_);
  auto it = slots_.find(key);
  return it != slots_.end() && it->second->refs > 0;
}

size_t KeyLocks::size() const {
  MutexLock lock(&mu_);
  return slots_.size();
}

}  // namespace foc
