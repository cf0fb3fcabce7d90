// The server's configuration: the `cache:` section of Flame's `flame-cluster.yaml`, the
// FLAME_CACHE_* / FLAME_HOME environment variables and command-line overrides, merged
// into one validated Config (docs/operations.md lists every key).
//
// Precedence, highest first: command line, environment, configuration file, built-in
// default. Every value is validated where it enters; an invalid one is an
// arrow::Status::Invalid whose message names the key (or variable, or flag) and the
// value. Unknown keys under `cache:` are not errors; they are returned as warnings.
//
// Every key is one row of the option table (config/options.h): its YAML path, its
// FLAME_CACHE_* variable, its command-line flag, how it is parsed and how --check-config
// prints it. The YAML walk, the environment, the flags of main.cc and FormatConfig all
// iterate that table, and a test compares it with docs/operations.md's key tables.
//
// This layer does no I/O beyond reading the file and the environment it is given: network
// interfaces, storage and TLS files are resolved by the server (src/server/).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "cache/memory_limit.h"
#include "config/security_config.h"

namespace foc {

/// The built-in Flight endpoint when nothing is configured.
inline constexpr std::string_view kDefaultEndpoint = "grpc://127.0.0.1:9090";
/// Upstream's default network interface name (upstream-server.md §8.1).
inline constexpr std::string_view kDefaultNetworkInterface = "eth0";
/// The system-wide configuration file, searched after $HOME/.flame/flame-cluster.yaml.
inline constexpr std::string_view kSystemConfigPath = "/etc/flame/flame-cluster.yaml";
/// Metrics endpoint of the built-in default (no configuration file): loopback only
/// (issue 14). A configuration file without `metrics` leaves the endpoint off, as
/// upstream's files expect.
inline constexpr int kDefaultMetricsPort = 9091;
inline constexpr std::string_view kDefaultMetricsBind = "127.0.0.1";

/// Parses a size string as upstream (upstream-server.md §8.2) but without its drift:
/// trim, split at the first letter, optional fractional number, unit K/KB/KI/KIB …
/// P/PB/PI/PIB (binary multiples, case-insensitive) or B; no unit means bytes. Rounds
/// down to a byte. Invalid: empty, negative, no number, unknown unit, more than INT64_MAX
/// bytes.
arrow::Result<int64_t> ParseSize(std::string_view text);

/// Formats bytes the way ParseSize reads them back exactly ("1G", "512M", "1536K", "10").
std::string FormatSize(int64_t bytes);

/// `cache.eviction.policy`.
enum class EvictionPolicy {
  kLru,   ///< evict least recently used objects when a limit is reached (default)
  kNone,  ///< no memory limit: nothing is evicted
};
/// `cache.eviction.memory_full` (memory-only storage).
enum class MemoryFull {
  kEvict,   ///< evict, and report evicted objects as evicted (default)
  kRefuse,  ///< refuse writes that do not fit with RESOURCE_EXHAUSTED
};
/// `cache.transport`: which gRPC server carries Arrow Flight (docs/operations.md).
enum class Transport {
  kAuto,      ///< callback for local storage (memory, disk); arrow where handlers wait on
              ///< the network (cluster, node tier, S3) (default)
  kCallback,  ///< gRPC's callback API (src/transport/callback_transport.h)
  kArrow,     ///< Arrow Flight's own synchronous gRPC server
};
/// The configuration spelling of a policy ("lru", "none", "evict", "refuse") or
/// transport ("auto", "callback", "arrow").
std::string_view Name(EvictionPolicy policy);
std::string_view Name(MemoryFull policy);
std::string_view Name(Transport transport);

/// Formats seconds in the shortest form that reads back exactly ("20", "0.5").
std::string FormatSeconds(double seconds);

/// A log level name (trace, debug, info, warn, error, critical, off; "warning" = warn).
arrow::Result<std::string> ParseLogLevel(std::string_view text);

struct TlsConfig {
  std::string cert_file;  ///< PEM certificate chain of the server
  std::string key_file;   ///< PEM private key of the server
  std::string
      ca_file;  ///< PEM CA bundle; set → clients must present a certificate it signs
};

struct MetricsConfig {
  std::optional<int>
      port;          ///< HTTP port of /metrics and /health; unset = off; 0 = any free
  std::string bind;  ///< address to bind; empty = the Flight bind host
  /// The built-in default's port (no file, no variable, no flag set it): a busy port
  /// logs a warning and leaves metrics off instead of failing the start, so a second
  /// instance on one machine still starts.
  bool best_effort = false;
};

struct LogConfig {
  std::string level = "info";
  std::string file;  ///< empty = stdout only; relative → $FLAME_HOME
  int64_t max_size = int64_t{100} << 20;  ///< rotate the file at this size
  int max_files = 5;                      ///< rotated files kept
};

/// The whole validated configuration.
struct Config {
  /// Where the file came from: a path, or "" for the built-in default.
  std::string source;

  /// `cache.endpoint`: scheme decides TLS (grpcs/grpc+tls/https = TLS), port is the
  /// listening port (default 9090); its host is bound when it is an IP literal or
  /// `localhost`.
  std::string endpoint = std::string(kDefaultEndpoint);
  /// `cache.network_interface`: anchored regular expression over interface names.
  std::string network_interface = std::string(kDefaultNetworkInterface);
  /// True when network_interface was configured rather than defaulted.
  bool network_interface_set = false;
  /// `cache.bind`: host, host:port, [v6] or [v6]:port to listen on; empty = derived.
  std::string bind;
  /// `cache.advertised_endpoint`: the URI put into PutResults; empty = derived.
  std::string advertised_endpoint;

