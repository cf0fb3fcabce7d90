// foc-bench: a load generator for flame-object-cache.
//
// Measures, over real gRPC on loopback, against an in-process server (default) or a
// running one (--endpoint):
//   * put and full-get throughput for object sizes 1 KiB .. 1 GiB;
//   * not-modified checks and patch-only gets: latency percentiles and operations per
//   second at
//     concurrency 1..64;
// and, in the same run, the machine's own limits as the yardstick: memcpy bandwidth and
// loopback TCP bandwidth. Prints Markdown tables (docs/benchmarks.md records results).
// This is a benchmark, not a test: it asserts nothing and never runs in CI.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <numeric>
#include <thread>
#include <vector>

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/flight/client.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "flight/flight_service.h"
#include "protocol/protocol.h"
#include "store/object_store.h"

namespace fl = arrow::flight;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Size(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), v == static_cast<int64_t>(v) ? "%.0f %s" : "%.1f %s", v,
                units[u]);
  return buf;
}

double MiBps(int64_t bytes, double seconds) { return bytes / 1048576.0 / seconds; }

void Check(const arrow::Status& st, const char* what) {
  if (!st.ok()) {
    std::cerr << what << ": " << st.ToString() << std::endl;
    std::exit(1);
  }
}
template <typename T>
T Check(arrow::Result<T> r, const char* what) {
  Check(r.status(), what);
  return std::move(r).ValueUnsafe();
}

// --- yardsticks
// -------------------------------------------------------------------------

double MemcpyMiBps() {
  const size_t n = size_t{256} << 20;
  std::vector<char> a(n, 1), b(n, 0);
  std::memcpy(b.data(), a.data(), n);  // warm
  auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i) std::memcpy(b.data(), a.data(), n);
  return MiBps(4 * static_cast<int64_t>(n), Seconds(Clock::now() - t0));
}

