#include "config/options.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "protocol/endpoint.h"

namespace foc {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

namespace {

arrow::Status Bad(std::string_view where, std::string_view value, std::string_view why) {
  return arrow::Status::Invalid(where, ": invalid value '", value, "': ", why);
}

// ---- parsers (one per kind of value)
// ----------------------------------------------------

arrow::Result<int64_t> WholeNumber(std::string_view where, std::string_view text,
                                   int64_t min, int64_t max) {
  const std::string t = Trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v < min ||
      v > max) {
    if (max == INT64_MAX) {
      return Bad(where, text, "expected a whole number >= " + std::to_string(min));
    }
    return Bad(where, text,
               "expected a whole number from " + std::to_string(min) + " to " +
                   std::to_string(max));
  }
  return v;
}

arrow::Result<int64_t> Size(std::string_view where, std::string_view text,
                            int64_t min_bytes) {
  auto r = ParseSize(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  if (*r < min_bytes) {
    return Bad(where, text,
               min_bytes == 1 ? std::string("must be at least 1 byte")
                              : "must be at least " + FormatSize(min_bytes));
  }
  return *r;
}

arrow::Result<double> Seconds(std::string_view where, std::string_view text, double min,
                              bool min_allowed, double max) {
  const std::string t = Trim(text);
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || !std::isfinite(d) || d < min ||
      (!min_allowed && d == min) || d > max) {
    return Bad(where, text,
               std::string("expected seconds, ") +
                   (min_allowed ? "at least " : "more than ") + FormatSeconds(min) +
                   " and at most " + FormatSeconds(max));
  }
  return d;
}

arrow::Status Endpoint(std::string_view where, std::string_view text) {
  auto r = ParseEndpointUri(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  return arrow::Status::OK();
}

// A host or IP literal without a port (metrics.bind).
arrow::Result<std::string> HostOnly(std::string_view where, std::string_view text) {
  auto b = ParseBindAddress(text);
  if (!b.ok() || b->port >= 0) {
    return Bad(where, text, "expected a host or IP address without port");
  }
  return b->host;
}

arrow::Result<std::string> NonEmptyPath(std::string_view where, std::string_view text) {
  if (Trim(text).empty()) return Bad(where, text, "empty path");
  return std::string(text);
}

std::string Int(int64_t v) { return std::to_string(v); }
std::string PositiveInt(int64_t v) { return v > 0 ? std::to_string(v) : std::string(); }
std::string PositiveSize(int64_t v) { return v > 0 ? FormatSize(v) : std::string(); }

// `omit` helpers.
bool Never(const Config&) { return false; }
template <std::string (*kValue)(const Config&)>
bool IfEmpty(const Config& c) {
  return kValue(c).empty();
}

std::string EtcdValue(const Config& c) {
  std::string out;
  if (!c.cluster) return out;
  for (const auto& url : c.cluster->etcd) out += (out.empty() ? "" : ",") + url;
  return out;
}

// Declares the value function of a key once and lets `omit` refer to it.
#define FOC_VALUE(name, expr) \
  std::string name(const Config& c) { return expr; }

FOC_VALUE(EndpointValue, c.endpoint)
FOC_VALUE(NetworkInterfaceValue, c.network_interface)
FOC_VALUE(BindValue, c.bind)
FOC_VALUE(AdvertisedValue, c.advertised_endpoint)
FOC_VALUE(StorageValue, c.storage)
FOC_VALUE(UpstreamValue, c.upstream)
FOC_VALUE(PrefixValue, c.cluster ? c.cluster->prefix : std::string())
FOC_VALUE(GcIntervalValue,
          c.cluster ? Int(c.cluster->gc_interval_seconds) : std::string())
FOC_VALUE(GcGraceValue, c.cluster ? Int(c.cluster->gc_grace_seconds) : std::string())
FOC_VALUE(UpstreamTokenValue, c.upstream_token_file)
FOC_VALUE(UpstreamCaValue, c.upstream_ca_file)
FOC_VALUE(UpstreamCertValue, c.upstream_cert_file)
FOC_VALUE(UpstreamKeyValue, c.upstream_key_file)
FOC_VALUE(ZeroCopyValue, c.zero_copy ? "true" : "false")
FOC_VALUE(TransportValue, std::string(Name(c.transport)))
FOC_VALUE(CapacityValue, PositiveSize(c.capacity))
FOC_VALUE(PolicyValue, std::string(Name(c.eviction_policy)))
FOC_VALUE(MaxMemoryValue, FormatSize(c.max_memory))
FOC_VALUE(MaxObjectsValue, PositiveInt(c.max_objects))
FOC_VALUE(MemoryFullValue, std::string(Name(c.memory_full)))
FOC_VALUE(CertValue, c.tls ? c.tls->cert_file : std::string())
FOC_VALUE(KeyValue, c.tls ? c.tls->key_file : std::string())
FOC_VALUE(CaValue, c.tls ? c.tls->ca_file : std::string())
FOC_VALUE(MetricsPortValue, c.metrics.port ? Int(*c.metrics.port) : std::string())
FOC_VALUE(MetricsBindValue, c.metrics.bind)
FOC_VALUE(LogLevelValue, c.log.level)
FOC_VALUE(LogFileValue, c.log.file)
FOC_VALUE(LogMaxSizeValue, FormatSize(c.log.max_size))
FOC_VALUE(LogMaxFilesValue, Int(c.log.max_files))
FOC_VALUE(GraceValue, FormatSeconds(c.shutdown_grace_seconds))
FOC_VALUE(TokensFileValue, c.auth ? c.auth->tokens_file : std::string())
FOC_VALUE(AnonymousValue, c.auth ? c.auth->anonymous : std::string())
FOC_VALUE(UploadMemoryValue, PositiveSize(c.limits.upload_memory))
FOC_VALUE(CallsValue, Int(c.limits.max_concurrent_calls))
FOC_VALUE(UploadsValue, Int(c.limits.max_concurrent_uploads))
FOC_VALUE(ConnectionsValue, Int(c.limits.max_connections))
FOC_VALUE(IdleValue, FormatSeconds(c.limits.idle_connection_seconds))
FOC_VALUE(StalledValue, FormatSeconds(c.limits.stalled_stream_seconds))
FOC_VALUE(HttpTimeoutValue, FormatSeconds(c.limits.http_timeout_seconds))
FOC_VALUE(HttpThreadsValue, Int(c.limits.http_threads))
#undef FOC_VALUE

// `limits` print only what differs from the defaults, so that a file without `limits`
// prints (and loads back) as it was.
template <std::string (*kValue)(const Config&)>
bool IfDefault(const Config& c) {
  static const std::string kDefault = kValue(Config{});
  return kValue(c) == kDefault;
}

// network_interface is printed only when configured: the server treats a configured
// pattern that matches nothing differently from the default one (src/server/listen.cc).
bool NetworkInterfaceOmitted(const Config& c) { return !c.network_interface_set; }

using Set = arrow::Status (*)(const std::string&, const std::string&, Config*);

// Sets a limits count (whole number in [kMin, kMax]).
template <int64_t LimitsConfig::*kField, int64_t kMin, int64_t kMax>
arrow::Status SetLimitCount(const std::string& w, const std::string& v, Config* c) {
  ARROW_ASSIGN_OR_RAISE(c->limits.*kField, WholeNumber(w, v, kMin, kMax));
  return arrow::Status::OK();
}

// Sets limits seconds: more than 0, at most a week.
template <double LimitsConfig::*kField>
arrow::Status SetLimitSeconds(const std::string& w, const std::string& v, Config* c) {
  ARROW_ASSIGN_OR_RAISE(c->limits.*kField, Seconds(w, v, 0, false, 86400 * 7));
  return arrow::Status::OK();
}

// Sets a node tier's upstream credential file (cache.upstream_*_file).
template <std::string Config::*kField>
arrow::Status SetUpstreamFile(const std::string& w, const std::string& v, Config* c) {
  ARROW_ASSIGN_OR_RAISE(c->*kField, NonEmptyPath(w, v));
  return arrow::Status::OK();
}

// Sets a cluster duration in whole seconds, at least 1.
template <int64_t Config::Cluster::*kField>
arrow::Status SetClusterSeconds(const std::string& w, const std::string& v, Config* c) {
  if (!c->cluster) c->cluster = Config::Cluster{};
  ARROW_ASSIGN_OR_RAISE(c->cluster.value().*kField,
                        WholeNumber(w, v, 1, int64_t{86400} * 365));
  return arrow::Status::OK();
}

template <std::string TlsConfig::*kField>
arrow::Status SetTlsFile(const std::string& w, const std::string& v, Config* c) {
  if (!c->tls) c->tls = TlsConfig{};
  ARROW_ASSIGN_OR_RAISE(c->tls.value().*kField, NonEmptyPath(w, v));
  return arrow::Status::OK();
}

const std::vector<Option> kOptions = {
    {"endpoint", "", "--endpoint", "`grpc://127.0.0.1:9090`",
     "grpc://host:port or grpcs:// / grpc+tls:// (port 0 = any free)",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_RETURN_NOT_OK(Endpoint(w, v));
       c->endpoint = v;
       return arrow::Status::OK();
     },
     EndpointValue, Never},
    {"network_interface", "FLAME_CACHE_NETWORK_INTERFACE", "--network-interface",
     "`eth0`", "regex matched against whole interface names",
     [](const std::string& w, const std::string& v, Config* c) {
       if (v.empty()) return Bad(w, v, "empty interface pattern");
       c->network_interface = v;
       c->network_interface_set = true;
       return arrow::Status::OK();
     },
     NetworkInterfaceValue, NetworkInterfaceOmitted},
    {"bind", "FLAME_CACHE_BIND", "--bind", "derived",
     "address to listen on (host, host:port, [v6]:port)",
     [](const std::string& w, const std::string& v, Config* c) {
       if (auto r = ParseBindAddress(v); !r.ok()) return Bad(w, v, r.status().message());
       c->bind = v;
       return arrow::Status::OK();
     },
     BindValue, IfEmpty<BindValue>},
    {"advertised_endpoint", "FLAME_CACHE_ADVERTISED_ENDPOINT", "--advertise", "derived",
     "URI for clients",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_RETURN_NOT_OK(Endpoint(w, v));
       c->advertised_endpoint = v;
       return arrow::Status::OK();
     },
     AdvertisedValue, IfEmpty<AdvertisedValue>},
    {"storage", "FLAME_CACHE_STORAGE", "--storage", "file: `none`; no file: see above",
     "none, fs://<path>, file://<path>, s3://<bucket>/<prefix>?... or a path",
     [](const std::string& w, const std::string& v, Config* c) {
       if (Trim(v).empty()) {
         c->warnings.push_back(w + " is empty: objects are kept in memory only");
         c->storage = "none";
         return arrow::Status::OK();
       }
       c->storage = v;
       return arrow::Status::OK();
     },
     StorageValue, Never},
    {"upstream", "FLAME_CACHE_UPSTREAM", "--upstream", "none",
     "run as a node-local tier of this server (grpc://...)",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string t = Trim(v);
       if (!t.empty()) ARROW_RETURN_NOT_OK(Endpoint(w, t));
       c->upstream = t;
       return arrow::Status::OK();
     },
     UpstreamValue, IfEmpty<UpstreamValue>},
    {"upstream_token_file", "", "", "none",
     "node tier: file whose first line is the bearer token for the upstream",
     SetUpstreamFile<&Config::upstream_token_file>, UpstreamTokenValue,
     IfEmpty<UpstreamTokenValue>},
    {"upstream_ca_file", "", "", "system roots",
     "node tier: PEM roots verifying a TLS upstream",
     SetUpstreamFile<&Config::upstream_ca_file>, UpstreamCaValue,
     IfEmpty<UpstreamCaValue>},
    {"upstream_cert_file", "", "", "none",
     "node tier: client certificate for an mTLS upstream",
     SetUpstreamFile<&Config::upstream_cert_file>, UpstreamCertValue,
     IfEmpty<UpstreamCertValue>},
    {"upstream_key_file", "", "", "none", "node tier: client key for an mTLS upstream",
     SetUpstreamFile<&Config::upstream_key_file>, UpstreamKeyValue,
     IfEmpty<UpstreamKeyValue>},
    {"zero_copy", "", "", "`true`",
     "offer MAP (same-machine zero copy) to loopback clients",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string b = Lower(Trim(v));
       if (b == "true" || b == "yes" || b == "on") {
         c->zero_copy = true;
       } else if (b == "false" || b == "no" || b == "off") {
         c->zero_copy = false;
       } else {
         return Bad(w, v, "expected true or false");
       }
       return arrow::Status::OK();
     },
     ZeroCopyValue, IfDefault<ZeroCopyValue>},
    {"transport", "FLAME_CACHE_TRANSPORT", "--transport", "`auto`",
     "gRPC server of Arrow Flight: auto, callback or arrow",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string t = Lower(Trim(v));
       for (Transport candidate :
            {Transport::kAuto, Transport::kCallback, Transport::kArrow}) {
         if (t == Name(candidate)) {
           c->transport = candidate;
           return arrow::Status::OK();
         }
       }
       return Bad(w, v, "expected auto, callback or arrow");
     },
     TransportValue, IfDefault<TransportValue>},
    {"cluster.etcd", "FLAME_CACHE_ETCD", "", "none (single server)",
     "etcd client URLs (comma-separated)",
     [](const std::string& w, const std::string& v, Config* c) {
       if (!c->cluster) c->cluster = Config::Cluster{};
       c->cluster->etcd.clear();
       std::string_view rest = v;
       while (!rest.empty()) {
         const size_t comma = rest.find(',');
         std::string url = Trim(rest.substr(0, comma));
         rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
         if (url.empty()) continue;
         if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
           return Bad(w, url, "expected an etcd client URL (http://host:port)");
         c->cluster->etcd.push_back(std::move(url));
       }
       return arrow::Status::OK();
     },
     EtcdValue, IfEmpty<PrefixValue>, /*list=*/true},
    {"cluster.prefix", "", "", "`/flame-object-cache`", "etcd key prefix of the cluster",
     [](const std::string& w, const std::string& v, Config* c) {
       if (v.empty() || v.front() != '/')
         return Bad(w, v, "expected an etcd key prefix starting with '/'");
       if (!c->cluster) c->cluster = Config::Cluster{};
       c->cluster->prefix = v;
       return arrow::Status::OK();
     },
     PrefixValue, IfEmpty<PrefixValue>},
    {"cluster.gc_interval_seconds", "", "", "`600`",
     "how often a member tries to sweep orphan payloads",
     SetClusterSeconds<&Config::Cluster::gc_interval_seconds>, GcIntervalValue,
     IfEmpty<PrefixValue>},
    {"cluster.gc_grace_seconds", "", "", "`3600`",
     "payloads younger than this are never collected",
     SetClusterSeconds<&Config::Cluster::gc_grace_seconds>, GcGraceValue,
     IfEmpty<PrefixValue>},
    {"capacity", "FLAME_CACHE_CAPACITY", "--capacity", "unlimited",
     "storage capacity (disk or S3), e.g. 100G; LRU objects are evicted to stay within",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->capacity, Size(w, v, 1));
       return arrow::Status::OK();
     },
     CapacityValue, IfEmpty<CapacityValue>},
    {"eviction.policy", "FLAME_CACHE_EVICTION_POLICY", "--eviction-policy", "`lru`",
     "lru or none",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string p = Lower(Trim(v));
       if (p == Name(EvictionPolicy::kLru)) {
         c->eviction_policy = EvictionPolicy::kLru;
       } else if (p == Name(EvictionPolicy::kNone)) {
         c->eviction_policy = EvictionPolicy::kNone;
       } else {
         return Bad(w, v, "expected lru or none");
       }
       return arrow::Status::OK();
     },
     PolicyValue, Never},
    {"eviction.max_memory", "FLAME_CACHE_MAX_MEMORY", "--max-memory", "`1G`",
     "memory limit, e.g. 1G",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->max_memory, Size(w, v, 1));
       return arrow::Status::OK();
     },
     MaxMemoryValue, Never},
    {"eviction.max_objects", "FLAME_CACHE_MAX_OBJECTS", "--max-objects", "unlimited",
     "resident object limit (null = unlimited)",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string t = Lower(Trim(v));
       if (t.empty() || t == "null" || t == "~") {  // Helm renders `null`
         c->max_objects = 0;
         return arrow::Status::OK();
       }
       ARROW_ASSIGN_OR_RAISE(c->max_objects, WholeNumber(w, v, 1, INT64_MAX));
       return arrow::Status::OK();
     },
     MaxObjectsValue, IfEmpty<MaxObjectsValue>},
    {"eviction.memory_full", "FLAME_CACHE_MEMORY_FULL", "--memory-full", "`evict`",
     "evict or refuse (memory-only storage)",
     [](const std::string& w, const std::string& v, Config* c) {
       const std::string p = Lower(Trim(v));
       if (p == Name(MemoryFull::kEvict)) {
         c->memory_full = MemoryFull::kEvict;
       } else if (p == Name(MemoryFull::kRefuse)) {
         c->memory_full = MemoryFull::kRefuse;
       } else {
         return Bad(w, v, "expected evict or refuse");
       }
       return arrow::Status::OK();
     },
     MemoryFullValue, Never},
    {"tls.cert_file", "", "--tls-cert", "—", "PEM certificate chain",
     SetTlsFile<&TlsConfig::cert_file>, CertValue, IfEmpty<CertValue>},
    {"tls.key_file", "", "--tls-key", "—", "PEM private key",
     SetTlsFile<&TlsConfig::key_file>, KeyValue, IfEmpty<KeyValue>},
    {"tls.ca_file", "", "--tls-ca", "—", "PEM CA bundle (requires client certificates)",
     SetTlsFile<&TlsConfig::ca_file>, CaValue, IfEmpty<CaValue>},
    {"metrics.port", "FLAME_CACHE_METRICS_PORT", "--metrics-port",
     "no file: `9091`; file: off",
     "HTTP port of /metrics, /health and the status page (0 = any free port)",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(auto port, WholeNumber(w, v, 0, 65535));
       c->metrics.port = static_cast<int>(port);
       // A port somebody chose: one that cannot be bound stops the start (only the
       // built-in default is best effort, LoadConfig).
       c->metrics.best_effort = false;
       return arrow::Status::OK();
     },
     MetricsPortValue, IfEmpty<MetricsPortValue>},
    {"metrics.bind", "", "--metrics-bind",
     "no file: `127.0.0.1`; file: the Flight bind host",
     "address of the metrics endpoint",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->metrics.bind, HostOnly(w, v));
       return arrow::Status::OK();
     },
     MetricsBindValue, IfEmpty<MetricsBindValue>},
    {"log.level", "FLAME_CACHE_LOG_LEVEL", "--log-level", "`info`",
     "trace|debug|info|warn|error|critical|off",
     [](const std::string& w, const std::string& v, Config* c) {
       auto r = ParseLogLevel(v);
       if (!r.ok()) return Bad(w, v, r.status().message());
       c->log.level = *r;
       return arrow::Status::OK();
     },
     LogLevelValue, Never},
    {"log.file", "FLAME_CACHE_LOG_FILE", "--log-file", "none",
     "also log to this file (relative = under $FLAME_HOME)",
     [](const std::string&, const std::string& v, Config* c) {
       c->log.file = v;
       return arrow::Status::OK();
     },
     LogFileValue, IfEmpty<LogFileValue>},
    {"log.max_size", "", "", "`100M`", "rotate the log file at this size",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->log.max_size, Size(w, v, 1));
       return arrow::Status::OK();
     },
     LogMaxSizeValue, Never},
    {"log.max_files", "", "", "`5`", "rotated log files kept",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(auto n, WholeNumber(w, v, 1, 1000));
       c->log.max_files = static_cast<int>(n);
       return arrow::Status::OK();
     },
     LogMaxFilesValue, Never},
    {"shutdown_grace_seconds", "FLAME_CACHE_SHUTDOWN_GRACE_SECONDS", "--shutdown-grace",
     "`20`", "drain time after SIGTERM/SIGINT (0-3600)",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->shutdown_grace_seconds, Seconds(w, v, 0, true, 3600));
       return arrow::Status::OK();
     },
     GraceValue, Never},
    {"auth.tokens_file", "", "", "—", "identities, token digests and grants",
     [](const std::string& w, const std::string& v, Config* c) {
       if (!c->auth) c->auth = AuthConfig{};
       ARROW_ASSIGN_OR_RAISE(c->auth->tokens_file, NonEmptyPath(w, v));
       return arrow::Status::OK();
     },
     TokensFileValue, IfEmpty<TokensFileValue>},
    {"auth.anonymous", "", "", "`none`", "none, read or write",
     [](const std::string& w, const std::string& v, Config* c) {
       if (v != "none" && v != "read" && v != "write") {
         return Bad(w, v, "expected none, read or write");
       }
       if (!c->auth) c->auth = AuthConfig{};
       c->auth->anonymous = v;
       return arrow::Status::OK();
     },
     AnonymousValue, IfEmpty<AnonymousValue>},
    {"limits.upload_memory", "", "",
     "memory-only with eviction: twice `eviction.max_memory`; otherwise the larger of "
     "twice `max_memory` and `4G`",
     "bytes all uploads being received may hold together",
     [](const std::string& w, const std::string& v, Config* c) {
       ARROW_ASSIGN_OR_RAISE(c->limits.upload_memory, Size(w, v, int64_t{1} << 20));
       return arrow::Status::OK();
     },
     UploadMemoryValue, IfEmpty<UploadMemoryValue>},
    {"limits.max_concurrent_calls", "", "", "`512`", "Flight calls at once",
     SetLimitCount<&LimitsConfig::max_concurrent_calls, 1, 100000>, CallsValue,
     IfDefault<CallsValue>},
    {"limits.max_concurrent_uploads", "", "", "`64`", "DoPut streams at once",
     SetLimitCount<&LimitsConfig::max_concurrent_uploads, 1, 100000>, UploadsValue,
     IfDefault<UploadsValue>},
    {"limits.max_connections", "", "", "`1024`", "client connections",
     SetLimitCount<&LimitsConfig::max_connections, 1, 1000000>, ConnectionsValue,
     IfDefault<ConnectionsValue>},
    {"limits.idle_connection_seconds", "", "", "`300`",
     "a connection without calls for this long is closed",
     SetLimitSeconds<&LimitsConfig::idle_connection_seconds>, IdleValue,
     IfDefault<IdleValue>},
    {"limits.stalled_stream_seconds", "", "", "`60`",
     "a stream that moves no message for this long is cut",
     SetLimitSeconds<&LimitsConfig::stalled_stream_seconds>, StalledValue,
     IfDefault<StalledValue>},
    {"limits.http_timeout_seconds", "", "", "`5`", "metrics/health I/O timeout",
     SetLimitSeconds<&LimitsConfig::http_timeout_seconds>, HttpTimeoutValue,
     IfDefault<HttpTimeoutValue>},
    {"limits.http_threads", "", "", "`4`", "metrics/health worker threads",
     SetLimitCount<&LimitsConfig::http_threads, 1, 256>, HttpThreadsValue,
     IfDefault<HttpThreadsValue>},
};

