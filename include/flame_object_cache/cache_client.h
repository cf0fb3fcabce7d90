// The C++ client of flame-object-cache, with flamepy's version-checked client-side cache.
//
// Wire behaviour is flamepy 0.6.0's (docs/protocol.md, reference/upstream-client.md §2):
// put, delete and upload go to the configured endpoint; get, update, patch and download
// go to the ref's endpoint (the endpoint the server advertised in its PutResult). A get
// always makes one conditional round trip, `DoGet("<key>:<cached version>")`, and the
// server answers "not modified", "these deltas" or "the whole object"; so a get never
// returns anything but the server's current value at the time of the call.
//
// Better than flamepy (reference/upstream-client.md §9):
//   * byte-bounded LRU (ClientCache) in addition to the entry bound;
//   * single flight per key: concurrent gets of one key share one request. A get joins a
//     request only if that request has not been sent yet, so the shared answer is never
//     older than the joiner's own call; a get that arrives after the send waits and then
//     leads (or joins) the next request, which carries the fresh version and is usually
//     "not modified";
//   * epoch awareness: a reply whose `flame.cache.epoch` differs from the cached entry's
//   means
//     the server lost its data set (memory-only restart) and versions restarted; the
//     client then drops that endpoint's entries and refetches with version 0 instead of
//     trusting a "not modified" about a different object;
//   * per-call deadlines, mTLS, a streamed upload (1 MiB rows, no whole-file buffer) and
//   a
//     working download (temp file + fsync + rename; nothing left behind on failure);
//   * values are immutable and shared (no copy on return, nothing a caller can corrupt).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/table.h>

#include "base/mutex.h"
#include "flame_object_cache/client_cache.h"
#include "flame_object_cache/watch_stream.h"

namespace arrow::flight {
class FlightClient;
class FlightCallOptions;
}  // namespace arrow::flight

namespace foc {

/// How a CacheClient connects and how big its cache may grow.
struct ClientOptions {
  /// The server to put, upload, delete and list at: `grpc://host:port`, `grpc+tcp://`,
  /// `http://` (plaintext) or `grpcs://`, `grpc+tls://`, `https://` (TLS); anything else
  /// is InvalidArgument (ClientLocation in protocol/endpoint.h).
  ///
  /// Several servers of one cluster (docs/cluster.md), comma-separated
  /// (`grpc://a:9090,grpc://b:9090`), or `discover` below: the client routes. Each key
  /// goes to one member chosen by rendezvous hashing of its `<app>/<session>`
  /// (protocol/routing.h, the same rule as the Python SDK), and a call that fails with
  /// UNAVAILABLE goes to the next member of that key's order (PATCH and PUT of a new
  /// object only when the failed member cannot have received it: nothing is applied
  /// twice). Refs' endpoints are then not used for routing, and the client cache holds
  /// one copy per key, version-checked as always.
  std::string endpoint = "grpc://127.0.0.1:9090";
  /// Learn the members from the `MEMBERS` action of the given endpoint(s) and route over
  /// them; asked again after a member fails.
  bool discover = false;
  /// Every Get is a linearizable read (ticket `<key>:L<version>`, docs/protocol.md): it
  /// reflects every write acknowledged by any server of a cluster before it began.
  bool linearizable = false;
  /// PEM root certificates for TLS endpoints; empty: gRPC's default roots.
  std::string tls_root_certs;
  /// PEM client certificate chain for mutual TLS (with `private_key`); empty: none.
  std::string cert_chain;
  /// PEM private key of `cert_chain`.
  std::string private_key;
  /// Host name to verify in the server certificate instead of the endpoint's host.
  std::string override_hostname;
  /// Deadline of every call (a whole-call deadline, uploads and downloads included);
  /// zero or negative: none.
  std::chrono::duration<double> timeout{0};
  /// Byte bound of the client-side cache; <= 0: unbounded. Default 1 GiB.
  int64_t cache_max_bytes = int64_t{1} << 30;
  /// Entry bound of the client-side cache (flamepy's bound is 1000); <= 0: unbounded.
  int64_t cache_max_entries = 1000;
  /// Row size of Upload(): each file chunk travels as one row in its own batch (flamepy:
  /// 1 MiB).
  int64_t upload_chunk_bytes = int64_t{1} << 20;
  /// Follow the endpoint the server advertises in refs (flamepy's behaviour). false:
  /// every call goes to `endpoint` (useful through port forwards or NAT, where the
  /// advertised address is not reachable).
  bool follow_ref_endpoint = true;
  /// Flight clients (gRPC channels, each its own connection) kept per endpoint, used
  /// round robin; more than one spreads large concurrent transfers over several TCP
  /// connections.
  int connections_per_endpoint = 1;
  /// Called by Upload (after each row is sent) and Download (after each row is written)
  /// with the payload bytes transferred so far in that call, on the calling thread.
  /// Empty: not called. (The CLI draws its progress bars with it.)
  std::function<void(int64_t bytes_so_far)> transfer_progress;
  /// Bearer token sent as `authorization: Bearer <token>` on every call (servers with
  /// `cache.auth`, docs/security.md); empty: none.
  std::string token;
  /// Keep the `flame.cache.*` schema metadata on native tables that gets return (a node
  /// tier re-serves them as stored); false: removed, as flamepy hands tables to users.
  bool keep_flame_metadata = false;
};

/// A reference to a stored object: where it lives, its key, and the version a write
/// produced.
struct ObjectRef {
  std::string endpoint;  ///< the server's advertised endpoint (later calls dial it)
  std::string key;       ///< full key `<app>/<session>/<object>`
  uint64_t version = 0;  ///< 0 in a get: force a full read (bypass the cached version)

