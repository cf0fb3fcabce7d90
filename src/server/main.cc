// flame-object-cache: the standalone object cache server of Flame.
// (Minimal start-up; configuration, TLS, logs and metrics are issue 5's.)
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <arrow/flight/server.h>

#include "flight/flight_service.h"
#include "storage/storage_url.h"
#include "store/object_store.h"

int main(int argc, char** argv) {
  CLI::App app{"flame-object-cache: Flame's object cache over Arrow Flight"};
  std::string endpoint = "grpc://127.0.0.1:9090";
  std::string storage = "none";
  int64_t max_memory = int64_t{1} << 30;
  app.add_option("--endpoint", endpoint, "Listen on this location (port 0 = any free port)");
  app.add_option("--storage", storage, "Storage URL: none, fs://<path>, file://<path> or a path");
  app.add_option("--max-memory", max_memory, "Memory cache limit in bytes");
  app.set_version_flag("-V,--version", std::string("flame-object-cache ") + FOC_VERSION);
  CLI11_PARSE(app, argc, argv);

  const char* home = std::getenv("FLAME_HOME");
  auto engine = foc::OpenStorage(storage, home ? home : "", 0);
  if (!engine.ok()) {
    std::cerr << "cannot open storage '" << storage << "': " << engine.status().ToString()
              << std::endl;
    return 1;
  }
  foc::StoreOptions store_options;
  store_options.max_memory_bytes = max_memory;
  auto store = foc::ObjectStore::Open(store_options, *std::move(engine));
  if (!store.ok()) {
    std::cerr << "cannot open store: " << store.status().ToString() << std::endl;
    return 1;
  }
  auto location = arrow::flight::Location::Parse(endpoint);
  if (!location.ok()) {
    std::cerr << "invalid endpoint '" << endpoint << "': " << location.status().ToString()
              << std::endl;
    return 2;
  }
  arrow::flight::FlightServerOptions options(*location);
  foc::FlightService service(std::shared_ptr<foc::ObjectStore>(*std::move(store)), {});
  if (auto st = service.Init(options); !st.ok()) {
    std::cerr << "cannot listen on " << endpoint << ": " << st.ToString() << std::endl;
    return 1;
  }
  (void)service.SetShutdownOnSignals({SIGTERM, SIGINT});
  std::cout << "flame-object-cache listening on " << service.advertised_endpoint()
            << std::endl;
  auto st = service.Serve();
  if (!st.ok()) {
    std::cerr << "server failed: " << st.ToString() << std::endl;
    return 1;
  }
  return 0;
}