const std::vector<OptionSection> kSections = {
    {"tls", [](Config* c) { c->tls = TlsConfig{}; },
     [](const std::string& w, const Config& c) {
       if (c.tls->cert_file.empty() || c.tls->key_file.empty()) {
         return arrow::Status::Invalid(w, ": cert_file and key_file are both required");
       }
       return arrow::Status::OK();
     }},
    {"cluster", [](Config* c) { c->cluster = Config::Cluster{}; }, nullptr},
    {"auth", [](Config* c) { c->auth = AuthConfig{}; }, nullptr},
    {"pprof", nullptr, nullptr, /*ignored=*/true, "—"},
};

}  // namespace

std::string FormatSeconds(double seconds) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), seconds);
  if (ec != std::errc()) return std::to_string(seconds);
  return std::string(buf, end);
}

std::string_view Name(Transport transport) {
  switch (transport) {
    case Transport::kCallback:
      return "callback";
    case Transport::kArrow:
      return "arrow";
    case Transport::kAuto:
      break;
  }
  return "auto";
}

std::string_view Name(EvictionPolicy policy) {
  return policy == EvictionPolicy::kNone ? "none" : "lru";
}

std::string_view Name(MemoryFull policy) {
  return policy == MemoryFull::kRefuse ? "refuse" : "evict";
}

const std::vector<Option>& ConfigOptions() { return kOptions; }
const std::vector<OptionSection>& ConfigSections() { return kSections; }

}  // namespace foc