  /// Field-wise equality.
  bool operator==(const ObjectRef&) const = default;
};

/// One object as listed by ListFlights.
struct ListedObject {
  std::string key;       ///< full key
  int64_t bytes = 0;     ///< payload bytes as the server reports them
  uint64_t version = 0;  ///< current version (0: the server did not say; upstream)
  std::string endpoint;  ///< location of its ticket
  std::string kind;      ///< "opaque", "table", or "" (the server did not say; upstream)
  int64_t delta_count = -1;  ///< number of deltas; -1: the server did not say
};

/// What Stat() learns about an object.
struct ObjectStat {
  std::string key;           ///< full key
  uint64_t version = 0;      ///< current version
  int64_t total_bytes = 0;   ///< payload bytes: base plus deltas (a table: its buffers)
  int64_t delta_count = -1;  ///< number of deltas; -1: the server did not say
  bool is_table = false;     ///< a native Arrow table
  /// True when the server answered from metadata (GetFlightInfo, docs/protocol.md); false
  /// when it reports none (upstream's server) and the object was read to learn it.
  bool from_metadata = true;
};

/// Thread-safe client of one flame-object-cache deployment with a client-side cache.
class CacheClient {
 public:
  /// Connects to `options.endpoint` (channels are lazy: an unreachable server is reported
  /// by the first call, not here). Invalid endpoints and options are InvalidArgument.
  static arrow::Result<std::unique_ptr<CacheClient>> Connect(ClientOptions options);
  ~CacheClient();
  CacheClient(const CacheClient&) = delete;
  CacheClient& operator=(const CacheClient&) = delete;

