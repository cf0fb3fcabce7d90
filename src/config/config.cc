#include "config/config.h"

#include <sys/stat.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/options.h"
#include "protocol/endpoint.h"

extern char** environ;

namespace foc {

namespace {

// ---- YAML: walks `cache:` along the option table
// ----------------------------------------

// The text of a YAML value for Option::set: a scalar as is, null as "", a list (for
// options that take one) joined with ','.
arrow::Result<std::string> ValueText(const YAML::Node& node, const Option& option,
                                     const std::string& where) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return std::string();
  if (option.list && node.IsSequence()) {
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar())
        return arrow::Status::Invalid(where, ": expected a list of values");
      joined += (joined.empty() ? "" : ",") + item.Scalar();
    }
    return joined;
  }
  if (option.list) return arrow::Status::Invalid(where, ": expected a list of values");
  return arrow::Status::Invalid(where, ": expected a single value, found a ",
                                node.IsMap() ? "mapping" : "list");
}

const Option* FindOption(std::string_view key) {
  for (const auto& o : ConfigOptions())
    if (o.key == key) return &o;
  return nullptr;
}

const OptionSection* FindSection(std::string_view key) {
  for (const auto& s : ConfigSections())
    if (s.key == key) return &s;
  return nullptr;
}

// True when some option lives under `prefix.` (eviction, log, limits, ...).
bool IsPrefix(std::string_view prefix) {
  for (const auto& o : ConfigOptions()) {
    if (o.key.size() > prefix.size() && o.key.substr(0, prefix.size()) == prefix &&
        o.key[prefix.size()] == '.')
      return true;
  }
  return false;
}

// Applies the mapping `node`, which is `cache.<path>` (`path` empty: `cache` itself).
arrow::Status WalkMap(const YAML::Node& node, const std::string& path, Config* c) {
  const std::string where = path.empty() ? "cache" : "cache." + path;
  if (node.IsNull()) return arrow::Status::OK();
  if (!node.IsMap()) return arrow::Status::Invalid(where, ": expected a mapping");
  for (const auto& entry : node) {
    const std::string key = (path.empty() ? "" : path + ".") + entry.first.Scalar();
    const std::string name = "cache." + key;
    if (const Option* option = FindOption(key)) {
      ARROW_ASSIGN_OR_RAISE(auto text, ValueText(entry.second, *option, name));
      ARROW_RETURN_NOT_OK(option->set(name, text, c));
    } else if (const OptionSection* section = FindSection(key)) {
      if (section->ignored) {
        c->warnings.push_back(name +
                              " is not supported by this server and is ignored (see "
                              "metrics)");
        continue;
      }
      if (section->enter) section->enter(c);
      ARROW_RETURN_NOT_OK(WalkMap(entry.second, key, c));
      if (section->leave) ARROW_RETURN_NOT_OK(section->leave(name, *c));
    } else if (IsPrefix(key)) {
      ARROW_RETURN_NOT_OK(WalkMap(entry.second, key, c));
    } else {
      c->warnings.push_back("unknown configuration key '" + name + "' ignored");
    }
  }
  return arrow::Status::OK();
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
    return WalkMap(root["cache"], "", config);
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(source, ": ", e.what());
  }
}

arrow::Status ApplyEnvironment(const Environment& env, Config* c) {
  if (auto v = Trim(Get(env, "FLAME_HOME")); !v.empty()) c->flame_home = v;
  for (const Option& option : ConfigOptions()) {
    if (option.env.empty()) continue;
    // Empty (or blank) variables are ignored, as upstream's FLAME_CACHE_STORAGE.
    const std::string v = Trim(Get(env, option.env));
    if (!v.empty()) ARROW_RETURN_NOT_OK(option.set(std::string(option.env), v, c));
  }
  return arrow::Status::OK();
}

arrow::Status ApplyOverrides(const ConfigOverrides& overrides, Config* c) {
  for (const auto& [flag, value] : overrides) {
    if (value.empty()) continue;
    const Option* option = nullptr;
    for (const Option& o : ConfigOptions())
      if (o.flag == flag) option = &o;
    if (option == nullptr) return arrow::Status::Invalid(flag, ": unknown option");
  }
  // In table order, so that the outcome does not depend on the map's.
  for (const Option& option : ConfigOptions()) {
    if (option.flag.empty()) continue;
    auto it = overrides.find(option.flag);
    if (it == overrides.end() || it->second.empty()) continue;
    ARROW_RETURN_NOT_OK(option.set(it->first, it->second, c));
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
  // A tree in table order (yaml-cpp keeps the insertion order of a mapping).
  YAML::Node cache(YAML::NodeType::Map);
  for (const Option& option : ConfigOptions()) {
    if (option.omit && option.omit(c)) continue;
    YAML::Node parent = cache;
    std::string_view rest = option.key;
    for (size_t dot; (dot = rest.find('.')) != std::string_view::npos;
         rest.remove_prefix(dot + 1)) {
      const std::string part(rest.substr(0, dot));
      if (!parent[part]) parent[part] = YAML::Node(YAML::NodeType::Map);
      parent.reset(parent[part]);
    }
    const std::string value = option.value(c);
    if (option.list) {
      YAML::Node list(YAML::NodeType::Sequence);
      std::string_view items = value;
      while (!items.empty()) {
        const size_t comma = items.find(',');
        list.push_back(std::string(items.substr(0, comma)));
        items.remove_prefix(comma == std::string_view::npos ? items.size() : comma + 1);
      }
      list.SetStyle(YAML::EmitterStyle::Flow);
      parent[std::string(rest)] = list;
    } else {
      parent[std::string(rest)] = value;
    }
  }
  YAML::Node root(YAML::NodeType::Map);
  root["cache"] = cache;
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace foc
