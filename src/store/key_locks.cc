#include "store/key_locks.h"

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
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = slots_[key];
  if (!slot) slot = std::make_unique<Slot>();
  slot->refs++;
  return &slot->mu;
}

void KeyLocks::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (--it->second->refs == 0) slots_.erase(it);
}

size_t KeyLocks::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
}

}  // namespace foc
