// Cluster membership on etcd leases (docs/cluster.md, "Membership and invalidation").
//
// Each server registers `<prefix>/members/<id>` = its advertised endpoint under a lease
// of its own and renews the lease from a thread; a server that dies stops renewing and
// its key disappears when the lease expires (after at most `ttl`). Every member follows
// the members range by a watch, so `members()` is the live list without asking etcd.
//
// Guarantees:
//   * While Join() has succeeded and Leave() was not called, the member's key exists in
//   etcd
//     except during an outage: if etcd forgets the lease (expired during a partition,
//     etcd restored from backup), the next renewal grants a new lease and registers
//     again.
//   * members() is eventually consistent with etcd: it lags by the watch delay; after the
//     watch ends it is rebuilt from a range read and the watch resumes from that
//     revision, so no change is missed for long (the rebuild is retried every
//     `renew_interval`).
//   * Leave() revokes the lease (the key goes at once); the destructor calls Leave().
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <arrow/result.h>
#include <arrow/status.h>

#include "cluster/etcd_client.h"

namespace foc::cluster {

struct MembershipOptions {
  std::string prefix = "/flame-object-cache";  ///< etcd key prefix of the cluster
  std::string id;                ///< this server's id (unique in the cluster)
  std::string endpoint;          ///< what clients dial for this server
  std::chrono::seconds ttl{10};  ///< lease TTL: how long a dead server lingers
  /// How often the lease is renewed and a broken watch is restarted; ttl / 3 when zero.
  std::chrono::milliseconds renew_interval{0};
};

/// Server id → advertised endpoint, ordered by id.
using MemberMap = std::map<std::string, std::string>;

class Membership {
 public:
  /// Registers this server and starts following the member list. `etcd` must outlive
  /// this.
  static arrow::Result<std::unique_ptr<Membership>> Join(EtcdClient* etcd,
                                                         MembershipOptions options);
  ~Membership();

  /// The live members, this one included.
  MemberMap members() const;
  /// The lease this member's key lives under (0 before Join or after Leave): keys put
  /// under it (e.g. a lock) vanish when this server dies.
  int64_t lease() const;
  /// Called (from the watch thread) after each change of the member list.
  void OnChange(std::function<void(const MemberMap&)> callback);

  /// Deregisters (revokes the lease) and stops the threads. Idempotent.
  void Leave();
  /// Test hook: stops renewing and watching without revoking, as a killed server would.
  void AbandonForTesting();

  /// The etcd key under which a member registers.
  static std::string MemberKey(const std::string& prefix, const std::string& id);

 private:
  Membership(EtcdClient* etcd, MembershipOptions options);
  arrow::Status Register();  // grants a lease and puts the member key under it
  arrow::Status Resync();    // range read + watch from the next revision
  void RenewLoop();
  void Apply(const std::vector<WatchEvent>& events);

  EtcdClient* const etcd_;
  const MembershipOptions options_;
  const std::string members_prefix_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  MemberMap members_;                                // guarded by mu_
  std::function<void(const MemberMap&)> on_change_;  // guarded by mu_
  int64_t lease_ = 0;                                // guarded by mu_
  bool watch_broken_ = false;                        // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_

  std::unique_ptr<EtcdWatch> watch_;  // only touched by Join/RenewLoop/Leave (serialised)
  std::thread renewer_;
};

}  // namespace foc::cluster
