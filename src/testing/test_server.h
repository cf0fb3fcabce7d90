// An in-process flame-object-cache server for tests (test code only; link foc_flight and
// foc_transport): the Flight service over a memory-only store on 127.0.0.1, port 0 = any
// free port, served as the binary serves local storage: on the callback transport.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <arrow/flight/server.h>

#include "flight/flight_service.h"
#include "storage/storage_engine.h"
#include "store/object_store.h"
#include "transport/callback_transport.h"

namespace foc::testing {

struct TestServer {
  StoreOptions store_options;  ///< used by the next Start
  WatchLimits watch_limits;    ///< used by the next Start
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<FlightService> service;
  bool tls = false;
  /// Serve on the callback transport (as the binary does for local storage); false =
  /// Arrow Flight's own gRPC server.
  bool callback = true;

  arrow::Result<arrow::flight::Location> Location(int port, bool with_tls) const {
    if (callback) {
      ARROW_RETURN_NOT_OK(transport::RegisterCallbackTransport());
      return transport::CallbackLocation("127.0.0.1", port, with_tls);
    }
    return with_tls ? arrow::flight::Location::ForGrpcTls("127.0.0.1", port)
                    : arrow::flight::Location::ForGrpcTcp("127.0.0.1", port);
  }

  arrow::Status Start(int port = 0, std::string advertised = {}) {
    ARROW_ASSIGN_OR_RAISE(auto location, Location(port, false));
    return Serve(arrow::flight::FlightServerOptions(location), std::move(advertised));
  }
  /// TLS with the PEM `cert` and `key`, set up as src/server/main.cc sets up the binary:
  /// a non-empty `client_ca` requires client certificates signed by it (mutual TLS). No
  /// advertised endpoint: the service's default must be the TLS address it listens on.
  arrow::Status StartTls(const std::string& cert, const std::string& key,
                         const std::string& client_ca) {
    ARROW_ASSIGN_OR_RAISE(auto location, Location(0, true));
    arrow::flight::FlightServerOptions options(location);
    options.tls_certificates.push_back({cert, key});
    options.verify_client = !client_ca.empty();
    options.root_certificates = client_ca;
    return Serve(options, {});
  }
  arrow::Status Serve(const arrow::flight::FlightServerOptions& options,
                      std::string advertised) {
    ARROW_ASSIGN_OR_RAISE(auto opened, ObjectStore::Open(store_options, nullptr));
    store = std::move(opened);
    FlightServiceOptions service_options;
    service_options.advertised_endpoint = std::move(advertised);
    service_options.watch = watch_limits;
    service = std::make_unique<FlightService>(store, std::move(service_options));
    tls = !options.tls_certificates.empty();
    return service->Init(options);
  }
  arrow::Status Stop() {
    if (!service) return arrow::Status::OK();
    service->StopWatches();
    ARROW_RETURN_NOT_OK(service->Shutdown());
    ARROW_RETURN_NOT_OK(service->Wait());
    service.reset();
    store.reset();
    return arrow::Status::OK();
  }
  /// Starts on a port that was in use a moment ago (retries while the kernel frees it).
  arrow::Status StartOn(int port, std::string advertised = {}) {
    arrow::Status st;
    for (int i = 0; i < 100; ++i) {
      st = Start(port, advertised);
      if (st.ok()) return st;
      service.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return st;
  }
  int port() const { return service->port(); }
  std::string endpoint() const {
    return (tls ? "grpc+tls://127.0.0.1:" : "grpc://127.0.0.1:") + std::to_string(port());
  }
};

}  // namespace foc::testing
