#include "flame_object_cache/client_cache.h"

#include <arrow/util/byte_size.h>

namespace foc {

int64_t ObjectValue::payload_bytes() const {
  if (table) return arrow::util::TotalBufferSize(*table);
  int64_t n = base ? base->size() : 0;
  for (const auto& d : deltas) n += d.data ? d.data->size() : 0;
  return n;
}

ClientCache::ClientCache(int64_t max_bytes, int64_t max_entries)
    : max_bytes_(max_bytes), max_entries_(max_entries) {}

std::string ClientCache::Id(std::string_view endpoint, std::string_view key) {
  std::string id;
  id.reserve(endpoint.size() + 1 + key.size());
  id.append(endpoint).push_back('\n');  // neither an endpoint nor a key contains '\n'
  id.append(key);
  return id;
}

std::shared_ptr<const ObjectValue> ClientCache::Lookup(std::string_view endpoint,
                                                       std::string_view key) {
  auto it = index_.find(Id(endpoint, key));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void ClientCache::Insert(std::shared_ptr<const ObjectValue> value) {
  std::string id = Id(value->endpoint, value->key);
  if (auto it = index_.find(id); it != index_.end()) Remove(it->second);
  const int64_t charge = value->payload_bytes();
  if (max_bytes_ > 0 && charge > max_bytes_)
    return;  // would evict everything and still not fit
  lru_.push_front(Node{id, std::move(value), charge});
  index_.emplace(std::move(id), lru_.begin());
  bytes_ += charge;
  EvictToBounds();
}

bool ClientCache::Erase(std::string_view endpoint, std::string_view key) {
  auto it = index_.find(Id(endpoint, key));
  if (it == index_.end()) return false;
  Remove(it->second);
  return true;
}

int64_t ClientCache::ErasePattern(const KeyPattern& pattern) {
  int64_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    auto key = ObjectKey::Parse(it->value->key);
    if (key.ok() && pattern.Matches(*key)) {
      Remove(it);
      ++n;
    }
    it = next;
  }
  return n;
}

int64_t ClientCache::EraseOtherEpochs(std::string_view endpoint, std::string_view epoch) {
  int64_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->value->endpoint == endpoint && it->value->epoch != epoch) {
      Remove(it);
      ++n;
    }
    it = next;
  }
  return n;
}

void ClientCache::Remove(List::iterator it) {
  bytes_ -= it->charge;
  index_.erase(it->id);
  lru_.erase(it);
}

void ClientCache::EvictToBounds() {
  while (!lru_.empty() && ((max_bytes_ > 0 && bytes_ > max_bytes_) ||
                           (max_entries_ > 0 && entries() > max_entries_))) {
    Remove(std::prev(lru_.end()));
    ++evictions_;
  }
}

}  // namespace foc