  /// `cache.storage` (after FLAME_CACHE_STORAGE): `none`, `fs://…`, `file://…` or a path.
  std::string storage = "none";
  /// $FLAME_HOME, the base of relative `fs://` storage and relative log files.
  std::string flame_home = "/var/lib/flame";
  /// `cache.upstream` (after FLAME_CACHE_UPSTREAM): a node-local tier in front of this
  /// server (grpc://, grpcs://, ...); empty = this server is the authority
  /// (docs/node-tier.md).
  std::string upstream;
  /// `cache.upstream_token_file`: a file whose first line is the bearer token the tier
  /// sends to its upstream (an upstream with `cache.auth`); read at start. Relative →
  /// $FLAME_HOME. Empty = no token.
  std::string upstream_token_file;
  /// `cache.upstream_ca_file`: PEM roots that verify the upstream's TLS certificate
  /// (a private CA); empty = the system roots.
  std::string upstream_ca_file;
  /// `cache.upstream_cert_file` / `cache.upstream_key_file`: the tier's client
  /// certificate and key for an upstream that requires mTLS; both or neither.
  std::string upstream_cert_file, upstream_key_file;
  /// `cache.zero_copy`: offer the MAP action to clients on this machine (same-machine
  /// zero copy, docs/node-tier.md); default on.
  bool zero_copy = true;
  /// `cache.transport` (after FLAME_CACHE_TRANSPORT, --transport).
  Transport transport = Transport::kAuto;
  /// `cache.cluster` (docs/cluster.md); unset = a single server.
  struct Cluster {
    /// `cache.cluster.etcd` (after FLAME_CACHE_ETCD, comma-separated): etcd client URLs.
    std::vector<std::string> etcd;
    /// `cache.cluster.prefix`: etcd key prefix of the cluster.
    std::string prefix = "/flame-object-cache";
    /// `cache.cluster.gc_interval_seconds`: how often orphan payloads are swept;
    /// `cache.cluster.gc_grace_seconds`: payloads younger are never collected (both >=
    /// 1).
    int64_t gc_interval_seconds = 600;
    int64_t gc_grace_seconds = 3600;
  };
  std::optional<Cluster> cluster;
  /// `cache.capacity`: disk capacity limit in bytes; 0 = unlimited.
  int64_t capacity = 0;

  /// `cache.eviction.policy`.
  EvictionPolicy eviction_policy = EvictionPolicy::kLru;
  /// `cache.eviction.max_memory` in bytes (the memory tier's default, 1 GiB).
  int64_t max_memory = kDefaultMaxMemoryBytes;
  /// `cache.eviction.max_objects`; 0 = unlimited.
  int64_t max_objects = 0;
  /// `cache.eviction.memory_full` (memory-only storage).
  MemoryFull memory_full = MemoryFull::kEvict;

  /// `cache.tls`; present iff `tls` is set.
  std::optional<TlsConfig> tls;
  MetricsConfig metrics;
  LogConfig log;
  /// `cache.shutdown_grace_seconds`: how long in-flight calls may run after SIGTERM.
  double shutdown_grace_seconds = 20;

  /// `cache.limits` (config/security_config.h, docs/security.md).
  LimitsConfig limits;
  /// `cache.auth`; unset = no authentication (docs/security.md).
  std::optional<AuthConfig> auth;

  /// Non-fatal findings (unknown keys, ignored settings), to be logged at startup.
  std::vector<std::string> warnings;
};

/// Command-line overrides: flag (as in the option table, e.g. "--max-memory") → value.
/// Empty values are not given.
using ConfigOverrides = std::map<std::string, std::string, std::less<>>;

/// The process environment as a map (tests pass their own).
using Environment = std::map<std::string, std::string, std::less<>>;

/// Reads `environ` into an Environment.
Environment CurrentEnvironment();

/// Finds the configuration file: `explicit_path` if given (it must exist), else
/// `$HOME/.flame/flame-cluster.yaml` (HOME from `env`), else `system_path`, else "" (use
/// the built-in default). A candidate that exists but is not a regular file is an error.
arrow::Result<std::string> FindConfigFile(
    const std::string& explicit_path, const Environment& env,
    std::string_view system_path = kSystemConfigPath);

/// Applies the YAML document `yaml` (the whole flame-cluster.yaml) to `config`; `source`
/// names it in messages. Only `cache:` is read; it must be present.
arrow::Status ApplyYaml(std::string_view yaml, const std::string& source, Config* config);

/// Applies FLAME_HOME and FLAME_CACHE_* variables (empty values are ignored).
arrow::Status ApplyEnvironment(const Environment& env, Config* config);

/// Applies command-line overrides (flags of the option table; an unknown flag is an
/// error).
arrow::Status ApplyOverrides(const ConfigOverrides& overrides, Config* config);

/// The storage URL used when no configuration file exists: `fs://cache` under $FLAME_HOME
/// when that is set, else `$HOME/.flame/cache`, else `/var/lib/flame/cache`.
std::string DefaultStorage(const Environment& env);

/// The whole pipeline: find the file, read it (or take the built-in default), apply the
/// environment and the overrides, validate. The result is ready to use.
arrow::Result<Config> LoadConfig(const std::string& explicit_path, const Environment& env,
                                 const ConfigOverrides& overrides,
                                 std::string_view system_path = kSystemConfigPath);

/// Checks cross-field rules (TLS scheme needs cert and key, etc.).
arrow::Status Validate(const Config& config);

/// True when `endpoint`'s scheme means TLS (grpcs, grpc+tls, https).
bool EndpointUsesTls(std::string_view endpoint);

/// The effective configuration as a `flame-cluster.yaml` document that loads back to the
/// same values (used by --check-config).
std::string FormatConfig(const Config& config);

}  // namespace foc
