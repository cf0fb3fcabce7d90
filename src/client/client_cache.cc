#include "flame_object_cache/client_cache.h"

#include <algorithm>

#include <arrow/util/byte_size.h>

namespace foc {

int64_t ObjectValue::payload_bytes() const {
  if (table) return arrow::util::TotalBufferSize(*table);
  int64_t n = base ? base->size() : 0;
  for (const auto& d : deltas) n += d.data ? d.data->size() : 0;
  return n;
}

ClientCache::ClientCache(int64_t max_bytes, int64_t max_entries)
    // The LRU's 0 is "no bound", as this class's <= 0.
    : lru_(LruCache<std::shared_ptr<const ObjectValue>>::Options{
          std::max<int64_t>(max_bytes, 0), std::max<int64_t>(max_entries, 0)}) {}

std::string ClientCache::Id(std::string_view endpoint, std::string_view key) {
  std::string id;
  id.reserve(endpoint.size() + 1 + key.size());
  id.append(endpoint).push_back('\n');  // neither an endpoint nor a key contains '\n'
  id.append(key);
  return id;
}

std::shared_ptr<const ObjectValue> ClientCache::Lookup(std::string_view endpoint,
                                                       std::string_view key) {
  // The pin is released when `handle` goes: the entry is then the most recently used.
  auto handle = lru_.Lookup(Id(endpoint, key));
  return handle ? handle.value() : nullptr;
}

void ClientCache::Insert(std::shared_ptr<const ObjectValue> value) {
  std::string id = Id(value->endpoint, value->key);
  const int64_t charge = value->payload_bytes();
  if (!lru_.Fits(charge)) {
    lru_.Erase(id);  // would evict everything and still not fit; the older value goes
    return;
  }
  // Evicting never fails (the LRU only refuses when told not to evict).
  (void)lru_.Insert(std::move(id), std::move(value), charge);
}

bool ClientCache::Erase(std::string_view endpoint, std::string_view key) {
  return lru_.Erase(Id(endpoint, key));
}

int64_t ClientCache::ErasePattern(const KeyPattern& pattern) {
  return lru_.EraseIf([&](const std::string&, const auto& value) {
    auto key = ObjectKey::Parse(value->key);
    return key.ok() && pattern.Matches(*key);
  });
}

int64_t ClientCache::EraseOtherEpochs(std::string_view endpoint, std::string_view epoch) {
  return lru_.EraseIf([&](const std::string&, const auto& value) {
    return value->endpoint == endpoint && value->epoch != epoch;
  });
}

}  // namespace foc
