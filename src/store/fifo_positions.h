// The oldest-first order of a bounded map whose entries can be renewed or removed out of
// order (RecentEvictions, VersionFloors): a deque of (key, seq) positions, where each
// entry's slot records the seq of its latest position. A position whose seq no longer
// matches its slot (the entry was renewed or removed since) is stale and skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace foc {

using FifoPositions = std::deque<std::pair<std::string, uint64_t>>;

/// Drops the stale positions once they pile up (more than twice `capacity` plus 16), so
/// the order stays within a constant factor of the live entries. `slots` maps a key to a
/// slot with a `seq` member.
template <typename Map>
void DropStalePositions(FifoPositions* order, const Map& slots, size_t capacity) {
  if (order->size() <= 2 * capacity + 16) return;
  FifoPositions live;
  for (auto& [key, seq] : *order) {
    auto it = slots.find(key);
    if (it != slots.end() && it->second.seq == seq)
      live.emplace_back(std::move(key), seq);
  }
  *order = std::move(live);
}

}  // namespace foc
