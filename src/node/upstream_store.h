// The node-local tier's store: a Store (store/store.h) whose version authority is another
// flame-object-cache server, the upstream (`cache.upstream`, docs/node-tier.md).
//
// Guarantees:
//   * Never invents a version. Every write (PUT, PATCH, DELETE) is forwarded to the
//     upstream and acknowledged only after the upstream acknowledged it, with the
//     upstream's version; the tier keeps nothing a crash could lose.
//   * Reads are the upstream's versions: a get is answered from the tier's copy (a
//     CacheClient's version-checked cache, bounded by `cache_max_bytes`) when the
//     upstream says "not modified" or only deltas are new, and in full otherwise.
//     While the tier's WATCH subscription to the upstream is healthy (every app the tier
//     has served, up to 64), a hit costs no upstream round trip and is stale at most by
//     the push delay (docs/node-tier.md, "Staleness"); otherwise each get makes one
//     conditional round trip.
//   * A write through the tier drops the tier's copy of that key before it returns, so a
//     client reads its own writes through the same tier.
//   * The epoch is the upstream's (the data set is the upstream's); it changes when the
//     upstream's does, which makes clients drop entries of the old data set.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "base/mutex.h"
#include "flame_object_cache/cache_client.h"
#include "node/local_map.h"
#include "node/tier_feed.h"
#include "store/store.h"

namespace foc {

class UpstreamStore final : public Store {
 public:
  /// Connects to `upstream.endpoint` (lazily: an unreachable upstream fails the calls,
  /// UNAVAILABLE, not the start). `upstream.follow_ref_endpoint` is forced off: every
  /// call goes to the configured upstream.
  /// With `map_dir`, same-machine clients may MAP objects (node/local_map.h); without,
  /// MAP is refused and they read over gRPC.
  static arrow::Result<std::unique_ptr<UpstreamStore>> Open(
      ClientOptions upstream, std::unique_ptr<LocalMapDir> map_dir = nullptr);
  ~UpstreamStore() override;

  std::string epoch() const override;
  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) override;
  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   std::shared_ptr<arrow::Buffer> delta) override;
  arrow::Result<ReadResult> Get(const ObjectKey& key, uint64_t client_version) override;
  arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(
      const ObjectKey& key) override;
  /// Forwards the DELETE; returns -1 (the upstream does not report a count).
  arrow::Result<int64_t> Delete(const KeyPattern& pattern) override;
  arrow::Result<std::vector<ObjectListing>> List() const override;
  StoreStats stats() const override;
  /// The upstream's changes, republished (node/tier_feed.h).
  ChangeFeed* change_feed() override { return feed_->feed(); }
  /// Makes sure the upstream's changes of the patterns' apps are being republished.
  arrow::Status PrepareWatch(const std::vector<KeyPattern>& patterns) override;
  /// Writes the current version's files into the map directory (node/local_map.h).
  arrow::Result<LocalObject> MapLocal(const ObjectKey& key) override;
  /// The map directory (null: MAP off).
  const LocalMapDir* map_dir() const { return map_dir_.get(); }

  /// The upstream client (tests read its cache counters).
  const CacheClient& client() const { return *client_; }

 private:
  UpstreamStore(std::unique_ptr<CacheClient> client,
                std::unique_ptr<LocalMapDir> map_dir);
  /// Adds `<app>/*` to the tier's WATCH subscription (resubscribing) when new.
  void Follow(std::string_view app);

  std::unique_ptr<CacheClient> client_;
  std::unique_ptr<LocalMapDir> map_dir_;
  std::unique_ptr<TierFeed> feed_;  // declared after client_: destroyed before it
  mutable Mutex mu_;
  std::set<std::string> apps_ FOC_GUARDED_BY(mu_);  // apps the subscription covers
  StoreStats counted_ FOC_GUARDED_BY(mu_);          // replies and bytes of this tier
};

}  // namespace foc
