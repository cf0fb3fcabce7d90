// flame-object-cache: the standalone object cache server of Flame.
//
// Start-up: command line → configuration (file, environment, overrides; src/config/) →
// logs → storage and store → Flight server (TLS, metrics middleware) → metrics/health
// endpoint → the line `flame-object-cache listening on <uri>` on stdout (tests and
// scripts parse it) → serve until SIGTERM/SIGINT, then drain in-flight calls for at most
// the grace period, stop, flush the logs and exit 0. Exit codes: 0 clean, 1 runtime
// failure, 2 bad configuration.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <arrow/flight/server.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cluster/cluster_store.h"
#include "config/config.h"
#include "config/options.h"
#include "flight/auth.h"
#include "flight/call_guard.h"
#include "flight/flight_service.h"
#include "flight/metrics_middleware.h"
#include "flight/upload_limits.h"
#include "metrics/http_endpoint.h"
#include "metrics/metrics.h"
#include "metrics/status.h"
#include "node/upstream_store.h"
#include "protocol/endpoint.h"
#include "server/connection_watch.h"
#include "server/listen.h"
#include "storage/s3_storage.h"
#include "storage/storage_url.h"
#include "store/object_store.h"
#include "transport/callback_transport.h"

namespace {

namespace fl = arrow::flight;
constexpr int kExitFailure = 1;
constexpr int kExitBadConfig = 2;

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

arrow::Result<std::string> ReadFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return arrow::Status::IOError("cannot read ", key, " '", path, "'");
  }
  return text.str();
}

std::string Resolve(const std::string& flame_home, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(flame_home) / path).string();
}