  /// Stores `data` under `prefix_or_key`: `<app>/<session>` creates a new object (the
  /// server picks its id), a full key creates or replaces that object. Goes to the
  /// configured endpoint.
  arrow::Result<ObjectRef> Put(std::string_view prefix_or_key,
                               std::shared_ptr<arrow::Buffer> data);
  /// The current value of `ref.key` at `ref.endpoint`: one conditional round trip,
  /// answered from the cache when not modified, by applying deltas when only deltas are
  /// new, else in full. `ref.version == 0` forces a full read (the cache is refreshed,
  /// not consulted). A missing object is KeyError (gRPC NOT_FOUND).
  arrow::Result<std::shared_ptr<const ObjectValue>> Get(const ObjectRef& ref);
  /// Replaces the object `ref.key` with opaque `data` (its deltas are dropped).
  arrow::Result<ObjectRef> Update(const ObjectRef& ref,
                                  std::shared_ptr<arrow::Buffer> data);
  /// Appends the delta `data` to `ref.key`; KeyError if the object does not exist.
  arrow::Result<ObjectRef> Patch(const ObjectRef& ref,
                                 std::shared_ptr<arrow::Buffer> data);
  /// Deletes every object matching `pattern` (`<app>/*`, `<app>/<session>` or a full key)
  /// on the configured endpoint and drops matching cache entries of every endpoint.
  arrow::Status Delete(std::string_view pattern);

  /// Uploads the file at `path` as the object `key_or_prefix`, streaming it in
  /// `upload_chunk_bytes` rows (one per batch); the file is never held in memory whole.
  arrow::Result<ObjectRef> Upload(std::string_view key_or_prefix,
                                  const std::filesystem::path& path);
  /// Downloads the base of `ref.key` into `path` through a temporary file in the same
  /// directory, fsync and rename; on any failure no file is left behind (an existing
  /// `path` is untouched). Objects with deltas and native tables are InvalidArgument (as
  /// flamepy: a download is a base). Bypasses the client-side cache.
  arrow::Status Download(const ObjectRef& ref, const std::filesystem::path& path);

  /// Stores a native Arrow table (schema metadata `flame.cache.format=arrow-table-v1`,
  /// logical type `pyarrow.table`, so flamepy reads it back as a `pyarrow.Table`).
  arrow::Result<ObjectRef> PutTable(std::string_view prefix_or_key,
                                    const std::shared_ptr<arrow::Table>& table);
  /// The native table stored at `ref` (cached like Get; `flame.cache.*` metadata
  /// removed). InvalidArgument if the object is opaque bytes.
  arrow::Result<std::shared_ptr<arrow::Table>> GetTable(const ObjectRef& ref);

  /// Every object of the configured endpoint (ListFlights).
  arrow::Result<std::vector<ListedObject>> List();
  /// Version, size, kind and delta count of `ref.key` from metadata only: one
  /// GetFlightInfo, no payload is transferred (docs/protocol.md). Against a server that
  /// reports no metadata (upstream's) it falls back to one read whose payloads are
  /// counted and dropped as they arrive (`from_metadata` false). Bypasses the cache.
  arrow::Result<ObjectStat> Stat(const ObjectRef& ref);
  /// The server's status document (the INFO action, docs/protocol.md): one JSON object
  /// with objects, memory and disk use vs limits, hit ratio, evictions, requests, uptime
  /// and version. Needs read on every app when the server checks tokens.
  arrow::Result<std::string> Info();

  /// Opens a WATCH subscription (docs/protocol.md) at `endpoint` (empty: the configured
  /// one); returns once the server has registered it and sent its resume snapshot.
  /// `timeout` > 0 is a deadline for the whole call.
  arrow::Result<std::unique_ptr<WatchStream>> Watch(
      const WatchRequest& request, std::string_view endpoint = {},
      std::chrono::duration<double> timeout = std::chrono::duration<double>(0));
  /// Blocks until `ref.key` has a version other than `ref.version` and returns a ref to
  /// it; nullopt after `timeout`. KeyError if the object is deleted (its cache entry is
  /// dropped). `ref.version == 0` waits for the object to exist. Resubscribes (with the
  /// same version) when the subscription is dropped or the server restarts.
  arrow::Result<std::optional<ObjectRef>> WaitForChange(
      const ObjectRef& ref, std::chrono::duration<double> timeout);

