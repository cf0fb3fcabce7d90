#include "store/version_floors.h"

#include <algorithm>

#include "base/check.h"

namespace foc {
namespace {

bool IsAppFloor(std::string_view pattern) { return pattern.ends_with("/*"); }

}  // namespace

std::string VersionFloors::AppFloorOf(std::string_view pattern) {
  return std::string(pattern.substr(0, pattern.find('/'))) + "/*";
}

uint64_t VersionFloors::Get(const std::string& pattern) const {
  auto it = floors_.find(pattern);
  return it == floors_.end() ? 0 : it->second.version;
}

void VersionFloors::Raise(std::string_view pattern, uint64_t version) {
  if (version == 0) return;
  const std::string app_floor = AppFloorOf(pattern);
  if (IsAppFloor(pattern)) {
    auto& slot = floors_[app_floor];
    slot.version = std::max(slot.version, version);
    return;
  }
  // Redundant when a floor covering it is at least as high.
  if (version <= Get(app_floor)) return;
  const size_t second_slash = pattern.find('/', pattern.find('/') + 1);
  if (second_slash != std::string_view::npos &&
      version <= Get(std::string(pattern.substr(0, second_slash)))) {
    return;
  }
  auto [it, inserted] = floors_.try_emplace(std::string(pattern));
  if (inserted) ++patterns_;
  it->second.version = std::max(it->second.version, version);
  it->second.seq = next_seq_++;
  order_.emplace_back(it->first, it->second.seq);
  // Over the bound: fold the oldest session or key floors into their apps' floors.
  while (patterns_ > max_patterns_ && !order_.empty()) {
    auto [old_pattern, seq] = std::move(order_.front());
    order_.pop_front();
    auto old = floors_.find(old_pattern);
    if (old == floors_.end() || old->second.seq != seq) continue;  // stale
    const uint64_t v = old->second.version;
    floors_.erase(old);
    --patterns_;
    auto& app = floors_[AppFloorOf(old_pattern)];
    app.version = std::max(app.version, v);
    ++folded_;
  }
  // Stale positions (floors raised again) are dropped when they pile up.
  DropStalePositions(&order_, floors_, max_patterns_);
  CheckInvariants();
}

uint64_t VersionFloors::For(const ObjectKey& key) const {
  uint64_t floor = Get(key.str());
  floor = std::max(floor, Get(std::string(key.prefix())));
  floor = std::max(floor, Get(std::string(key.app()) + "/*"));
  return floor;
}

void VersionFloors::CheckInvariants() const {
  FOC_DCHECK_LE(patterns_, max_patterns_);
  FOC_DCHECK_LE(patterns_, floors_.size());
  FOC_DCHECK_LE(order_.size(), 2 * max_patterns_ + 16);
#if FOC_DCHECK_IS_ON
  // The full walk only for small tables (tests); the counts above always.
  if (floors_.size() > 4096) return;
  size_t patterns = 0;
  for (const auto& [p, slot] : floors_) {
    FOC_DCHECK_GT(slot.version, 0u);
    if (!IsAppFloor(p)) ++patterns;
  }
  FOC_DCHECK_EQ(patterns, patterns_);
#endif
}

}  // namespace foc
