// WATCH on a node tier: the upstream's changes republished into the tier's own change
// feed (store/change_feed.h), so clients of the tier watch the tier.
//
// For every app a tier WATCH names, the tier holds one WATCH subscription on `<app>/*` at
// the upstream (its own thread; at most kMaxApps apps, beyond that the tier refuses the
// WATCH with RESOURCE_EXHAUSTED: watch the upstream). Each change the upstream pushes is
// published to the tier's feed as is (same key, version and kind): the tier never invents
// a version. A tier WATCH is served only once the app's upstream subscription is ready
// (registered at the upstream, so no change committed after the tier's snapshot listing
// is missed); the snapshot itself is the upstream's listing.
//
// Gaps: when an upstream subscription ends (upstream restart, the tier dropped for
// falling behind, network), changes may have been missed, so every subscriber of the
// tier's feed is dropped with `resync` (ChangeFeed::DropAll) and resubscribes naming the
// versions it has, exactly as with a server that dropped it; the app's upstream
// subscription is reopened in the background.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arrow/status.h>

#include "base/mutex.h"
#include "key/key.h"
#include "store/change_feed.h"

namespace foc {

class CacheClient;
class WatchStream;

class TierFeed {
 public:
  static constexpr size_t kMaxApps = 32;

  /// `upstream` must outlive this.
  explicit TierFeed(CacheClient* upstream);
  ~TierFeed();
  TierFeed(const TierFeed&) = delete;
  TierFeed& operator=(const TierFeed&) = delete;

  ChangeFeed* feed() { return &feed_; }
  /// The upstream's epoch as its last WATCH `ready` announced it ("" before any).
  std::string epoch() const;

  /// Makes sure the upstream subscriptions covering `patterns` are ready, waiting up to
  /// `timeout`. UNAVAILABLE (IOError) if the upstream cannot be watched in time,
  /// CapacityError beyond kMaxApps apps.
  arrow::Status Ensure(const std::vector<KeyPattern>& patterns,
                       std::chrono::milliseconds timeout);

 private:
  struct App {
    std::thread thread;
    bool ready = false;
    WatchStream* stream = nullptr;  // live stream, owned by the thread
    std::string error;              // last failure (for messages)
  };
  void Run(std::string name, App* app);

  CacheClient* const upstream_;
  ChangeFeed feed_;
  mutable Mutex mu_;
  CondVar cv_{&mu_};
  std::string epoch_ FOC_GUARDED_BY(mu_);
  bool stop_ FOC_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<App>> apps_ FOC_GUARDED_BY(mu_);
};

}  // namespace foc
