#include "config/config.h"

#include <sys/stat.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "protocol/endpoint.h"

extern char** environ;

namespace foc {

namespace {

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

arrow::Status Bad(std::string_view where, std::string_view value, std::string_view why) {
  return arrow::Status::Invalid(where, ": invalid value '", value, "': ", why);
}

arrow::Result<int64_t> ParseCount(std::string_view where, std::string_view text) {
  std::string t = Trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v < 1) {
    return Bad(where, text, "expected a whole number >= 1");
  }
  return v;
}

arrow::Result<int64_t> ParsePositiveSize(std::string_view where, std::string_view text) {
  auto r = ParseSize(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  if (*r < 1) return Bad(where, text, "must be at least 1 byte");
  return *r;
}

arrow::Result<int> ParsePortValue(std::string_view where, std::string_view text) {
  std::string t = Trim(text);
  int v = -1;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v < 0 ||
      v > 65535) {
    return Bad(where, text, "expected a port number 0-65535");
  }
  return v;
}

arrow::Result<std::string> ParsePolicy(std::string_view where, std::string_view text) {
  std::string p = Lower(Trim(text));
  if (p == "lru" || p == "none") return p;
  return Bad(where, text, "expected lru or none");
}

arrow::Result<std::string> ParseMemoryFull(std::string_view where,
                                           std::string_view text) {
  std::string p = Lower(Trim(text));
  if (p == "evict" || p == "refuse") return p;
  return Bad(where, text, "expected evict or refuse");
}

arrow::Status CheckEndpoint(std::string_view where, std::string_view text) {
  auto r = ParseEndpointUri(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  return arrow::Status::OK();
}

arrow::Status CheckBind(std::string_view where, std::string_view text) {
  auto r = ParseBindAddress(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  return arrow::Status::OK();
}

arrow::Result<std::string> CheckLevel(std::string_view where, std::string_view text) {
  auto r = ParseLogLevel(text);
  if (!r.ok()) return Bad(where, text, r.status().message());
  return *r;
}

arrow::Result<double> ParseGrace(std::string_view where, std::string_view text) {
  std::string t = Trim(text);
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || !std::isfinite(d) || d < 0 || d > 3600) {
    return Bad(where, text, "expected seconds between 0 and 3600");
  }
  return d;
}

// ---- YAML
// -------------------------------------------------------------------------------

// The scalar text of `node`, or an error naming `key` when it is a map or a list.
arrow::Result<std::string> Scalar(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return std::string();
  return arrow::Status::Invalid(key, ": expected a single value, found a ",
                                node.IsMap() ? "mapping" : "list");
}

using Handler = std::function<arrow::Status(const YAML::Node&, const std::string& key)>;

// Walks the mapping `node` (named `prefix`), calling the handler of each known key and
// warning about the others.
arrow::Status WalkMap(const YAML::Node& node, const std::string& prefix,
                      const std::map<std::string, Handler>& handlers, Config* config) {
  if (node.IsNull()) return arrow::Status::OK();
  if (!node.IsMap()) return arrow::Status::Invalid(prefix, ": expected a mapping");
  for (const auto& entry : node) {
    std::string name = entry.first.Scalar();
    std::string key = prefix + "." + name;
    auto it = handlers.find(name);
    if (it == handlers.end()) {
      config->warnings.push_back("unknown configuration key '" + key + "' ignored");
      continue;
    }
    ARROW_RETURN_NOT_OK(it->second(entry.second, key));
  }
  return arrow::Status::OK();
}

arrow::Status ApplyCacheSection(const YAML::Node& cache, Config* c) {
  std::map<std::string, Handler> eviction = {
      {"policy",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->eviction_policy, ParsePolicy(k, v));
         return arrow::Status::OK();
       }},
      {"max_memory",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->max_memory, ParsePositiveSize(k, v));
         return arrow::Status::OK();
       }},
      {"max_objects",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         if (n.IsNull() || Lower(v) == "null" || v == "~") {  // Helm renders `null`
           c->max_objects = 0;
           return arrow::Status::OK();
         }
         ARROW_ASSIGN_OR_RAISE(c->max_objects, ParseCount(k, v));
         return arrow::Status::OK();
       }},
      {"memory_full",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->memory_full, ParseMemoryFull(k, v));
         return arrow::Status::OK();
       }},
  };
  auto tls_file = [c](std::string TlsConfig::*field) {
    return [c, field](const YAML::Node& n, const std::string& k) -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
      if (Trim(v).empty()) return Bad(k, v, "empty path");
      c->tls.value().*field = v;
      return arrow::Status::OK();
    };
  };
  std::map<std::string, Handler> tls = {{"cert_file", tls_file(&TlsConfig::cert_file)},
                                        {"key_file", tls_file(&TlsConfig::key_file)},
                                        {"ca_file", tls_file(&TlsConfig::ca_file)}};
  std::map<std::string, Handler> metrics = {
      {"port",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->metrics.port, ParsePortValue(k, v));
         return arrow::Status::OK();
       }},
      {"bind",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         auto b = ParseBindAddress(v);
         if (!b.ok() || b->port >= 0)
           return Bad(k, v, "expected a host or IP address without port");
         c->metrics.bind = b->host;
         return arrow::Status::OK();
       }},
  };
  std::map<std::string, Handler> cluster = {
      {"etcd",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         c->cluster->etcd.clear();
         if (n.IsScalar()) {
           c->cluster->etcd.push_back(Trim(n.Scalar()));
         } else if (n.IsSequence()) {
           for (const auto& e : n) {
             ARROW_ASSIGN_OR_RAISE(auto v, Scalar(e, k));
             c->cluster->etcd.push_back(Trim(v));
           }
         } else {
           return arrow::Status::Invalid(k, ": expected a list of etcd URLs");
         }
         for (const auto& url : c->cluster->etcd) {
           if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
             return Bad(k, url, "expected an etcd client URL (http://host:port)");
         }
         return arrow::Status::OK();
       }},
      {"prefix",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         if (v.empty() || v.front() != '/')
           return Bad(k, v, "expected an etcd key prefix starting with '/'");
         c->cluster->prefix = v;
         return arrow::Status::OK();
       }},
      {"gc_interval_seconds",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->cluster->gc_interval_seconds, ParseCount(k, v));
         return arrow::Status::OK();
       }},
      {"gc_grace_seconds",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->cluster->gc_grace_seconds, ParseCount(k, v));
         return arrow::Status::OK();
       }},
  };
  std::map<std::string, Handler> log = {
      {"level",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->log.level, CheckLevel(k, v));
         return arrow::Status::OK();
       }},
      {"file",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(c->log.file, Scalar(n, k));
         return arrow::Status::OK();
       }},
      {"max_size",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->log.max_size, ParsePositiveSize(k, v));
         return arrow::Status::OK();
       }},
      {"max_files",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(auto count, ParseCount(k, v));
         if (count > 1000) return Bad(k, v, "at most 1000");
         c->log.max_files = static_cast<int>(count);
         return arrow::Status::OK();
       }},
  };
  auto path_key = [c](std::string Config::*field) {
    return [c, field](const YAML::Node& n, const std::string& k) -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
      if (Trim(v).empty()) return Bad(k, v, "empty path");
      c->*field = Trim(v);
      return arrow::Status::OK();
    };
  };
  std::map<std::string, Handler> top = {
      {"endpoint",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_RETURN_NOT_OK(CheckEndpoint(k, v));
         c->endpoint = v;
         return arrow::Status::OK();
       }},
      {"network_interface",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         if (v.empty()) return Bad(k, v, "empty interface pattern");
         c->network_interface = v;
         c->network_interface_set = true;
         return arrow::Status::OK();
       }},
      {"storage",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         if (Trim(v).empty()) {
           c->warnings.push_back(k + " is empty: objects are kept in memory only");
           v = "none";
         }
         c->storage = v;
         return arrow::Status::OK();
       }},
      {"capacity",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->capacity, ParsePositiveSize(k, v));
         return arrow::Status::OK();
       }},
      {"bind",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_RETURN_NOT_OK(CheckBind(k, v));
         c->bind = v;
         return arrow::Status::OK();
       }},
      {"advertised_endpoint",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_RETURN_NOT_OK(CheckEndpoint(k, v));
         c->advertised_endpoint = v;
         return arrow::Status::OK();
       }},
      {"upstream",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         v = Trim(v);
         if (!v.empty()) ARROW_RETURN_NOT_OK(CheckEndpoint(k, v));
         c->upstream = v;
         return arrow::Status::OK();
       }},
      {"upstream_token_file", path_key(&Config::upstream_token_file)},
      {"upstream_ca_file", path_key(&Config::upstream_ca_file)},
      {"upstream_cert_file", path_key(&Config::upstream_cert_file)},
      {"upstream_key_file", path_key(&Config::upstream_key_file)},
      {"zero_copy",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         const std::string b = Lower(Trim(v));
         if (b == "true" || b == "yes" || b == "on") {
           c->zero_copy = true;
         } else if (b == "false" || b == "no" || b == "off") {
           c->zero_copy = false;
         } else {
           return Bad(k, v, "expected true or false");
         }
         return arrow::Status::OK();
       }},
      {"shutdown_grace_seconds",
       [c](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, Scalar(n, k));
         ARROW_ASSIGN_OR_RAISE(c->shutdown_grace_seconds, ParseGrace(k, v));
         return arrow::Status::OK();
       }},
      {"eviction",
       [c, &eviction](const YAML::Node& n, const std::string& k) {
         return WalkMap(n, k, eviction, c);
       }},
      {"tls",
       [c, &tls](const YAML::Node& n, const std::string& k) -> arrow::Status {
         c->tls = TlsConfig{};
         ARROW_RETURN_NOT_OK(WalkMap(n, k, tls, c));
         if (c->tls->cert_file.empty() || c->tls->key_file.empty()) {
           return arrow::Status::Invalid(k, ": cert_file and key_file are both required");
         }
         return arrow::Status::OK();
       }},
      {"metrics",
       [c, &metrics](const YAML::Node& n, const std::string& k) {
         return WalkMap(n, k, metrics, c);
       }},
      {"log", [c, &log](const YAML::Node& n,
                        const std::string& k) { return WalkMap(n, k, log, c); }},
      {"cluster",
       [c, &cluster](const YAML::Node& n, const std::string& k) {
         c->cluster = Config::Cluster{};
         return WalkMap(n, k, cluster, c);
       }},
      {"limits",
       [c](const YAML::Node& n, const std::string& k) {
         return ApplyLimitsYaml(n, k, &c->limits, &c->warnings);
       }},
      {"auth",
       [c](const YAML::Node& n, const std::string& k) {
         c->auth = AuthConfig{};
         return ApplyAuthYaml(n, k, &*c->auth, &c->warnings);
       }},
      {"pprof",
       [c](const YAML::Node&, const std::string& k) -> arrow::Status {
         c->warnings.push_back(
             k + " is not supported by this server and is ignored (see metrics)");
         return arrow::Status::OK();
       }},
  };
  return WalkMap(cache, "cache", top, c);
}

}  // namespace

