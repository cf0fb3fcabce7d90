#include "config/security_config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

#include <yaml-cpp/yaml.h>

#include "config/config.h"  // ParseSize, FormatSize

namespace foc {
namespace {

arrow::Status Bad(std::string_view key, std::string_view value, std::string_view why) {
  return arrow::Status::Invalid(key, ": invalid value '", value, "': ", why);
}

arrow::Result<std::string> ScalarOf(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar()) return node.Scalar();
  return arrow::Status::Invalid(key, ": expected a single value");
}

arrow::Result<int64_t> WholeNumber(const YAML::Node& node, const std::string& key,
                                   int64_t min, int64_t max) {
  ARROW_ASSIGN_OR_RAISE(auto v, ScalarOf(node, key));
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || n < min ||
      n > max) {
    return Bad(key, v,
               "expected a whole number from " + std::to_string(min) + " to " +
                   std::to_string(max));
  }
  return n;
}

arrow::Result<double> Seconds(const YAML::Node& node, const std::string& key) {
  ARROW_ASSIGN_OR_RAISE(auto v, ScalarOf(node, key));
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(d) || d <= 0 || d > 86400 * 7) {
    return Bad(key, v, "expected seconds, more than 0 and at most 604800");
  }
  return d;
}

using Handler = std::function<arrow::Status(const YAML::Node&, const std::string&)>;

arrow::Status Walk(const YAML::Node& node, const std::string& prefix,
                   const std::map<std::string, Handler>& handlers,
                   std::vector<std::string>* warnings) {
  if (node.IsNull()) return arrow::Status::OK();
  if (!node.IsMap()) return arrow::Status::Invalid(prefix, ": expected a mapping");
  for (const auto& entry : node) {
    const std::string name = entry.first.Scalar();
    const std::string key = prefix + "." + name;
    auto it = handlers.find(name);
    if (it == handlers.end()) {
      warnings->push_back("unknown configuration key '" + key + "' ignored");
      continue;
    }
    ARROW_RETURN_NOT_OK(it->second(entry.second, key));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status ApplyLimitsYaml(const YAML::Node& node, const std::string& prefix,
                              LimitsConfig* l, std::vector<std::string>* warnings) {
  auto count = [](int64_t* field, int64_t min, int64_t max) -> Handler {
    return [=](const YAML::Node& n, const std::string& k) -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(*field, WholeNumber(n, k, min, max));
      return arrow::Status::OK();
    };
  };
  auto seconds = [](double* field) -> Handler {
    return [=](const YAML::Node& n, const std::string& k) -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(*field, Seconds(n, k));
      return arrow::Status::OK();
    };
  };
  const std::map<std::string, Handler> handlers = {
      {"upload_memory",
       [l](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, ScalarOf(n, k));
         auto size = ParseSize(v);
         if (!size.ok()) return Bad(k, v, size.status().message());
         if (*size < (int64_t{1} << 20)) return Bad(k, v, "must be at least 1M");
         l->upload_memory = *size;
         return arrow::Status::OK();
       }},
      {"max_concurrent_calls", count(&l->max_concurrent_calls, 1, 100000)},
      {"max_concurrent_uploads", count(&l->max_concurrent_uploads, 1, 100000)},
      {"max_connections", count(&l->max_connections, 1, 1000000)},
      {"idle_connection_seconds", seconds(&l->idle_connection_seconds)},
      {"stalled_stream_seconds", seconds(&l->stalled_stream_seconds)},
      {"http_timeout_seconds", seconds(&l->http_timeout_seconds)},
      {"http_threads", count(&l->http_threads, 1, 256)},
  };
  return Walk(node, prefix, handlers, warnings);
}

arrow::Status ApplyAuthYaml(const YAML::Node& node, const std::string& prefix,
                            AuthConfig* a, std::vector<std::string>* warnings) {
  const std::map<std::string, Handler> handlers = {
      {"tokens_file",
       [a](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(a->tokens_file, ScalarOf(n, k));
         if (a->tokens_file.empty()) return Bad(k, "", "empty path");
         return arrow::Status::OK();
       }},
      {"anonymous",
       [a](const YAML::Node& n, const std::string& k) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto v, ScalarOf(n, k));
         if (v != "none" && v != "read" && v != "write") {
           return Bad(k, v, "expected none, read or write");
         }
         a->anonymous = v;
         return arrow::Status::OK();
       }},
  };
  return Walk(node, prefix, handlers, warnings);
}

void EmitSecurityYaml(const LimitsConfig& l, const AuthConfig* auth, YAML::Emitter* out) {
  YAML::Emitter& o = *out;
  // Only what differs from the defaults, so that a file without `limits` prints (and
  // loads back) as it was.
  const LimitsConfig d;
  if (l.upload_memory != d.upload_memory ||
      l.max_concurrent_calls != d.max_concurrent_calls ||
      l.max_concurrent_uploads != d.max_concurrent_uploads ||
      l.max_connections != d.max_connections ||
      l.idle_connection_seconds != d.idle_connection_seconds ||
      l.stalled_stream_seconds != d.stalled_stream_seconds ||
      l.http_timeout_seconds != d.http_timeout_seconds ||
      l.http_threads != d.http_threads) {
    o << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
    if (l.upload_memory != d.upload_memory)
      o << YAML::Key << "upload_memory" << YAML::Value << FormatSize(l.upload_memory);
    auto count = [&](const char* key, int64_t v, int64_t dv) {
      if (v != dv) o << YAML::Key << key << YAML::Value << v;
    };
    auto seconds = [&](const char* key, double v, double dv) {
      if (v != dv) o << YAML::Key << key << YAML::Value << v;
    };
    count("max_concurrent_calls", l.max_concurrent_calls, d.max_concurrent_calls);
    count("max_concurrent_uploads", l.max_concurrent_uploads, d.max_concurrent_uploads);
    count("max_connections", l.max_connections, d.max_connections);
    seconds("idle_connection_seconds", l.idle_connection_seconds,
            d.idle_connection_seconds);
    seconds("stalled_stream_seconds", l.stalled_stream_seconds, d.stalled_stream_seconds);
    seconds("http_timeout_seconds", l.http_timeout_seconds, d.http_timeout_seconds);
    count("http_threads", l.http_threads, d.http_threads);
    o << YAML::EndMap;
  }
  if (auth) {
    o << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
    if (!auth->tokens_file.empty())
      o << YAML::Key << "tokens_file" << YAML::Value << auth->tokens_file;
    o << YAML::Key << "anonymous" << YAML::Value << auth->anonymous;
    o << YAML::EndMap;
  }
}

}  // namespace foc
