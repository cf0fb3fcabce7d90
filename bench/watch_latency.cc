// Benchmark (not a test): time from just before a PATCH is sent until every one of N
// WATCH subscribers has received its change (p50/p99/max over --patches patches), N = 1,
// 16, 64. Subscribers are threads of one process, each with its own WatchStream
// (CacheClient with one connection per 32 subscribers), against an in-process server on
// loopback (or
// --endpoint). The writer is a separate client.
//
//   build/release/bench/foc-watch-bench [--patches 300] [--subscribers 1,16,64]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <arrow/flight/server.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "flame_object_cache/cache_client.h"
#include "flight/flight_service.h"
#include "store/object_store.h"

namespace {
namespace fl = arrow::flight;
using Clock = std::chrono::steady_clock;

template <typename T>
T Check(arrow::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::cerr << what << ": " << r.status().ToString() << "\n";
    std::exit(1);
  }
  return *std::move(r);
}
void Check(const arrow::Status& st, const char* what) {
  if (!st.ok()) {
    std::cerr << what << ": " << st.ToString() << "\n";
    std::exit(1);
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"PATCH to N WATCH subscribers latency"};
  std::string endpoint;
  int patches = 300;
  std::vector<int> subscribers{1, 16, 64};
  app.add_option("--endpoint", endpoint, "Server (default: an in-process server)");
  app.add_option("--patches", patches, "Patches per run (at most 1000: the delta limit)");
  app.add_option("--subscribers", subscribers, "Subscriber counts");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::unique_ptr<foc::FlightService> server;
  if (endpoint.empty()) {
    auto store = Check(foc::ObjectStore::Open(foc::StoreOptions{}, nullptr), "store");
    server = std::make_unique<foc::FlightService>(std::move(store),
                                                  foc::FlightServiceOptions{});
    Check(server->Init(fl::FlightServerOptions(
              Check(fl::Location::ForGrpcTcp("127.0.0.1", 0), "loc"))),
          "server");
    endpoint = server->advertised_endpoint();
  }

  std::cout
      << "| subscribers | patches | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n";
  int run = 0;
  for (int n : subscribers) {
    foc::ClientOptions options;
    options.endpoint = endpoint;
    options.connections_per_endpoint =
        std::max(1, n / 32);  // ≤ 64 watches per connection
    auto client = Check(foc::CacheClient::Connect(options), "connect");
    const std::string key = "bench/watch/k" + std::to_string(run++);
    auto ref = Check(client->Put(key, arrow::Buffer::FromString("base")), "put");

    std::mutex mu;
    std::condition_variable cv;
    std::vector<uint64_t> latest(n, 0);
    std::vector<std::unique_ptr<foc::WatchStream>> streams;
    foc::WatchRequest request;
    request.patterns = {key};
    request.since = {{key, ref.version}};
    request.snapshot = false;
    for (int i = 0; i < n; ++i) streams.push_back(Check(client->Watch(request), "watch"));
    std::vector<std::thread> readers;
    for (int i = 0; i < n; ++i) {
      readers.emplace_back([&, i] {
        while (true) {
          auto e = streams[i]->Next();
          if (!e.ok()) return;
          std::lock_guard lock(mu);
          latest[i] = e->version;
          cv.notify_all();
        }
      });
    }
    auto writer = Check(foc::CacheClient::Connect(options), "writer");
    std::vector<double> ms;
    auto delta = arrow::Buffer::FromString(std::string(64, 'd'));
    for (int p = 0; p < patches; ++p) {
      const auto start = Clock::now();
      ref = Check(writer->Patch(ref, delta), "patch");
      std::unique_lock lock(mu);
      cv.wait(lock, [&] {
        return std::all_of(latest.begin(), latest.end(),
                           [&](uint64_t v) { return v >= ref.version; });
      });
      ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    for (auto& s : streams) s->Cancel();
    for (auto& t : readers) t.join();
    streams.clear();
    std::printf("| %d | %d | %.3f | %.3f | %.3f |\n", n, patches, Percentile(ms, 0.5),
                Percentile(ms, 0.99), Percentile(ms, 1.0));
    std::fflush(stdout);
  }
  if (server) {
    server->StopWatches();
    Check(server->Shutdown(), "shutdown");
  }
  return 0;
}