// ---- sizes, levels
// ------------------------------------------------------------------------

arrow::Result<int64_t> ParseSize(std::string_view text) {
  std::string t = Trim(text);
  size_t split = 0;
  while (split < t.size() && !std::isalpha(static_cast<unsigned char>(t[split]))) ++split;
  std::string number = Trim(std::string_view(t).substr(0, split));
  std::string unit = Lower(std::string_view(t).substr(split));
  static const std::map<std::string, int> kShift = {
      {"", 0},    {"b", 0},    {"k", 10},  {"kb", 10},  {"ki", 10}, {"kib", 10},
      {"m", 20},  {"mb", 20},  {"mi", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
      {"gi", 30}, {"gib", 30}, {"t", 40},  {"tb", 40},  {"ti", 40}, {"tib", 40},
      {"p", 50},  {"pb", 50},  {"pi", 50}, {"pib", 50}};
  auto it = kShift.find(unit);
  if (it == kShift.end()) {
    return arrow::Status::Invalid("unknown size unit '", unit,
                                  "' (use B, K, M, G, T, P)");
  }
  if (number.empty()) return arrow::Status::Invalid("no number in size '", text, "'");
  for (char ch : number) {
    if (!std::isdigit(static_cast<unsigned char>(ch)) && ch != '.') {
      return arrow::Status::Invalid("'", number, "' is not a non-negative number");
    }
  }
  if (std::count(number.begin(), number.end(), '.') > 1 || number == ".") {
    return arrow::Status::Invalid("'", number, "' is not a number");
  }
  auto dot = number.find('.');
  std::string whole = number.substr(0, dot);
  // Integers are converted exactly; only a fractional part goes through long double.
  uint64_t w = 0;
  if (!whole.empty()) {
    auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
    if (ec != std::errc() || p != whole.data() + whole.size()) {
      return arrow::Status::Invalid("size '", text, "' is too large");
    }
  }
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (w > (kMax >> it->second))
    return arrow::Status::Invalid("size '", text, "' is too large");
  uint64_t bytes = w << it->second;
  if (dot != std::string::npos && dot + 1 < number.size()) {
    long double frac = std::stold("0" + number.substr(dot));
    auto extra = static_cast<uint64_t>(std::floor(frac * std::ldexp(1.0L, it->second)));
    if (bytes > kMax - extra)
      return arrow::Status::Invalid("size '", text, "' is too large");
    bytes += extra;
  }
  return static_cast<int64_t>(bytes);
}

std::string FormatSize(int64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (u < 5 && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

arrow::Result<std::string> ParseLogLevel(std::string_view text) {
  std::string l = Lower(Trim(text));
  if (l == "warning") l = "warn";
  if (l == "fatal") l = "critical";
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (kLevels.count(l)) return l;
  return arrow::Status::Invalid(
      "unknown log level (use trace, debug, info, warn, error, "
      "critical or off)");
}

bool EndpointUsesTls(std::string_view endpoint) {
  auto r = ParseEndpointUri(endpoint);
  return r.ok() && r->tls;
}

// ---- sources
// ------------------------------------------------------------------------------

Environment CurrentEnvironment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

namespace {

// 1 = regular file, 0 = absent, -1 = exists but not a regular file.
int FileKind(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return S_ISREG(st.st_mode) ? 1 : -1;
}

std::string Get(const Environment& env, std::string_view name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

}  // namespace

arrow::Result<std::string> FindConfigFile(const std::string& explicit_path,
                                          const Environment& env,
                                          std::string_view system_path) {
  if (!explicit_path.empty()) {
    if (FileKind(explicit_path) != 1) {
      return arrow::Status::Invalid("--config: ", explicit_path, " is not a file");
    }
    return explicit_path;
  }
  std::vector<std::string> candidates;
  if (std::string home = Get(env, "HOME"); !home.empty()) {
    candidates.push_back(home + "/.flame/flame-cluster.yaml");
  }
  candidates.emplace_back(system_path);
  for (const auto& path : candidates) {
    int kind = FileKind(path);
    if (kind == 1) return path;
    if (kind == -1)
      return arrow::Status::Invalid(path, " exists but is not a regular file");
  }
  return std::string();
}

arrow::Status ApplyYaml(std::string_view yaml, const std::string& source,
                        Config* config) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(source, ": not valid YAML: ", e.what());
  }
  if (!root.IsMap() || !root["cache"]) {
    return arrow::Status::Invalid(source,
                                  ": no 'cache:' section (the object cache reads its "
                                  "settings from cache: in flame-cluster.yaml)");
  }
  // Storage absent from a file means memory only, as upstream (§6.1).
  config->storage = "none";
  try {
    return ApplyCacheSection(root["cache"], config);
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(source, ": ", e.what());
  }
}

arrow::Status ApplyEnvironment(const Environment& env, Config* c) {
  auto var = [&](const char* name) { return Trim(Get(env, name)); };
  if (auto v = var("FLAME_HOME"); !v.empty()) c->flame_home = v;
  if (auto v = var("FLAME_CACHE_STORAGE"); !v.empty()) c->storage = v;
  if (auto v = var("FLAME_CACHE_ETCD"); !v.empty()) {
    if (!c->cluster) c->cluster = Config::Cluster{};
    c->cluster->etcd.clear();
    std::string_view rest = v;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string url = Trim(rest.substr(0, comma));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
      if (url.empty()) continue;
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        return Bad("FLAME_CACHE_ETCD", url,
                   "expected etcd client URLs (http://host:port)");
      c->cluster->etcd.push_back(std::move(url));
    }
  }
  if (auto v = var("FLAME_CACHE_UPSTREAM"); !v.empty()) {
    ARROW_RETURN_NOT_OK(CheckEndpoint("FLAME_CACHE_UPSTREAM", v));
    c->upstream = v;
  }
  if (auto v = var("FLAME_CACHE_EVICTION_POLICY"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->eviction_policy,
                          ParsePolicy("FLAME_CACHE_EVICTION_POLICY", v));
  }
  if (auto v = var("FLAME_CACHE_MAX_MEMORY"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->max_memory, ParsePositiveSize("FLAME_CACHE_MAX_MEMORY", v));
  }
  if (auto v = var("FLAME_CACHE_MAX_OBJECTS"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->max_objects, ParseCount("FLAME_CACHE_MAX_OBJECTS", v));
  }
  if (auto v = var("FLAME_CACHE_MEMORY_FULL"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->memory_full, ParseMemoryFull("FLAME_CACHE_MEMORY_FULL", v));
  }
  if (auto v = var("FLAME_CACHE_CAPACITY"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->capacity, ParsePositiveSize("FLAME_CACHE_CAPACITY", v));
  }
  if (auto v = var("FLAME_CACHE_BIND"); !v.empty()) {
    ARROW_RETURN_NOT_OK(CheckBind("FLAME_CACHE_BIND", v));
    c->bind = v;
  }
  if (auto v = var("FLAME_CACHE_ADVERTISED_ENDPOINT"); !v.empty()) {
    ARROW_RETURN_NOT_OK(CheckEndpoint("FLAME_CACHE_ADVERTISED_ENDPOINT", v));
    c->advertised_endpoint = v;
  }
  if (auto v = var("FLAME_CACHE_NETWORK_INTERFACE"); !v.empty()) {
    c->network_interface = v;
    c->network_interface_set = true;
  }
  if (auto v = var("FLAME_CACHE_METRICS_PORT"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->metrics.port, ParsePortValue("FLAME_CACHE_METRICS_PORT", v));
    c->metrics.best_effort = false;
  }
  if (auto v = var("FLAME_CACHE_SHUTDOWN_GRACE_SECONDS"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->shutdown_grace_seconds,
                          ParseGrace("FLAME_CACHE_SHUTDOWN_GRACE_SECONDS", v));
  }
  if (auto v = var("FLAME_CACHE_LOG_FILE"); !v.empty()) c->log.file = v;
  if (auto v = var("FLAME_CACHE_LOG_LEVEL"); !v.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->log.level, CheckLevel("FLAME_CACHE_LOG_LEVEL", v));
  }
  return arrow::Status::OK();
}

