// The configuration blocks of docs/security.md: `cache.limits` (resource limits no client
// can step around) and `cache.auth` (authentication and per-app authorization). Parsed
// by the option table (config/options.cc) like every other key.
#pragma once

#include <cstdint>
#include <string>

namespace foc {

/// `cache.limits`. Every limit has a default that is on; see docs/operations.md.
struct LimitsConfig {
  /// `upload_memory`: bytes all uploads being received may hold together; 0 = automatic
  /// (memory-only storage with eviction: twice eviction.max_memory; otherwise the larger
  /// of twice max_memory and 4G; src/server/main.cc). At least 1M when set.
  int64_t upload_memory = 0;
  /// `max_concurrent_calls`: Flight calls served at once (each holds a gRPC thread).
  int64_t max_concurrent_calls = 512;
  /// `max_concurrent_uploads`: DoPut streams at once (a subset of the calls).
  int64_t max_concurrent_uploads = 64;
  /// `max_connections`: client connections; newer ones beyond are closed.
  int64_t max_connections = 1024;
  /// `idle_connection_seconds`: a connection without calls for this long is closed.
  double idle_connection_seconds = 300;
  /// `stalled_stream_seconds`: a DoPut or DoGet stream that moves no message for this
  /// long is cut (its connection is closed).
  double stalled_stream_seconds = 60;
  /// `http_timeout_seconds`: read/write timeout of the metrics/health endpoint.
  double http_timeout_seconds = 5;
  /// `http_threads`: worker threads of the metrics/health endpoint.
  int64_t http_threads = 4;
};

/// `cache.auth`; absent = no authentication (every client may do everything, as before).
struct AuthConfig {
  /// `tokens_file`: the YAML file of identities, token digests and grants
  /// (docs/security.md); relative paths are under $FLAME_HOME. Reloaded on SIGHUP.
  std::string tokens_file;
  /// `anonymous`: what a client without credentials may do on every app:
  /// "none", "read" or "write".
  std::string anonymous = "none";
};

}  // namespace foc