arrow::Status InitLogging(const foc::Config& config) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stdout_sink_mt>());
  if (!config.log.file.empty()) {
    std::string path = Resolve(config.flame_home, config.log.file);
    try {
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          path, static_cast<size_t>(config.log.max_size),
          static_cast<size_t>(config.log.max_files)));
    } catch (const std::exception& e) {
      return arrow::Status::IOError("cache.log.file '", path, "': ", e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("foc", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %-5l foc: %v");
  logger->set_level(spdlog::level::from_str(config.log.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return arrow::Status::OK();
}

std::string Describe(const foc::StorageLocation& where) {
  if (!where.s3_uri.empty()) return "S3 at " + foc::RedactS3Uri(where.s3_uri);
  return where.memory_only ? std::string("memory only (storage: none)")
                           : "disk at " + where.path;
}

// The store this server serves: its own (storage engine + ObjectStore), or, with
// `cache.upstream`, a node-local tier whose versions are the upstream's.
arrow::Result<std::unique_ptr<foc::Store>> OpenStore(const foc::Config& config,
                                                     const std::string& advertised) {
  if (config.cluster) {
    foc::cluster::ClusterStoreOptions options;
    options.etcd = config.cluster->etcd;
    options.prefix = config.cluster->prefix;
    options.storage_uri = config.storage;
    options.advertised_endpoint = advertised;
    options.max_memory_bytes = config.max_memory;
    options.gc_interval = std::chrono::seconds(config.cluster->gc_interval_seconds);
    options.gc_grace = std::chrono::seconds(config.cluster->gc_grace_seconds);
    auto store = foc::cluster::ClusterStore::Open(std::move(options));
    if (!store.ok()) {
      return store.status().WithMessage(
          "cannot join the cluster (etcd ", config.cluster->etcd.front(), ", prefix ",
          config.cluster->prefix, "): ", store.status().message());
    }
    return std::unique_ptr<foc::Store>(*std::move(store));
  }
  if (!config.upstream.empty()) {
    foc::ClientOptions upstream;
    upstream.endpoint = config.upstream;
    upstream.cache_max_bytes = config.max_memory;     // 0: unbounded, as the store's
    upstream.cache_max_entries = config.max_objects;  // 0: unbounded
    // Credentials for an upstream with cache.auth, a private CA or mTLS.
    if (!config.upstream_token_file.empty()) {
      const std::string path = Resolve(config.flame_home, config.upstream_token_file);
      ARROW_ASSIGN_OR_RAISE(std::string text,
                            ReadFile("cache.upstream_token_file", path));
      upstream.token = text.substr(0, text.find_first_of("\r\n"));
      const auto first = upstream.token.find_first_not_of(" \t");
      const auto last = upstream.token.find_last_not_of(" \t");
      upstream.token = first == std::string::npos
                           ? std::string()
                           : upstream.token.substr(first, last - first + 1);
      if (upstream.token.empty()) {
        return arrow::Status::Invalid("cache.upstream_token_file '", path,
                                      "': the first line is empty");
      }
    }
    if (!config.upstream_ca_file.empty()) {
      ARROW_ASSIGN_OR_RAISE(
          upstream.tls_root_certs,
          ReadFile("cache.upstream_ca_file",
                   Resolve(config.flame_home, config.upstream_ca_file)));
    }
    if (!config.upstream_cert_file.empty()) {
      ARROW_ASSIGN_OR_RAISE(
          upstream.cert_chain,
          ReadFile("cache.upstream_cert_file",
                   Resolve(config.flame_home, config.upstream_cert_file)));
      ARROW_ASSIGN_OR_RAISE(
          upstream.private_key,
          ReadFile("cache.upstream_key_file",
                   Resolve(config.flame_home, config.upstream_key_file)));
    }
    // Same-machine zero copy: the tier writes mapped versions into a private directory
    // in /dev/shm (node/local_map.h), bounded like its memory.
    std::unique_ptr<foc::LocalMapDir> map_dir;
    if (config.zero_copy) {
      ARROW_ASSIGN_OR_RAISE(map_dir, foc::LocalMapDir::Open("", config.max_memory));
      spdlog::info("node tier: same-machine clients map objects from {}",
                   map_dir->path());
    }
    auto tier = foc::UpstreamStore::Open(std::move(upstream), std::move(map_dir));
    if (!tier.ok()) {
      return tier.status().WithMessage("cannot use upstream '", config.upstream,
                                       "': ", tier.status().message());
    }
    return std::unique_ptr<foc::Store>(*std::move(tier));
  }
  auto engine = foc::OpenStorage(config.storage, config.flame_home, config.capacity);
  if (!engine.ok()) {
    return engine.status().WithMessage("cannot open storage '",
                                       foc::RedactS3Uri(config.storage),
                                       "': ", engine.status().ToString());
  }
  foc::StoreOptions store_options;
  store_options.max_memory_bytes = config.max_memory;
  store_options.max_objects = config.max_objects;
  store_options.eviction = config.eviction_policy != foc::EvictionPolicy::kNone;
  switch (config.memory_full) {
    case foc::MemoryFull::kEvict:
      store_options.memory_full = foc::MemoryFullPolicy::kEvict;
      break;
    case foc::MemoryFull::kRefuse:
      store_options.memory_full = foc::MemoryFullPolicy::kRefuse;
      break;
  }
  auto opened = foc::ObjectStore::Open(store_options, *std::move(engine));
  if (!opened.ok()) {
    return opened.status().WithMessage("cannot open the store: ",
                                       opened.status().ToString());
  }
  return std::unique_ptr<foc::Store>(*std::move(opened));
}

int Run(const foc::Config& config, const foc::ListenPlan& plan_in,
        const foc::StorageLocation& where) {
  foc::ListenPlan plan = plan_in;
  for (const auto& w : config.warnings) spdlog::warn("{}", w);
  if (!config.upstream.empty() && config.storage != "none") {
    spdlog::warn(
        "cache.storage '{}' is not used by a node tier (cache.upstream): it "
        "keeps no durable copy; its upstream does",
        foc::RedactS3Uri(config.storage));
  }

  // TLS material first: a typo in a path should fail before anything is opened.
  fl::CertKeyPair cert;
  std::string ca;
  if (plan.tls) {
    auto c = ReadFile("cache.tls.cert_file", config.tls->cert_file);
    auto k = ReadFile("cache.tls.key_file", config.tls->key_file);
    if (!c.ok() || !k.ok()) {
      spdlog::critical("{}", (c.ok() ? k.status() : c.status()).message());
      return kExitBadConfig;
    }
    cert = {*c, *k};
    if (!config.tls->ca_file.empty()) {
      auto a = ReadFile("cache.tls.ca_file", config.tls->ca_file);
      if (!a.ok()) {
        spdlog::critical("{}", a.status().message());
        return kExitBadConfig;
      }
      ca = *a;
    }
  }

  // Port 0: pick the port now so that the advertised endpoint can carry it.
  if (plan.port == 0) {
    auto port = foc::PickFreePort(plan.bind_host);
    if (!port.ok()) {
      spdlog::critical("{}", port.status().message());
      return kExitFailure;
    }
    plan.port = *port;
  }
  auto opened = OpenStore(config, plan.Advertised(plan.port));
  if (!opened.ok()) {
    spdlog::critical("{}", opened.status().message());
    return kExitFailure;
  }
  std::shared_ptr<foc::Store> store(*std::move(opened));
  std::string bind_uri = foc::DialableUri(plan.tls, plan.bind_host, plan.port);
  // The gRPC server under Arrow Flight (cache.transport): the callback API where
  // handlers answer from local memory or disk; Arrow's synchronous server where they wait
  // on the network (cluster, node tier, S3), whose threads may block without holding up
  // gRPC's own (src/transport/callback_transport.h).
  const bool networked =
      config.cluster || !config.upstream.empty() || !where.s3_uri.empty();
  const bool callback = config.transport == foc::Transport::kCallback ||
                        (config.transport == foc::Transport::kAuto && !networked);
  if (callback) {
    auto moved = [](const fl::ServerCallContext& context) {
      if (auto record = foc::CallGuardFactory::RecordOf(context)) record->Touch();
    };
    foc::transport::CallbackTransportOptions transport_options;
    transport_options.on_message = moved;
    transport_options.inline_writes = where.memory_only;
    if (auto st = foc::transport::RegisterCallbackTransport(transport_options);
        !st.ok()) {
      spdlog::critical("cannot start the callback transport: {}", st.ToString());
      return kExitFailure;
    }
  }
  auto location =
      callback   ? foc::transport::CallbackLocation(plan.bind_host, plan.port, plan.tls)
      : plan.tls ? fl::Location::ForGrpcTls(foc::UriHost(plan.bind_host), plan.port)
                 : fl::Location::ForGrpcTcp(foc::UriHost(plan.bind_host), plan.port);
  if (!location.ok()) {
    spdlog::critical("cannot listen on {}: {}", bind_uri, location.status().ToString());
    return kExitBadConfig;
  }
  fl::FlightServerOptions options(*location);
  if (plan.tls) {
    options.tls_certificates.push_back(cert);
    options.verify_client = !ca.empty();
    options.root_certificates = ca;
  }
  auto rpc_metrics = std::make_shared<foc::RpcMetrics>();
  options.middleware.emplace_back(
      foc::MetricsMiddlewareFactory::kKey,
      std::make_shared<foc::MetricsMiddlewareFactory>(rpc_metrics));
  // Authentication and per-app authorization (cache.auth, docs/security.md); absent =
  // no middleware, everything allowed as before.
  std::shared_ptr<foc::AuthMiddlewareFactory> auth;
  if (config.auth) {
    auth = std::make_shared<foc::AuthMiddlewareFactory>(
        config.auth->tokens_file.empty()
            ? std::string()
            : Resolve(config.flame_home, config.auth->tokens_file),
        config.auth->anonymous);
    if (auto st = auth->Reload(); !st.ok()) {
      spdlog::critical("{}", st.message());
      return kExitBadConfig;
    }
    options.middleware.emplace_back(foc::AuthMiddlewareFactory::kKey, auth);
  }
  // Resource limits (cache.limits, docs/security.md): concurrency in the middleware,
  // upload memory in the service, connections in the watchdog below.
  auto guard = std::make_shared<foc::CallGuardFactory>(foc::CallGuardOptions{
      config.limits.max_concurrent_calls, config.limits.max_concurrent_uploads});
  options.middleware.emplace_back(foc::CallGuardFactory::kKey, guard);

  foc::FlightServiceOptions service_options;
  service_options.advertised_endpoint = plan.Advertised(plan.port);
  service_options.zero_copy = config.zero_copy;
  constexpr int64_t kTwoGiB = int64_t{2} << 30;
  int64_t upload_memory = config.limits.upload_memory;
  if (upload_memory == 0) {
    // Memory-only storage keeps at most max_memory; an upload of that size holds up to
    // twice as much for a moment while its buffer grows. Otherwise (disk, or no memory
    // limit) one largest payload (2 GiB) fits even while its buffer grows.
    const bool memory_bound =
        where.memory_only && config.eviction_policy != foc::EvictionPolicy::kNone;
    upload_memory = memory_bound ? 2 * config.max_memory
                                 : std::max(2 * config.max_memory, 2 * kTwoGiB);
  }
  auto upload_budget = std::make_shared<foc::UploadBudget>(upload_memory);
  service_options.upload_budget = upload_budget;
  // Memory-only storage with eviction keeps nothing larger than max_memory: refuse such
  // an upload while it arrives.
  if (where.memory_only && config.eviction_policy != foc::EvictionPolicy::kNone) {
    service_options.max_upload_bytes = config.max_memory;
    service_options.max_upload_name =
        "cache.eviction.max_memory, the most that storage: none can keep";
  }
  if (auto* cluster = dynamic_cast<foc::cluster::ClusterStore*>(store.get())) {
    service_options.members = [cluster] { return cluster->MemberEndpoints(); };
    service_options.linearize = [cluster](const foc::ObjectKey& key) {
      return cluster->Refresh(key);
    };
  } else if (!config.upstream.empty()) {
    // A node tier's versions are its upstream's, learnt with a lag it does not bound
    // here: a linearizable read must go to the upstream itself.
    service_options.linearize = [upstream = config.upstream](const foc::ObjectKey&) {
      return arrow::Status::NotImplemented(
          "a node tier cannot serve linearizable reads; read from its upstream ",
          upstream);
    };
  }
  // The status page (`/` of the metrics endpoint) and the INFO action render the same
  // snapshot (metrics/status.h): counters only, cheap and bounded.
  const auto start_time = std::chrono::system_clock::now();
  const std::string storage_text =
      config.cluster             ? "cluster, etcd " + config.cluster->etcd.front()
      : !config.upstream.empty() ? "node tier of " + config.upstream
                                 : Describe(where);
  auto status_now = [&, storage_text] {
    foc::ServerStatus s;
    s.version = FOC_VERSION;
    s.endpoint = plan.Advertised(plan.port);
    s.storage = storage_text;
    s.uptime_seconds =
        std::chrono::duration<double>(std::chrono::system_clock::now() - start_time)
            .count();
    s.memory_limit_bytes = config.max_memory;
    s.max_objects = config.max_objects;
    s.disk_capacity_bytes = config.capacity;
    s.process_resident_bytes = foc::ProcessResidentBytes();
    s.store = store->stats();
    s.rpcs = rpc_metrics->TotalsByRpc();
    return s;
  };
  service_options.info = [status_now] { return foc::RenderStatusJson(status_now()); };
  foc::FlightService service(store, service_options);
  if (auto st = service.Init(options); !st.ok()) {
    spdlog::critical("cannot listen on {}: {}", bind_uri, st.ToString());
    return kExitFailure;
  }

  std::atomic<bool> draining{false};
  foc::HttpEndpoint http(
      [&] {
        std::string out;
        foc::RenderProcessInfo(FOC_VERSION, start_time, &out);
        rpc_metrics->Render(&out);
        guard->Render(&out);
        if (auth) auth->Render(&out);
        upload_budget->Render(&out);
        foc::RenderStoreStats(store->stats(), &out);
        foc::RenderLimits(config.max_memory, config.capacity, &out);
        foc::RenderProcessMetrics(&out);
        if (foc::ChangeFeed* feed = store->change_feed())
          foc::RenderChangeFeedStats(feed->stats(), &out);
        return out;
      },
      [&] { return !draining.load(); });
  std::string metrics_url = "off";
  http.SetLimits(config.limits.http_timeout_seconds,
                 static_cast<int>(config.limits.http_threads));
  http.SetStatusPage([status_now] { return foc::RenderStatusHtml(status_now()); });
  int http_port = 0;
  if (config.metrics.port) {
    std::string host = config.metrics.bind.empty() ? plan.bind_host : config.metrics.bind;
    auto port = http.Start(host, *config.metrics.port);
    if (!port.ok() && config.metrics.best_effort) {
      // The built-in default's port is taken (another instance): serve without metrics.
      spdlog::warn(
          "{} (the built-in default); metrics are off: set metrics.port or "
          "--metrics-port for this instance",
          port.status().message());
      metrics_url = "off (default port busy)";
    } else if (!port.ok()) {
      spdlog::critical("{}", port.status().message());
      (void)service.Shutdown();
      return kExitFailure;
    } else {
      metrics_url =
          "http://" + foc::UriHost(host) + ":" + std::to_string(*port) + "/metrics";
      http_port = *port;
    }
  }
  foc::ConnectionWatchOptions watch_options;
  watch_options.flight_port = service.port();
  watch_options.http_port = http_port;
  watch_options.stalled_seconds = config.limits.stalled_stream_seconds;
  watch_options.idle_seconds = config.limits.idle_connection_seconds;
  watch_options.max_connections = config.limits.max_connections;
  watch_options.http_lifetime_seconds = 2 * config.limits.http_timeout_seconds;
  foc::ConnectionWatch watch(watch_options, guard);
  watch.Start();

  spdlog::info("flame-object-cache {} (config: {})", FOC_VERSION,
               config.source.empty() ? std::string("built-in default") : config.source);
  spdlog::info("bind {}, advertise {} ({})", bind_uri, service.advertised_endpoint(),
               plan.reason);
  spdlog::info("transport {}", callback ? "callback (gRPC callback API)"
                                        : "arrow (Arrow Flight's gRPC server)");
  spdlog::info("tls {}", !plan.tls    ? std::string("off")
                         : ca.empty() ? std::string("on")
                                      : std::string("on, client certificates required"));
  if (config.cluster) {
    spdlog::info("cluster member: etcd {}, prefix {}, payloads in {}",
                 config.cluster->etcd.front(), config.cluster->prefix, Describe(where));
  } else if (config.upstream.empty()) {
    spdlog::info("storage {}{}", Describe(where),
                 config.capacity ? ", capacity " + foc::FormatSize(config.capacity) : "");
  } else {
    spdlog::info(
        "node tier of upstream {} (versions are the upstream's; nothing kept "
        "durably here; copies bounded by max_memory {})",
        config.upstream, foc::FormatSize(config.max_memory));
  }
  spdlog::info("eviction {}, max_memory {}, max_objects {}, memory_full {}",
               foc::Name(config.eviction_policy), foc::FormatSize(config.max_memory),
               config.max_objects ? std::to_string(config.max_objects) : "unlimited",
               foc::Name(config.memory_full));
  spdlog::info(
      "limits: upload memory {}, calls {}, uploads {}, connections {}, idle {}s, stalled "
      "{}s",
      foc::FormatSize(upload_memory), config.limits.max_concurrent_calls,
      config.limits.max_concurrent_uploads, config.limits.max_connections,
      config.limits.idle_connection_seconds, config.limits.stalled_stream_seconds);
  spdlog::info("auth {}", !config.auth
                              ? std::string("off (every client may do everything)")
                              : "tokens file '" + config.auth->tokens_file +
                                    "', anonymous " + config.auth->anonymous);
  spdlog::info("metrics {}, log level {}{}", metrics_url, config.log.level,
               config.log.file.empty()
                   ? ""
                   : ", log file " + Resolve(config.flame_home, config.log.file));
  if (http_port > 0) std::cout << "flame-object-cache metrics at " << metrics_url << "\n";
  std::cout << "flame-object-cache listening on " << service.advertised_endpoint()
            << std::endl;

  // SIGTERM/SIGINT are blocked in every thread (main() blocked them before any thread was
  // created) and taken here: stop accepting, let calls finish until the deadline, then
  // cancel.
  std::atomic<bool> done{false};
  std::thread signals([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    const timespec tick{0, 200'000'000};
    while (!done.load()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig == SIGHUP) {
        // SIGHUP reloads the tokens file; a file that does not load leaves the previous
        // one in force.
        if (!auth) {
          spdlog::info("SIGHUP: no cache.auth section, nothing to reload");
        } else if (auto st = auth->Reload(); st.ok()) {
          spdlog::info("SIGHUP: tokens file reloaded");
        } else {
          spdlog::error("SIGHUP: tokens file not reloaded, the previous one stays: {}",
                        st.message());
        }
        continue;
      }
      if (sig < 0 || draining.exchange(true)) continue;
      auto grace = std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(config.shutdown_grace_seconds));
      spdlog::info("{}: no new calls; waiting up to {}s for calls in flight",
                   strsignal(sig), config.shutdown_grace_seconds);
      auto deadline = std::chrono::system_clock::now() + grace;
      service.StopWatches();  // WATCH calls would otherwise hold on until the deadline
      if (auto st = service.Shutdown(&deadline); !st.ok()) {
        spdlog::error("shutdown: {}", st.ToString());
      }
    }
  });
  auto served = service.Serve();
  draining = true;
  done = true;
  signals.join();
  watch.Stop();
  http.Stop();
  if (!served.ok()) {
    spdlog::critical("server failed: {}", served.ToString());
    return kExitFailure;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the shutdown signals before any thread exists, so that every thread inherits
  // the mask and only the signal thread in Run() receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  CLI::App app{
      "flame-object-cache: Flame's object cache over Arrow Flight.\n"
      "Configuration: --config, else $HOME/.flame/flame-cluster.yaml, else "
      "/etc/flame/flame-cluster.yaml, else built-in defaults; FLAME_CACHE_* variables "
      "and the options below override the file (see docs/operations.md)."};
  std::string config_path;
  bool check_config = false;
  // Every other option is a row of the option table (config/options.h): its flag, if it
  // has one, is declared here from that row.
  foc::ConfigOverrides overrides;
  app.add_option("-c,--config", config_path,
                 "flame-cluster.yaml to read (its cache: section)");
  app.add_flag("--check-config", check_config,
               "Print the effective configuration and exit");
  for (const foc::Option& option : foc::ConfigOptions()) {
    if (option.flag.empty()) continue;
    app.add_option(std::string(option.flag), overrides[std::string(option.flag)],
                   "cache." + std::string(option.key) + ": " + std::string(option.help) +
                       (option.env.empty() ? "" : " [$" + std::string(option.env) + "]"));
  }
  app.set_version_flag("-V,--version", std::string("flame-object-cache ") + FOC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto env = foc::CurrentEnvironment();
  auto config = foc::LoadConfig(config_path, env, overrides);
  arrow::Result<foc::StorageLocation> where = arrow::Status::Invalid("not resolved");
  arrow::Result<foc::ListenPlan> plan = arrow::Status::Invalid("not resolved");
  if (config.ok()) {
    where = foc::ParseStorageUrl(config->storage, config->flame_home);
    if (!where.ok()) {
      where = arrow::Status::Invalid("cache.storage: invalid value '", config->storage,
                                     "': ", where.status().message());
    }
    plan = foc::PlanListen(*config, foc::ListNetworkInterfaces(), Hostname());
  }
  for (const arrow::Status& st :
       {config.status(), config.ok() ? where.status() : arrow::Status::OK(),
        config.ok() ? plan.status() : arrow::Status::OK()}) {
    if (!st.ok()) {
      std::cerr << "flame-object-cache: configuration error: " << st.message()
                << std::endl;
      return kExitBadConfig;
    }
  }
  if (check_config) {
    std::cout << "# flame-object-cache " << FOC_VERSION << " effective configuration\n"
              << "# source: "
              << (config->source.empty() ? "built-in default" : config->source)
              << "\n# FLAME_HOME: " << config->flame_home
              << "\n# storage: " << Describe(*where)
              << "\n# bind: " << foc::DialableUri(plan->tls, plan->bind_host, plan->port)
              << "\n# advertise: " << plan->Advertised(plan->port) << " (" << plan->reason
              << ")\n";
    for (const auto& w : config->warnings) std::cout << "# warning: " << w << "\n";
    std::cout << foc::FormatConfig(*config);
    return 0;
  }
  if (auto st = InitLogging(*config); !st.ok()) {
    std::cerr << "flame-object-cache: configuration error: " << st.message() << std::endl;
    return kExitBadConfig;
  }
  int rc = Run(*config, *plan, *where);
  spdlog::shutdown();
  return rc;
}