arrow::Status ApplyOverrides(const ConfigOverrides& o, Config* c) {
  if (!o.endpoint.empty()) {
    ARROW_RETURN_NOT_OK(CheckEndpoint("--endpoint", o.endpoint));
    c->endpoint = o.endpoint;
  }
  if (!o.bind.empty()) {
    ARROW_RETURN_NOT_OK(CheckBind("--bind", o.bind));
    c->bind = o.bind;
  }
  if (!o.advertised_endpoint.empty()) {
    ARROW_RETURN_NOT_OK(CheckEndpoint("--advertise", o.advertised_endpoint));
    c->advertised_endpoint = o.advertised_endpoint;
  }
  if (!o.network_interface.empty()) {
    c->network_interface = o.network_interface;
    c->network_interface_set = true;
  }
  if (!o.storage.empty()) c->storage = o.storage;
  if (!o.upstream.empty()) {
    ARROW_RETURN_NOT_OK(CheckEndpoint("--upstream", o.upstream));
    c->upstream = o.upstream;
  }
  if (!o.capacity.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->capacity, ParsePositiveSize("--capacity", o.capacity));
  }
  if (!o.eviction_policy.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->eviction_policy,
                          ParsePolicy("--eviction-policy", o.eviction_policy));
  }
  if (!o.max_memory.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->max_memory, ParsePositiveSize("--max-memory", o.max_memory));
  }
  if (!o.max_objects.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->max_objects, ParseCount("--max-objects", o.max_objects));
  }
  if (!o.memory_full.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->memory_full,
                          ParseMemoryFull("--memory-full", o.memory_full));
  }
  if (!o.log_level.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->log.level, CheckLevel("--log-level", o.log_level));
  }
  if (!o.log_file.empty()) c->log.file = o.log_file;
  if (!o.shutdown_grace.empty()) {
    ARROW_ASSIGN_OR_RAISE(c->shutdown_grace_seconds,
                          ParseGrace("--shutdown-grace", o.shutdown_grace));
  }
  if (o.metrics_port) {
    if (*o.metrics_port < 0 || *o.metrics_port > 65535) {
      return Bad("--metrics-port", std::to_string(*o.metrics_port), "expected 0-65535");
    }
    c->metrics.port = o.metrics_port;
    c->metrics.best_effort = false;
  }
  if (!o.metrics_bind.empty()) {
    auto b = ParseBindAddress(o.metrics_bind);
    if (!b.ok() || b->port >= 0)
      return Bad("--metrics-bind", o.metrics_bind, "expected a host");
    c->metrics.bind = b->host;
  }
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty() || !o.tls_ca_file.empty()) {
    if (!c->tls) c->tls = TlsConfig{};
    if (!o.tls_cert_file.empty()) c->tls->cert_file = o.tls_cert_file;
    if (!o.tls_key_file.empty()) c->tls->key_file = o.tls_key_file;
    if (!o.tls_ca_file.empty()) c->tls->ca_file = o.tls_ca_file;
  }
  return arrow::Status::OK();
}

