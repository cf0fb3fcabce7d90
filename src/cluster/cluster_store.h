// Cluster mode's store (docs/cluster.md): a Store (store/store.h) whose versions are
// committed in etcd and whose payloads live in S3-compatible storage, so that any number
// of servers serve one namespace.
//
// Guarantees (each tested against real etcd and a real S3 gateway, cluster_store_test):
//   * A write is acknowledged only after its payload is in S3 (one complete PUT, under a
//     name unique to that write) and its record committed in etcd by a compare-and-swap
//     transaction (cluster/metadata.h) — the commit point. A server killed at any moment
//     loses nothing acknowledged; a payload whose commit never happened is an orphan.
//   * Versions are the cluster's: concurrent writes of one key through different servers
//     all land, with distinct, contiguous versions; DELETE raises floors in etcd, so a
//     re-created key continues above every version ever issued, on every server.
//   * Reads never wait for coordination: each server follows etcd's watch, and a get is
//     planned against the server's index. A write through this server is in its index
//     before it is acknowledged (read your writes through one server); a write through
//     another server is seen after the watch lag ("Staleness" in docs/cluster.md).
//   * A DELETE, and a linearizable read that finds a key gone, leave a tombstone at
//     their etcd revision until the watch has passed it, so a late watch event of an
//     older write never re-shows a deleted key (index entries change only to a newer
//     revision).
//   * Payloads are immutable and named uniquely, so a cached copy is never stale: only
//     the index decides which version is current. Memory holds assembled objects in the
//     one LRU (cache/lru_cache.h), bounded by `max_memory_bytes`; everything is
//     re-readable from S3.
//   * The change feed (WATCH) is fed by the etcd watch, in etcd revision order per key,
//     for writes through every server; when the watch has a gap (etcd restarted or
//     compacted), subscribers are dropped with "resync" rather than left missing changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arrow/result.h>

#include "base/mutex.h"
#include "cache/lru_cache.h"
#include "cache/memory_limit.h"
#include "cluster/etcd_client.h"
#include "cluster/membership.h"
#include "cluster/metadata.h"
#include "storage/s3_storage.h"
#include "store/change_feed.h"
#include "store/store.h"

namespace foc::cluster {

struct ClusterStoreOptions {
  std::vector<std::string> etcd;               ///< etcd client URLs
  std::string prefix = "/flame-object-cache";  ///< etcd key prefix of the cluster
  std::string storage_uri;                     ///< `s3://<bucket>/<prefix>?...`
  std::string server_id;                       ///< unique per server; empty: generated
  std::string advertised_endpoint;             ///< registered as this server's member
  int64_t max_memory_bytes =
      kDefaultMaxMemoryBytes;  ///< assembled objects kept; 0: unlimited
  int64_t max_deltas = 1000;   ///< deltas per object (upstream's limit)
  /// Orphan collection ("Orphans" in docs/cluster.md): how often this server tries to
  /// take the collector lock and sweep; 0 = never.
  std::chrono::milliseconds gc_interval{std::chrono::minutes(10)};
  /// Payloads younger than this are never collected: it bounds how long a write may sit
  /// between its payload PUT and its commit.
  std::chrono::milliseconds gc_grace{std::chrono::hours(1)};
};

/// What one orphan sweep did.
struct SweepResult {
  bool collector = false;  ///< this server held the collector lock (else nothing done)
  int64_t listed = 0;      ///< payload objects under `<root>/cluster/objects/`
  int64_t referenced = 0;  ///< named by a record
  int64_t young = 0;       ///< unreferenced but within the grace period (kept)
  int64_t marked = 0;      ///< unreferenced, old, first seen so: collected next sweep
  int64_t collected = 0;   ///< deleted now (unreferenced in two sweeps in a row)
};

class ClusterStore final : public Store {
 public:
  /// Connects to etcd and S3, joins the membership, reads every record (no payloads)
  /// and follows the watch from that revision.
  static arrow::Result<std::unique_ptr<ClusterStore>> Open(ClusterStoreOptions options);
  ~ClusterStore() override;

  std::string epoch() const override { return meta_->epoch(); }
  arrow::Result<WriteResult> Put(const PutTarget& target, Payload payload) override;
  arrow::Result<WriteResult> Patch(const ObjectKey& key,
                                   std::shared_ptr<arrow::Buffer> delta) override;
  arrow::Result<ReadResult> Get(const ObjectKey& key, uint64_t client_version) override;
  arrow::Result<std::shared_ptr<arrow::Schema>> NativeSchema(
      const ObjectKey& key) override;
  arrow::Result<int64_t> Delete(const KeyPattern& pattern) override;
  arrow::Result<std::vector<ObjectListing>> List() const override;
  StoreStats stats() const override;
  ChangeFeed* change_feed() override { return &feed_; }