  /// Keeps the cache current by WATCH for `patterns` at the configured endpoint
  /// (replacing an earlier subscription): while the subscription is healthy (snapshot
  /// received, a message within 2 x `heartbeat`), a Get of a matching key whose cached
  /// entry is the current version is answered with no round trip
  /// (CacheStats::watch_hits). Such a hit is stale at most by the push delay, or by 2 x
  /// `heartbeat` if the stream stalls unnoticed. Otherwise gets make the usual
  /// conditional round trip.
  arrow::Status SubscribeCache(
      const std::vector<std::string>& patterns,
      std::chrono::milliseconds heartbeat = std::chrono::milliseconds(1000));
  /// Waits until the cache subscription has its snapshot; false on timeout or if none.
  bool WaitCacheSubscribed(std::chrono::duration<double> timeout);
  /// Stops the cache subscription: every get makes its conditional round trip again.
  void UnsubscribeCache();

  /// A snapshot of the cache counters.
  CacheStats stats() const;
  /// The configured endpoint.
  const std::string& endpoint() const { return options_.endpoint; }
  /// The data-set epoch last seen from `endpoint` (empty: the configured one) in a reply,
  /// a PutResult or a WATCH `ready`; "" if none yet (or the server sends none).
  std::string epoch(std::string_view endpoint = {}) const;
  /// A ref to `key` at the configured endpoint with version `version` (for keys known by
  /// name).
  ObjectRef RefFor(std::string_view key, uint64_t version = 1) const;

  /// Whether this client routes over a cluster (several endpoints, or `discover`).
  bool routing() const { return routing_; }
  /// The endpoints this client routes over (learnt by MEMBERS with `discover`); the
  /// configured endpoint alone when it does not route.
  std::vector<std::string> Members();
  /// Asks the known members, then the configured endpoints, for MEMBERS; the first
  /// answer becomes the member list.
  arrow::Result<std::vector<std::string>> RefreshMembers();
  /// The MEMBERS action at `endpoint` (empty: the first configured endpoint): the
  /// advertised endpoints of the cluster's live servers; a single server answers itself.
  arrow::Result<std::vector<std::string>> ClusterMembers(std::string_view endpoint = {});

 private:
  struct Flight;
  struct Reply;

  explicit CacheClient(ClientOptions options);

  const std::string& EndpointOf(const ObjectRef& ref) const;
  /// Members by preference for `key`: rendezvous order, recently failed ones last.
  std::vector<std::string> Order(std::string_view key);
  /// Runs `call` with the endpoint to dial: `endpoint` itself, or — when it is the
  /// routing label — the members of `key`'s order until one does not fail UNAVAILABLE
  /// (`resend` false: stop unless the failed call cannot have reached its member).
  arrow::Status Route(const std::string& endpoint, std::string_view key, bool resend,
                      const std::function<arrow::Status(const std::string&)>& call);
  /// What Watch dials for `endpoint` (the routing label: the owner of `key`).
  std::string DialTarget(const std::string& endpoint, std::string_view key);
  arrow::Result<std::shared_ptr<arrow::flight::FlightClient>> ClientFor(
      const std::string& endpoint);
  arrow::flight::FlightCallOptions CallOptions() const;

