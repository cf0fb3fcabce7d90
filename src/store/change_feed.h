// The change feed: every committed mutation of the object store, in commit order per key,
// fanned out to subscribers with bounded queues.
//
// The store publishes one Change per committed write (PUT, PATCH) and per deleted key,
// after the new state is durable and visible (a GET issued after the Change is seen
// returns that version or a later one) and while it still holds the key's writer lock,
// so the Changes of one key are published in commit order. Changes of different keys
// carry no mutual order.
//
// Not published (documented in docs/protocol.md, "WATCH"): evictions (the version did
// not change, a GET says it was evicted) and objects adopted from the storage directory
// (written there behind the server's back).
//
// Bounded: a subscriber's queue holds at most `max_queue` Changes. A Publish that finds
// the queue full does not block and does not grow the queue: the subscriber is dropped
// (its queue freed, Next() reports CapacityError "fell behind ... resync"), never left
// silently missing versions. The subscriber then resubscribes naming the versions it has
// and receives the current version of each matching key (the only coalescing there is).
//
// This is the one server-side subscription mechanism: WATCH (src/flight/watch.cc) reads
// it, and later cluster invalidation and the node tier can feed from the same interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "base/mutex.h"
#include "key/key.h"

namespace foc {

/// What a committed mutation did to a key.
enum class ChangeKind {
  kPut,     ///< created or replaced (PUT)
  kPatch,   ///< a delta appended (PATCH)
  kDelete,  ///< removed (DELETE); `version` is the last version it had
};

/// `put`, `patch` or `delete` (the wire names).
std::string_view ChangeKindName(ChangeKind kind);
/// Inverse of ChangeKindName; Invalid for anything else.
arrow::Result<ChangeKind> ParseChangeKind(std::string_view name);

/// One committed mutation of one key.
struct Change {
  std::string key;       ///< full key `<app>/<session>/<object>`
  uint64_t version = 0;  ///< the new version (kDelete: the version that was deleted)
  ChangeKind kind = ChangeKind::kPut;

  bool operator==(const Change&) const = default;
};

/// Counters of a feed.
struct ChangeFeedStats {
  int64_t subscribers = 0;  ///< subscriptions alive now
  int64_t published = 0;    ///< Changes published (each counted once)
  int64_t delivered = 0;    ///< Changes queued to subscribers (one per match)
  int64_t dropped = 0;      ///< subscribers dropped because their queue overflowed
};

class ChangeFeed;

/// One subscriber: the patterns it watches and its bounded queue. Unsubscribes when
/// destroyed. Thread-safe: one thread reads (Next) while the store publishes.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  /// Waits up to `timeout` for Changes and moves every queued one into `*out` (appended,
  /// in publish order). OK with nothing added on timeout. CapacityError once the
  /// subscriber has been dropped (the queue overflowed: Changes were lost, resync);
  /// Cancelled once the feed was closed (server shutting down). Both are final.
  arrow::Status Next(std::chrono::milliseconds timeout, std::vector<Change>* out);

  /// The patterns given at Subscribe.
  const std::vector<KeyPattern>& patterns() const { return patterns_; }
  /// True if any pattern matches `key`.
  bool Matches(const ObjectKey& key) const;

 private:
  friend class ChangeFeed;
  struct Core;
  Subscription(std::shared_ptr<Core> core, std::vector<KeyPattern> patterns,
               size_t max_queue);
  // Called with the feed's lock held.
  void Offer(const Change& change, int64_t* delivered, int64_t* dropped);
  void End(arrow::Status final_status);

  std::shared_ptr<Core> feed_;
  const std::vector<KeyPattern> patterns_;
  const size_t max_queue_;
  Mutex mu_;  // acquired after the feed's (Core::mu), never before
  CondVar cv_{&mu_};
  std::deque<Change> queue_ FOC_GUARDED_BY(mu_);
  arrow::Status final_ FOC_GUARDED_BY(mu_);  // not OK once dropped or closed
};

/// The fan-out point. Publish never blocks on a subscriber.
class ChangeFeed {
 public:
  ChangeFeed();
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  /// Registers a subscriber of `patterns` (at least one) with a queue of `max_queue`
  /// Changes (at least 1). Changes published after this returns are delivered to it.
  /// Cancelled after Close().
  arrow::Result<std::unique_ptr<Subscription>> Subscribe(std::vector<KeyPattern> patterns,
                                                         size_t max_queue);
  /// Offers `change` to every matching subscriber. Cheap when nobody subscribes.
  void Publish(const Change& change);
  /// Ends every subscription (Next() → Cancelled) and refuses new ones.
  void Close();
  /// Drops every current subscriber as if its queue had overflowed (Next() →
  /// CapacityError
  /// "... resync") and keeps accepting new ones: for a feed whose source had a gap
  /// (cluster mode's etcd watch restarted), so no subscriber silently misses a change.
  void DropAll(const std::string& reason);

  ChangeFeedStats stats() const;

 private:
  std::shared_ptr<Subscription::Core> core_;
};

}  // namespace foc
