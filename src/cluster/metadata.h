// Object records and version floors in etcd: the commit point of cluster mode
// (docs/cluster.md, "Keys in etcd" and "The commit protocol").
//
// Under the cluster prefix P:
//   P/epoch                       the data set's identity (created once, never changed)
//   P/objects/<app>/<ses>/<obj>   the object's record (JSON, EncodeRecord)
//   P/floors/<pattern>            decimal: the highest version ever issued under a
//   deleted
//                                 pattern (`<app>/<ses>/<obj>`, `<app>/<ses>` or
//                                 `<app>/*`)
//
// Invariants (each is what a test in metadata_test.cc checks against a real etcd):
//   * A commit is one etcd transaction that succeeds only if neither the record nor any
//   of
//     the key's three floors changed since they were read; a lost race re-reads and
//     retries, so concurrent commits through any number of servers get distinct versions,
//     each exactly one above the larger of the record it replaced and the key's floors.
//   * Versions of a key never repeat: DELETE raises the pattern's floor to the highest
//     version it removes in the same transaction that removes the records.
//   * A DELETE of a session or an app removes exactly the records that existed at one
//   etcd
//     revision: the transaction compares "every key in the range is older than the read",
//     so a record created or changed after the read makes it retry.
// Keys are passed as validated strings; this layer does not parse them (src/key/ does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "cluster/etcd_client.h"

namespace foc::cluster {

/// Where one version's payload lives in the shared object storage.
struct PayloadRef {
  uint64_t version = 0;
  std::string name;   ///< the storage object name, unique to the write that made it
  int64_t bytes = 0;  ///< payload bytes
  bool operator==(const PayloadRef&) const = default;
};

/// One object's record: its current version and where each part's payload is.
struct ObjectRecord {
  uint64_t version = 0;  ///< current version (the base's or the last delta's)
  PayloadRef base;
  std::vector<PayloadRef> deltas;
  bool native = false;  ///< a native Arrow table (no deltas)
  bool operator==(const ObjectRecord&) const = default;
};

std::string EncodeRecord(const ObjectRecord& record);
arrow::Result<ObjectRecord> DecodeRecord(const std::string& text);

/// What a commit's mutation sees.
struct CommitInput {
  std::optional<ObjectRecord> current;  ///< the record now, if the object exists
  uint64_t version = 0;                 ///< the version this commit will carry
};

/// What a commit produced.
struct CommitResult {
  ObjectRecord record;
  int64_t revision = 0;  ///< etcd revision of the commit
  int attempts = 0;      ///< transactions tried (1 = no lost race)
};

/// A record change seen by Follow.
struct RecordEvent {
  std::string key;                     ///< object key (or floor pattern when is_floor)
  std::optional<ObjectRecord> record;  ///< nullopt: the record was deleted
  bool is_floor = false;               ///< a floor changed (record unset, floor set)
  uint64_t floor = 0;
  int64_t revision = 0;
};

/// A record read from etcd (a linearizable read: etcd serves it from a quorum).
struct RecordRead {
  std::optional<ObjectRecord> record;  ///< nullopt: no such object
  /// The record's mod revision when present; else the store revision of the read (the
  /// object did not exist then).
  int64_t revision = 0;
};

/// What a DELETE did.
struct DeleteResult {
  int64_t removed = 0;  ///< records removed
  int64_t revision =
      0;  ///< etcd revision of the delete (or of the read, if none matched)
};

/// Every record and floor at one revision.
struct MetadataSnapshot {
  std::vector<std::pair<std::string, ObjectRecord>> records;
  std::vector<std::pair<std::string, uint64_t>> floors;
  int64_t revision = 0;
};

class ClusterMetadata {
 public:
  /// Opens the metadata under `prefix`, creating the cluster's epoch if there is none.
  /// `etcd` must outlive this object.
  static arrow::Result<std::unique_ptr<ClusterMetadata>> Open(EtcdClient* etcd,
                                                              std::string prefix);

  /// The data set's identity, the same on every server of the cluster.
  const std::string& epoch() const { return epoch_; }

  /// The record of `key`, or nullopt.
  arrow::Result<std::optional<ObjectRecord>> Get(const std::string& key);
  /// The record of `key` with the revision it was read at (see RecordRead).
  arrow::Result<RecordRead> Read(const std::string& key);

  /// Commits a mutation of `key`. `mutate` gets the current record (if any) and the
  /// version the commit will carry, and returns the new record (its `version` must be
  /// that version), or an error that aborts the commit. It may run more than once (a lost
  /// race), so it must not have effects beyond building the record: payloads are written
  /// before Commit, under names that do not depend on the version.
  arrow::Result<CommitResult> Commit(
      const std::string& key,
      const std::function<arrow::Result<ObjectRecord>(const CommitInput&)>& mutate);

  /// Deletes `key` (`<app>/<ses>/<obj>`), a session (`<app>/<ses>`) or an app
  /// (`<app>/*`), raising the pattern's floor. Returns the number of records removed.
  arrow::Result<int64_t> Delete(const std::string& pattern);
  /// Delete, also returning the revision at which the records were gone.
  arrow::Result<DeleteResult> DeleteAt(const std::string& pattern);

  /// Every record and floor (paged reads at one revision).
  arrow::Result<MetadataSnapshot> Snapshot();

  /// Follows record and floor changes after `revision` (from a Snapshot) until the
  /// returned watch is cancelled; `on_end` as for EtcdClient::Watch.
  arrow::Result<std::unique_ptr<EtcdWatch>> Follow(
      int64_t revision, std::function<void(const std::vector<RecordEvent>&)> on_events,
      WatchEndCallback on_end);

  /// The floors that cover `key`: its own, its session's and its app's keys in etcd.
  std::vector<std::string> FloorKeys(const std::string& key) const;

 private:
  ClusterMetadata(EtcdClient* etcd, std::string prefix, std::string epoch);

  EtcdClient* const etcd_;
  const std::string prefix_;
  const std::string objects_;  // prefix_ + "/objects/"
  const std::string floors_;   // prefix_ + "/floors/"
  const std::string epoch_;
};

}  // namespace foc::cluster
