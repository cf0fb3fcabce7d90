// A client of etcd's v3 API through etcd's own HTTP/JSON gateway (`/v3/kv/*`,
// `/v3/watch`,
// `/v3/lease/*`), for cluster mode (docs/cluster.md).
//
// Why the gateway and not etcd's gRPC API: gRPC lives inside libarrow_flight, hidden;
// linking a second gRPC (with its own protobuf) into the same process is what DESIGN §5
// forbids, and the gateway is part of every etcd server since 3.3 (on the client port, no
// extra process). The gateway speaks the same v3 messages as JSON: bytes fields are
// base64, 64-bit integers are decimal strings, and a watch is one long POST whose
// response is a stream of JSON objects, one per line.
//
// Guarantees and limits:
//   * Every call is bounded by `EtcdOptions::request_timeout`; an endpoint that does not
//     answer is skipped for the next one (the endpoints are members of one etcd cluster,
//     so any of them serves any request); when none answers the call fails with
//     arrow::Status::IOError whose message starts "etcd unreachable" (the flight layer
//     maps IOError to UNAVAILABLE).
//   * An etcd error reply (e.g. a compacted revision, a missing lease) is
//     arrow::Status::Invalid with etcd's message, except "lease not found" → KeyError.
//   * The client is thread-safe: each call opens its own HTTP request; watches run on a
//     thread of their own until cancelled or destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

namespace foc::cluster {

/// Where etcd is and how long to wait for it.
struct EtcdOptions {
  /// Client URLs of the etcd members, e.g. "http://127.0.0.1:2379". At least one.
  std::vector<std::string> endpoints;
  /// Upper bound of one request (connect + reply); watches use it for connecting only.
  std::chrono::milliseconds request_timeout{5000};
};

/// One key-value pair as etcd stores it.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  ///< etcd's per-key modification count (1 after the first put)
  int64_t lease = 0;
};

/// The result of a range read.
struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  ///< the store revision the read saw
  bool more = false;     ///< true when `limit` cut the result
};

/// One comparison of a transaction.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Result { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kModRevision;
  Result result = Result::kEqual;
  int64_t number = 0;  ///< for kVersion, kCreateRevision, kModRevision
  std::string value;   ///< for kValue
  /// When set, the comparison must hold for every existing key in [key, range_end).
  std::string range_end;

  /// The key does not exist (its create revision is 0).
  static Compare Missing(std::string key);
  /// The key's last modification was at `revision` (0 = the key does not exist).
  static Compare ModRevisionIs(std::string key, int64_t revision);
  /// No key in [key, range_end) was created or changed after `revision`.
  static Compare RangeUnchangedSince(std::string key, std::string range_end,
                                     int64_t revision);
};

/// One operation of a transaction branch.
struct TxnOp {
  enum class Kind { kPut, kDeleteRange, kRange };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;      ///< kPut
  std::string range_end;  ///< kDeleteRange, kRange: "" = the single key
  int64_t lease = 0;      ///< kPut

  static TxnOp Put(std::string key, std::string value, int64_t lease = 0);
  static TxnOp Delete(std::string key, std::string range_end = "");
  static TxnOp Get(std::string key, std::string range_end = "");
};

/// The outcome of a transaction.
struct TxnResult {
  bool succeeded = false;  ///< true: the comparisons held and `success` ran
  int64_t revision = 0;    ///< the store revision after the transaction
  /// For each operation of the branch that ran, in order: the pairs a kRange read
  /// (empty for the other kinds).
  std::vector<std::vector<KeyValue>> ranges;
  /// For each operation of the branch that ran: how many keys a kDeleteRange removed.
  std::vector<int64_t> deleted;
};

/// One event of a watch.
struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  ///< for kDelete: key and mod_revision only
};

/// A running watch; cancels itself when destroyed.
class EtcdWatch {
 public:
  virtual ~EtcdWatch() = default;
  /// Stops delivering events and joins the watch thread. Idempotent.
  virtual void Cancel() = 0;
};

/// Receives a watch's events in revision order, on the watch's own thread. A batch holds
/// every event of one etcd revision range; `revision` is the header revision of the
/// reply.
using WatchCallback =
    std::function<void(const std::vector<WatchEvent>& events, int64_t revision)>;
/// Called once when a watch ends by itself (connection lost, compacted start revision):
/// the watcher must resynchronise (range read, then watch from its revision + 1).
using WatchEndCallback = std::function<void(const arrow::Status& why)>;

/// `prefix` → the range end that covers every key starting with it.
std::string PrefixRangeEnd(const std::string& prefix);

class EtcdClient {
 public:
  static arrow::Result<std::unique_ptr<EtcdClient>> Make(EtcdOptions options);
  ~EtcdClient();

  /// Writes `key`; returns the new store revision.
  arrow::Result<int64_t> Put(const std::string& key, const std::string& value,
                             int64_t lease = 0);
  /// Reads `key`, or [key, range_end) when range_end is given. `limit` 0 = no limit.
  /// `revision` 0 = the newest; otherwise a snapshot at that revision.
  arrow::Result<RangeResult> Range(const std::string& key,
                                   const std::string& range_end = "", int64_t limit = 0,
                                   int64_t revision = 0);
  /// One key, or nullopt (and the revision read) when absent.
  arrow::Result<std::optional<KeyValue>> Get(const std::string& key);
  /// Deletes `key`, or [key, range_end); returns how many keys were removed.
  arrow::Result<int64_t> Delete(const std::string& key,
                                const std::string& range_end = "");
  /// Runs `success` if every comparison holds, `failure` otherwise, atomically.
  arrow::Result<TxnResult> Txn(const std::vector<Compare>& compares,
                               const std::vector<TxnOp>& success,
                               const std::vector<TxnOp>& failure = {});

  /// Grants a lease of `ttl_seconds`; returns its id.
  arrow::Result<int64_t> GrantLease(int64_t ttl_seconds);
  /// Renews a lease once; returns the TTL etcd granted. KeyError when the lease expired.
  arrow::Result<int64_t> KeepAlive(int64_t lease);
  /// Revokes a lease (its keys are deleted). Missing is fine.
  arrow::Status RevokeLease(int64_t lease);

  /// Watches [key, range_end) from `start_revision` (0 = from now). Events reach
  /// `on_events` until the watch is cancelled; if it ends by itself, `on_end` is called
  /// once.
  arrow::Result<std::unique_ptr<EtcdWatch>> Watch(const std::string& key,
                                                  const std::string& range_end,
                                                  int64_t start_revision,
                                                  WatchCallback on_events,
                                                  WatchEndCallback on_end);

  const EtcdOptions& options() const { return options_; }

 private:
  explicit EtcdClient(EtcdOptions options);
  /// POSTs `body` to `path` on the first endpoint that answers; returns the reply body.
  arrow::Result<std::string> Call(const std::string& path, const std::string& body);

  EtcdOptions options_;
  std::atomic<size_t> preferred_{0};  ///< index of the endpoint that answered last
};

}  // namespace foc::cluster