std::string DefaultStorage(const Environment& env) {
  if (!Trim(Get(env, "FLAME_HOME")).empty()) return "fs://cache";
  if (std::string home = Get(env, "HOME"); !home.empty()) return home + "/.flame/cache";
  return "/var/lib/flame/cache";
}

arrow::Status Validate(const Config& c) {
  ARROW_ASSIGN_OR_RAISE(auto endpoint, ParseEndpointUri(c.endpoint));
  if (c.cluster) {
    if (c.cluster->etcd.empty()) {
      return arrow::Status::Invalid(
          "cache.cluster needs cache.cluster.etcd (or FLAME_CACHE_ETCD): the etcd client "
          "URLs");
    }
    if (c.storage.rfind("s3://", 0) != 0) {
      return arrow::Status::Invalid(
          "cache.cluster needs s3:// storage (a server's local disk is not shared), not "
          "cache.storage '",
          c.storage, "'");
    }
    if (!c.upstream.empty()) {
      return arrow::Status::Invalid(
          "cache.cluster and cache.upstream exclude each other: a node tier's upstream "
          "may "
          "be a cluster, a cluster member has no upstream");
    }
  }
  const bool upstream_credentials =
      !c.upstream_token_file.empty() || !c.upstream_ca_file.empty() ||
      !c.upstream_cert_file.empty() || !c.upstream_key_file.empty();
  if (upstream_credentials && c.upstream.empty()) {
    return arrow::Status::Invalid(
        "cache.upstream_token_file, upstream_ca_file, upstream_cert_file and "
        "upstream_key_file need cache.upstream (a node tier)");
  }
  if (c.upstream_cert_file.empty() != c.upstream_key_file.empty()) {
    return arrow::Status::Invalid(
        "cache.upstream_cert_file and cache.upstream_key_file are both required for a "
        "client certificate");
  }
  if ((!c.upstream_ca_file.empty() || !c.upstream_cert_file.empty()) &&
      !EndpointUsesTls(c.upstream)) {
    return arrow::Status::Invalid(
        "cache.upstream_ca_file and cache.upstream_cert_file need a TLS upstream "
        "(grpcs:// or grpc+tls://), not '",
        c.upstream, "'");
  }
  if (endpoint.tls) {
    if (!c.tls || c.tls->cert_file.empty() || c.tls->key_file.empty()) {
      return arrow::Status::Invalid(
          "cache.endpoint '", c.endpoint,
          "' uses TLS but cache.tls.cert_file and cache.tls.key_file "
          "are not configured");
    }
  }
  if (!c.advertised_endpoint.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto adv, ParseEndpointUri(c.advertised_endpoint));
    if (adv.tls != endpoint.tls) {
      return arrow::Status::Invalid("cache.advertised_endpoint '", c.advertised_endpoint,
                                    "' and cache.endpoint '", c.endpoint,
                                    "' disagree about TLS");
    }
  }
  if (c.tls && !c.tls->ca_file.empty() && !endpoint.tls) {
    return arrow::Status::Invalid(
        "cache.tls.ca_file '", c.tls->ca_file,
        "' requires a TLS endpoint (grpcs:// or grpc+tls://), not '", c.endpoint, "'");
  }
  return arrow::Status::OK();
}

