// flame-object-cache: the standalone object cache server of Flame.
#include <csignal>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <arrow/flight/server.h>

#include "flight/flight_service.h"

int main(int argc, char** argv) {
  CLI::App app{"flame-object-cache: Flame's object cache over Arrow Flight"};
  std::string endpoint = "grpc://127.0.0.1:9090";
  app.add_option("--endpoint", endpoint, "Listen on this location (port 0 = any free port)");
  app.set_version_flag("-V,--version", std::string("flame-object-cache ") + FOC_VERSION);
  CLI11_PARSE(app, argc, argv);

  auto location = arrow::flight::Location::Parse(endpoint);
  if (!location.ok()) {
    std::cerr << "invalid endpoint '" << endpoint << "': " << location.status().ToString()
              << std::endl;
    return 2;
  }
  arrow::flight::FlightServerOptions options(*location);
  foc::FlightService service(nullptr, {});
  if (auto st = service.Init(options); !st.ok()) {
    std::cerr << "cannot listen on " << endpoint << ": " << st.ToString() << std::endl;
    return 1;
  }
  (void)service.SetShutdownOnSignals({SIGTERM, SIGINT});
  std::cout << "flame-object-cache listening on " << location->scheme() << "://"
            << "127.0.0.1:" << service.port() << std::endl;
  auto st = service.Serve();
  if (!st.ok()) {
    std::cerr << "server failed: " << st.ToString() << std::endl;
    return 1;
  }
  return 0;
}