double LoopbackTcpMiBps() {
  const int64_t total = int64_t{1} << 30;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(listener, 1);
  std::thread sender([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    std::vector<char> buf(1 << 20, 7);
    for (int64_t sent = 0; sent < total;) {
      ssize_t n = send(s, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      sent += n;
    }
    close(s);
  });
  int conn = accept(listener, nullptr, nullptr);
  std::vector<char> buf(1 << 20);
  int64_t got = 0;
  auto t0 = Clock::now();
  while (got < total) {
    ssize_t n = recv(conn, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += n;
  }
  const double s = Seconds(Clock::now() - t0);
  sender.join();
  close(conn);
  close(listener);
  return MiBps(got, s);
}

// --- Flight helpers
// -----------------------------------------------------------------------

std::shared_ptr<arrow::RecordBatch> Row(const std::shared_ptr<arrow::Buffer>& data) {
  arrow::UInt64Builder v;
  Check(v.Append(0), "append");
  int32_t offsets[2] = {0, static_cast<int32_t>(data->size())};
  auto offsets_buf = arrow::Buffer::FromString(
      std::string(reinterpret_cast<const char*>(offsets), sizeof(offsets)));
  auto array = std::make_shared<arrow::BinaryArray>(1, offsets_buf, data);
  return arrow::RecordBatch::Make(foc::UploadSchema(), 1,
                                  {Check(v.Finish(), "finish"), array});
}

foc::PutResultDoc Put(fl::FlightClient* client, const fl::FlightDescriptor& d,
                      const std::shared_ptr<arrow::Buffer>& data) {
  auto put = Check(client->DoPut(d, foc::UploadSchema()), "DoPut");
  Check(put.writer->WriteRecordBatch(*Row(data)), "write");
  Check(put.writer->DoneWriting(), "done");
  std::shared_ptr<arrow::Buffer> meta;
  Check(put.reader->ReadMetadata(&meta), "metadata");
  Check(put.writer->Close(), "close");
  return Check(foc::DecodePutResult(meta->ToString()), "bson");
}

// Returns payload bytes received.
int64_t Get(fl::FlightClient* client, const std::string& ticket) {
  fl::FlightCallOptions options;
  options.read_options.ensure_alignment =
      arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  auto stream = Check(client->DoGet(options, fl::Ticket{ticket}), "DoGet");
  int64_t bytes = 0;
  while (true) {
    auto chunk = Check(stream->Next(), "Next");
    if (!chunk.data) break;
    auto data = std::static_pointer_cast<arrow::BinaryArray>(chunk.data->column(2));
    bytes += data->total_values_length();
  }
  return bytes;
}

struct Percentiles {
  double p50_us, p99_us, ops;
};

Percentiles RunConcurrent(const fl::Location& location, int concurrency, double seconds,
                          const std::function<void(fl::FlightClient*)>& op) {
  std::vector<std::vector<double>> lat(concurrency);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto client = Check(fl::FlightClient::Connect(location), "connect");
      while (!stop.load(std::memory_order_relaxed)) {
        auto s = Clock::now();
        op(client.get());
        lat[t].push_back(Seconds(Clock::now() - s) * 1e6);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = Seconds(Clock::now() - t0);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))];
  };
  return {pct(0.50), pct(0.99), all.size() / elapsed};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"foc-bench: load generator for flame-object-cache"};
  std::string endpoint;
  int64_t min_size = 1024;
  int64_t max_size = int64_t{1} << 30;
  bool sizes_only = false;
  double seconds = 3.0;
  std::vector<int> concurrency{1, 4, 16, 64};
  app.add_option("--endpoint", endpoint,
                 "Server to load (default: an in-process server)");
  app.add_option("--min-size", min_size, "Smallest object size in bytes (default 1 KiB)");
  app.add_option("--max-size", max_size, "Largest object size in bytes (default 1 GiB)");
  app.add_flag("--sizes-only", sizes_only, "Only the put/get-by-size table");
  app.add_option("--seconds", seconds, "Duration of each latency run");
  app.add_option("--concurrency", concurrency, "Concurrency levels");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::unique_ptr<foc::FlightService> server;
  if (endpoint.empty()) {
    foc::StoreOptions options;
    options.max_memory_bytes = 0;  // unlimited: measure the protocol, not eviction
    auto store = Check(foc::ObjectStore::Open(options, nullptr), "store");
    server = std::make_unique<foc::FlightService>(std::move(store),
                                                  foc::FlightServiceOptions{});
    Check(server->Init(fl::FlightServerOptions(
              Check(fl::Location::ForGrpcTcp("127.0.0.1", 0), "loc"))),
          "server");
    endpoint = server->advertised_endpoint();
  }
  auto location = Check(fl::Location::Parse(endpoint), "endpoint");
  auto client = Check(fl::FlightClient::Connect(location), "connect");

  std::cout << "## Yardsticks\n\n| measure | MiB/s |\n|---|---|\n";
  std::cout << "| memcpy (256 MiB blocks) | " << static_cast<int64_t>(MemcpyMiBps())
            << " |\n";
  std::cout << "| loopback TCP, one stream (1 GiB) | "
            << static_cast<int64_t>(LoopbackTcpMiBps()) << " |\n\n";

  std::cout
      << "## Put and full get by object size (one client)\n\n"
      << "| size | objects | put MiB/s | put ms/object | get MiB/s | get ms/object |\n"
      << "|---|---|---|---|---|---|\n";
  for (int64_t size = min_size; size <= max_size; size *= 16) {
    const int64_t count =
        std::max<int64_t>(1, std::min<int64_t>(2000, (int64_t{512} << 20) / size));
    auto data = Check(arrow::AllocateBuffer(size), "alloc");
    std::memset(data->mutable_data(), 'x', size);
    std::shared_ptr<arrow::Buffer> payload(std::move(data));
    std::vector<std::string> keys;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < count; ++i) {
      keys.push_back(
          Put(client.get(), fl::FlightDescriptor::Path({"bench/put"}), payload).key);
    }
    const double put_s = Seconds(Clock::now() - t0);
    t0 = Clock::now();
    int64_t got = 0;
    for (const auto& k : keys) got += Get(client.get(), k + ":0");
    const double get_s = Seconds(Clock::now() - t0);
    if (got != size * count) std::cerr << "short read: " << got << std::endl;
    std::printf("| %s | %lld | %.0f | %.3f | %.0f | %.3f |\n", Size(size).c_str(),
                static_cast<long long>(count), MiBps(size * count, put_s),
                put_s * 1e3 / count, MiBps(size * count, get_s), get_s * 1e3 / count);
    std::fflush(stdout);
    auto del = Check(
        client->DoAction(fl::Action{"DELETE", arrow::Buffer::FromString("bench/*")}),
        "delete");
    Check(del->Next().status(), "delete result");
  }

  if (sizes_only) return 0;

  // A 64 MiB object with 10 patches: not-modified checks and patch-only gets.
  auto big = Check(arrow::AllocateBuffer(64 << 20), "alloc");
  std::memset(big->mutable_data(), 'y', big->size());
  std::shared_ptr<arrow::Buffer> big_payload(std::move(big));
  auto ref = Put(client.get(), fl::FlightDescriptor::Path({"bench/hot"}), big_payload);
  auto delta = arrow::Buffer::FromString(std::string(1024, 'p'));
  int64_t version = ref.version;
  for (int i = 0; i < 10; ++i) {
    version = Put(client.get(), fl::FlightDescriptor::Command("PATCH:" + ref.key), delta)
                  .version;
  }
  const std::string not_modified = ref.key + ":" + std::to_string(version);
  const std::string last_patch = ref.key + ":" + std::to_string(version - 1);
  const std::string full = ref.key + ":0";

  std::cout
      << "\n## Versioned gets of a 64 MiB object with 10 one-KiB patches\n\n"
      << "| request | concurrency | ops/s | p50 µs | p99 µs |\n|---|---|---|---|---|\n";
  for (int c : concurrency) {
    auto r = RunConcurrent(location, c, seconds,
                           [&](fl::FlightClient* cl) { Get(cl, not_modified); });
    std::printf("| not modified | %d | %.0f | %.0f | %.0f |\n", c, r.ops, r.p50_us,
                r.p99_us);
    std::fflush(stdout);
  }
  for (int c : concurrency) {
    auto r = RunConcurrent(location, c, seconds,
                           [&](fl::FlightClient* cl) { Get(cl, last_patch); });
    std::printf("| patch-only (1 KiB) | %d | %.0f | %.0f | %.0f |\n", c, r.ops, r.p50_us,
                r.p99_us);
    std::fflush(stdout);
  }
  for (int c : {1, 4}) {
    auto r =
        RunConcurrent(location, c, seconds, [&](fl::FlightClient* cl) { Get(cl, full); });
    std::printf("| full (64 MiB) | %d | %.1f | %.0f | %.0f |\n", c, r.ops, r.p50_us,
                r.p99_us);
    std::fflush(stdout);
  }
  Check(client->Close(), "close");
  if (server) Check(server->Shutdown(), "shutdown");
  return 0;
}