arrow::Result<Config> LoadConfig(const std::string& explicit_path, const Environment& env,
                                 const ConfigOverrides& overrides,
                                 std::string_view system_path) {
  Config config;
  ARROW_ASSIGN_OR_RAISE(config.source, FindConfigFile(explicit_path, env, system_path));
  // A legacy RUST_LOG holding a bare level (deployments set RUST_LOG=info) counts below
  // the file's log.level; filter expressions are ignored.
  if (auto v = ParseLogLevel(Get(env, "RUST_LOG")); v.ok()) config.log.level = *v;
  if (config.source.empty()) {
    config.storage = DefaultStorage(env);
    config.metrics.port = kDefaultMetricsPort;
    config.metrics.bind = std::string(kDefaultMetricsBind);
    config.metrics.best_effort = true;
  } else {
    std::ifstream in(config.source);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return arrow::Status::IOError("cannot read ", config.source);
    ARROW_RETURN_NOT_OK(ApplyYaml(text.str(), config.source, &config));
  }
  ARROW_RETURN_NOT_OK(ApplyEnvironment(env, &config));
  ARROW_RETURN_NOT_OK(ApplyOverrides(overrides, &config));
  ARROW_RETURN_NOT_OK(Validate(config));
  if (config.tls && !EndpointUsesTls(config.endpoint)) {
    config.warnings.push_back("cache.tls is configured but cache.endpoint '" +
                              config.endpoint + "' is plaintext: TLS is off");
  }
  return config;
}