  /// This server's id in the cluster.
  const std::string& server_id() const { return options_.server_id; }
  /// The cluster's members (server id → endpoint).
  MemberMap members() const { return members_->members(); }
  /// The advertised endpoints of the live members, this one included: sorted, no
  /// duplicates (what the MEMBERS action returns).
  std::vector<std::string> MemberEndpoints() const;

  /// For a linearizable read: reads `key`'s record from etcd (a quorum read) and brings
  /// this server's index up to it, so a Get issued after this returns reflects every
  /// commit acknowledged (by any server) before this call began.
  arrow::Status Refresh(const ObjectKey& key);

  /// One orphan sweep now (the background thread calls it every gc_interval). Only the
  /// holder of `<prefix>/gc` (a key under its member lease) sweeps; a payload is deleted
  /// when it is older than gc_grace and no record named it in this sweep and the
  /// previous one (two sweeps: a reader whose index lags by the watch delay may still be
  /// fetching a just-replaced payload).
  arrow::Result<SweepResult> SweepOrphans();

  /// Test hooks: stop following etcd (this server's index freezes, as under an
  /// arbitrarily long watch lag), and deliver watch events as if etcd sent them now.
  void StopWatchForTesting();
  void DeliverForTesting(const std::vector<RecordEvent>& events) { OnEvents(events); }

 private:
  struct Indexed {
    ObjectRecord record;
    int64_t revision = 0;  // etcd revision that produced `record`
  };
  struct Cached {
    Object::Ptr object;
    std::string base_name;  // the payload the object's base came from
  };

  ClusterStore(ClusterStoreOptions options, std::unique_ptr<EtcdClient> etcd,
               S3Location s3);
  arrow::Status Start();
  arrow::Status Resync();
  void OnEvents(const std::vector<RecordEvent>& events);
  void OnWatchEnd(const arrow::Status& why);
  /// Applies `record` (nullopt: deleted) of `key` at `revision` to the read index if
  /// newer than what it holds.
  void ApplyLocked(const std::string& key, const std::optional<ObjectRecord>& record,
                   int64_t revision) FOC_REQUIRES(mu_);
  std::string NewPayloadName(const std::string& key) const;
  arrow::Status WritePayload(const std::string& name, const Payload& payload,
                             int64_t* bytes);
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadPayload(const std::string& name);
  arrow::Result<Object::Ptr> Assemble(const std::string& key, const ObjectRecord& record);
  /// Whether a tombstone (DELETE or linearizable not-found) at or after `revision`
  /// covers `key`.
  bool BuriedLocked(const std::string& key, int64_t revision) const FOC_REQUIRES(mu_);
  /// Records that whatever matches `pattern` was gone at `revision`.
  void BuryLocked(KeyPattern pattern, int64_t revision) FOC_REQUIRES(mu_);
  /// Notes that the watch (or a snapshot) has reached `revision`: older tombstones go.
  void AdvanceLocked(int64_t revision) FOC_REQUIRES(mu_);
  void GcLoop();

  const ClusterStoreOptions options_;
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<ClusterMetadata> meta_;
  std::unique_ptr<Membership> members_;
  const S3Location s3_;
  ChangeFeed feed_;
  LruCache<Cached> cache_;

  mutable Mutex mu_;
  // What gets read: etcd's records as this server last learnt them, from the watch or
  // from its own commits (which it applies before acknowledging).
  std::map<std::string, Indexed> index_ FOC_GUARDED_BY(mu_);
  // What the change feed has reported: the records in watch order only (each event is
  // new: the watch starts right after the snapshot), so every server publishes every
  // commit once, in etcd revision order per key, whoever made it.
  std::map<std::string, ObjectRecord> watched_ FOC_GUARDED_BY(mu_);
  StoreStats counted_ FOC_GUARDED_BY(mu_);
  std::unique_ptr<EtcdWatch> watch_ FOC_GUARDED_BY(mu_);
  bool stopping_ FOC_GUARDED_BY(mu_) = false;
  // The highest etcd revision this server's index reflects from the watch or a snapshot.
  int64_t watched_revision_ FOC_GUARDED_BY(mu_) = 0;
  // Deletions newer than watched_revision_: a watch event of a write at or before one
  // of these revisions, for a key its pattern matches, is older than the deletion.
  std::vector<std::pair<KeyPattern, int64_t>> tombstones_ FOC_GUARDED_BY(mu_);

  Mutex gc_mu_;  // serialises sweeps; guards the collector's state
  CondVar gc_wake_{&gc_mu_};
  bool gc_stop_ FOC_GUARDED_BY(gc_mu_) = false;
  std::set<std::string> gc_marked_ FOC_GUARDED_BY(gc_mu_);  // unreferenced last sweep
  std::thread gc_thread_;
};

}  // namespace foc::cluster