  arrow::Result<ObjectRef> DoPutBatches(
      const std::string& endpoint, bool patch, std::string_view path,
      const std::shared_ptr<arrow::Schema>& schema,
      const std::function<arrow::Status(
          const std::function<arrow::Status(const arrow::RecordBatch&)>&)>& produce);
  arrow::Status PutOnce(
      arrow::flight::FlightClient* client, bool patch, std::string_view path,
      const std::shared_ptr<arrow::Schema>& schema,
      const std::function<arrow::Status(
          const std::function<arrow::Status(const arrow::RecordBatch&)>&)>& produce,
      std::shared_ptr<arrow::Buffer>* meta);
  arrow::Status FetchOnce(const std::string& endpoint, const std::string& key,
                          uint64_t version, bool linearizable, Reply* out);
  arrow::Status ListOnce(const std::string& endpoint, std::vector<ListedObject>* out);
  arrow::Result<ObjectRef> PutOpaque(const std::string& endpoint, bool patch,
                                     std::string_view path,
                                     std::shared_ptr<arrow::Buffer> data);
  arrow::Result<Reply> FetchReply(const std::string& endpoint, const std::string& key,
                                  uint64_t version, bool linearizable);
  arrow::Result<std::shared_ptr<const ObjectValue>> FetchAndInstall(
      const std::string& endpoint, const std::string& key, bool force, Flight* flight);
  /// Records that `endpoint` serves data set `epoch`; drops entries of other epochs.
  void NoteEpochLocked(const std::string& endpoint, const std::string& epoch)
      FOC_REQUIRES(mu_);
  void NoteEpoch(const std::string& endpoint, const std::string& epoch);
  void InvalidateLocked(const std::string& endpoint, const std::string& key)
      FOC_REQUIRES(mu_);
  void InvalidatePatternLocked(const KeyPattern& pattern) FOC_REQUIRES(mu_);
  void InvalidateWrittenKey(std::string_view prefix_or_key);
  void MarkFlightsLocked(const std::function<bool(const Flight&)>& matches)
      FOC_REQUIRES(mu_);
  /// Get's single flight, under mu_: answers from the WATCH-vouched cache or from the
  /// round it joins (sets `*answer`, returns null), or returns the new round this caller
  /// leads, dispatched (after waiting for the round before it).
  std::shared_ptr<Flight> LeadOrJoinLocked(
      const std::string& id, const std::string& endpoint, const ObjectRef& ref,
      bool force,
      std::optional<arrow::Result<std::shared_ptr<const ObjectValue>>>* answer)
      FOC_REQUIRES(mu_);

  const ClientOptions options_;
  const std::vector<std::string> seeds_;  // the configured endpoints
  const bool routing_;
  // Where calls without a ref go, and the cache's endpoint of every entry: the configured
  // endpoint, or the routing label (one copy per key for the whole cluster).
  const std::string default_endpoint_;

  // Guards everything below. A Flight's fields are read and written under it too (its
  // CondVar is bound to it), which the analysis cannot name from inside Flight.
  mutable Mutex mu_;
  ClientCache cache_ FOC_GUARDED_BY(mu_);
  CacheStats stats_ FOC_GUARDED_BY(mu_);
  // endpoint -> last seen epoch
  std::map<std::string, std::string, std::less<>> epochs_ FOC_GUARDED_BY(mu_);
  // Single flight: the newest request round per (force, endpoint, key).
  std::map<std::string, std::shared_ptr<Flight>, std::less<>> flights_
      FOC_GUARDED_BY(mu_);
  struct Pool {
    std::vector<std::shared_ptr<arrow::flight::FlightClient>> clients;
    size_t next = 0;
  };
  // endpoint -> Flight clients
  std::map<std::string, Pool, std::less<>> pools_ FOC_GUARDED_BY(mu_);
  // routing: the members known
  std::vector<std::string> members_ FOC_GUARDED_BY(mu_);
  // members_ is MEMBERS' (or seeds')
  bool members_known_ FOC_GUARDED_BY(mu_) = false;
  // member -> when it last failed UNAVAILABLE
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> down_
      FOC_GUARDED_BY(mu_);
  // Declared last (destroyed first). Swapped under mu_; the watch it held is destroyed
  // outside mu_ (its thread makes calls through this client).
  std::shared_ptr<CacheWatch> cache_watch_ FOC_GUARDED_BY(mu_);
};

/// True if `status` means "no such object" (gRPC NOT_FOUND arrives as arrow KeyError).
bool IsObjectNotFound(const arrow::Status& status);

}  // namespace foc