std::string FormatConfig(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "cache" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "endpoint" << YAML::Value << c.endpoint;
  if (c.network_interface_set) {
    out << YAML::Key << "network_interface" << YAML::Value << c.network_interface;
  }
  if (!c.bind.empty()) out << YAML::Key << "bind" << YAML::Value << c.bind;
  if (!c.advertised_endpoint.empty()) {
    out << YAML::Key << "advertised_endpoint" << YAML::Value << c.advertised_endpoint;
  }
  out << YAML::Key << "storage" << YAML::Value << c.storage;
  if (!c.upstream.empty()) out << YAML::Key << "upstream" << YAML::Value << c.upstream;
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{
                                        "upstream_token_file", &c.upstream_token_file},
                                    {"upstream_ca_file", &c.upstream_ca_file},
                                    {"upstream_cert_file", &c.upstream_cert_file},
                                    {"upstream_key_file", &c.upstream_key_file}}) {
    if (!value->empty()) out << YAML::Key << name << YAML::Value << *value;
  }
  if (!c.zero_copy) out << YAML::Key << "zero_copy" << YAML::Value << false;
  if (c.capacity > 0)
    out << YAML::Key << "capacity" << YAML::Value << FormatSize(c.capacity);
  out << YAML::Key << "shutdown_grace_seconds" << YAML::Value << c.shutdown_grace_seconds;
  out << YAML::Key << "eviction" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "policy" << YAML::Value << c.eviction_policy;
  out << YAML::Key << "max_memory" << YAML::Value << FormatSize(c.max_memory);
  if (c.max_objects > 0)
    out << YAML::Key << "max_objects" << YAML::Value << c.max_objects;
  out << YAML::Key << "memory_full" << YAML::Value << c.memory_full;
  out << YAML::EndMap;
  if (c.tls) {
    out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "cert_file" << YAML::Value << c.tls->cert_file;
    out << YAML::Key << "key_file" << YAML::Value << c.tls->key_file;
    if (!c.tls->ca_file.empty())
      out << YAML::Key << "ca_file" << YAML::Value << c.tls->ca_file;
    out << YAML::EndMap;
  }
  if (c.cluster) {
    out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "etcd" << YAML::Value << YAML::Flow << c.cluster->etcd;
    out << YAML::Key << "prefix" << YAML::Value << c.cluster->prefix;
    out << YAML::Key << "gc_interval_seconds" << YAML::Value
        << c.cluster->gc_interval_seconds;
    out << YAML::Key << "gc_grace_seconds" << YAML::Value << c.cluster->gc_grace_seconds;
    out << YAML::EndMap;
  }
  if (c.metrics.port || !c.metrics.bind.empty()) {
    out << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
    if (c.metrics.port) out << YAML::Key << "port" << YAML::Value << *c.metrics.port;
    if (!c.metrics.bind.empty())
      out << YAML::Key << "bind" << YAML::Value << c.metrics.bind;
    out << YAML::EndMap;
  }
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "level" << YAML::Value << c.log.level;
  if (!c.log.file.empty()) out << YAML::Key << "file" << YAML::Value << c.log.file;
  out << YAML::Key << "max_size" << YAML::Value << FormatSize(c.log.max_size);
  out << YAML::Key << "max_files" << YAML::Value << c.log.max_files;
  out << YAML::EndMap;
  EmitSecurityYaml(c.limits, c.auth ? &*c.auth : nullptr, &out);
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace foc
