// The store's in-memory version floors, bounded (docs/architecture.md, "Tiers").
//
// A floor says "every key this pattern covers continues above version V": DELETE records
// one for its pattern (`<app>/*`, `<app>/<session>` or a full key) at the highest version
// it removed, and an eviction the recent-evictions set forgets raises its app's floor.
// A write continues above the highest floor covering its key (VersionFloors::For), so a
// deleted key's old version is never served again and versions never go backwards.
//
// Bound: at most `max_patterns` session and key floors, plus one floor per app. Keeping
// the guarantee needs no floor to be exact, only high enough, so
//   * a session or key floor at or below a floor that covers it (its app's, or for a key
//     its session's) is redundant and not kept;
//   * beyond `max_patterns`, the oldest session or key floor is folded into its app's
//     floor (the app floor becomes at least as high): the keys it covered still continue
//     above their old versions; the other keys of that app merely jump ahead too.
// The floor log of a durable tier is separate (storage/, recorded before the files are
// removed); these in-memory floors may only be higher than it.
//
// Not thread-safe (the store guards it with its own mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "key/key.h"
#include "store/fifo_positions.h"

namespace foc {

class VersionFloors {
 public:
  /// `max_patterns` (at least 1): session and key floors kept before the oldest is
  /// folded into its app's floor.
  explicit VersionFloors(size_t max_patterns)
      : max_patterns_(max_patterns == 0 ? 1 : max_patterns) {}

  /// Raises the floor of `pattern` (`<app>/*`, `<app>/<session>` or a full key) to at
  /// least `version`. Never lowers any key's floor.
  void Raise(std::string_view pattern, uint64_t version);
  /// The highest floor covering `key` (0 when none).
  uint64_t For(const ObjectKey& key) const;

  /// Floors held: app floors plus session and key floors.
  size_t size() const { return floors_.size(); }
  /// Session and key floors held (at most max_patterns).
  size_t pattern_floors() const { return patterns_; }
  /// Session and key floors folded into their app's floor so far.
  int64_t folded() const { return folded_; }

  /// Checks the bound and the bookkeeping (debug and ASan builds).
  void CheckInvariants() const;

 private:
  struct Slot {
    uint64_t version = 0;
    uint64_t seq = 0;  // position in order_ (session and key floors only)
  };
  static std::string AppFloorOf(std::string_view pattern);
  uint64_t Get(const std::string& pattern) const;

  const size_t max_patterns_;
  std::unordered_map<std::string, Slot> floors_;
  size_t patterns_ = 0;  // session and key floors in floors_
  uint64_t next_seq_ = 0;
  // Session and key floors, oldest first; entries whose seq no longer matches the slot
  // (raised again since) are stale and skipped.
  FifoPositions order_;
  int64_t folded_ = 0;
};

}  // namespace foc
