// CacheClient through a real in-process flame-object-cache server on port 0 (memory-only store):
// every operation, the client cache's decisions as seen by both the client (CacheStats) and
// the server (StoreStats), single flight, epoch changes, file transfer.
#include "client/cache_client.h"

#include <barrier>
#include <fstream>
#include <sstream>
#include <thread>

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/flight/server.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>

#include "flight/flight_service.h"
#include "storage/storage_engine.h"
#include "store/object_store.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {
namespace fl = arrow::flight;
namespace fs = std::filesystem;

std::shared_ptr<arrow::Buffer> Buf(const std::string& s) { return arrow::Buffer::FromString(s); }
std::string Str(const std::shared_ptr<arrow::Buffer>& b) { return b ? b->ToString() : "<null>"; }
std::vector<std::string> Deltas(const ObjectValue& v) {
  std::vector<std::string> out;
  for (const auto& d : v.deltas) out.push_back(Str(d.data));
  return out;
}

// A memory-only server on 127.0.0.1 (port 0 = any free port).
struct TestServer {
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<FlightService> service;

  arrow::Status Start(int port = 0, std::string advertised = {}) {
    ARROW_ASSIGN_OR_RAISE(auto opened, ObjectStore::Open(StoreOptions{}, MakeNoneStorage()));
    store = std::move(opened);
    service = std::make_unique<FlightService>(store, FlightServiceOptions{std::move(advertised)});
    ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::ForGrpcTcp("127.0.0.1", port));
    return service->Init(fl::FlightServerOptions(location));
  }
  arrow::Status Stop() {
    if (!service) return arrow::Status::OK();
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
  std::string endpoint() const { return "grpc://127.0.0.1:" + std::to_string(port()); }
};

class CacheClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(server_.Start());
    client_ = Connect();
    dir_ = fs::temp_directory_path() /
           ("foc-client-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    client_.reset();
    ASSERT_OK(server_.Stop());
    fs::remove_all(dir_);
  }

  std::unique_ptr<CacheClient> Connect(ClientOptions options = {}) {
    options.endpoint = server_.endpoint();
    return CacheClient::Connect(std::move(options)).ValueOrDie();
  }
  size_t FilesInDir() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  static std::string ReadFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  TestServer server_;
  std::unique_ptr<CacheClient> client_;
  fs::path dir_;
};

TEST_F(CacheClientTest, PutGetRoundTrip) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf("hello")));
  EXPECT_EQ(ref.endpoint, server_.endpoint());
  EXPECT_TRUE(ref.key.starts_with("app/s/"));
  EXPECT_EQ(ref.version, 1u);
  ASSERT_OK_AND_ASSIGN(auto value, client_->Get(ref));
  EXPECT_EQ(Str(value->base), "hello");
  EXPECT_EQ(value->version, 1u);
  EXPECT_EQ(value->base_version, 1u);
  EXPECT_TRUE(value->deltas.empty());
  EXPECT_FALSE(value->is_table());
  EXPECT_FALSE(value->epoch.empty());
  const auto st = client_->stats();
  EXPECT_EQ(st.misses, 1);
  EXPECT_EQ(st.full, 1);
  EXPECT_EQ(st.entries, 1);
  EXPECT_EQ(st.bytes, 5);

  // A full key creates or replaces that object.
  ASSERT_OK_AND_ASSIGN(auto named, client_->Put("app/s/named", Buf("a")));
  EXPECT_EQ(named.key, "app/s/named");
  ASSERT_OK_AND_ASSIGN(auto again, client_->Put("app/s/named", Buf("b")));
  EXPECT_EQ(again.version, 2u);
}

TEST_F(CacheClientTest, NotModifiedIsServedFromTheCacheWithZeroRows) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf(std::string(1000, 'x'))));
  ASSERT_OK_AND_ASSIGN(auto first, client_->Get(ref));
  const auto before = client_->stats();
  const auto server_before = server_.store->stats();
  ASSERT_OK_AND_ASSIGN(auto second, client_->Get(ref));
  const auto after = client_->stats();
  const auto server_after = server_.store->stats();

  EXPECT_EQ(second.get(), first.get());  // the same immutable value, nothing copied
  EXPECT_EQ(after.hits - before.hits, 1);
  EXPECT_EQ(after.not_modified - before.not_modified, 1);
  EXPECT_EQ(after.full, before.full);
  EXPECT_EQ(after.rows_received, before.rows_received);  // the reply had zero rows
  EXPECT_EQ(after.bytes_received, before.bytes_received);
  EXPECT_EQ(server_after.not_modified_replies - server_before.not_modified_replies, 1);
  EXPECT_EQ(server_after.bytes_read, server_before.bytes_read);
}

TEST_F(CacheClientTest, RemotePatchesAreAppliedToTheCachedBase) {
  auto writer = Connect();
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf("base")));
  ASSERT_OK_AND_ASSIGN(auto first, client_->Get(ref));
  ASSERT_OK_AND_ASSIGN(auto p2, writer->Patch(ref, Buf("d1")));
  ASSERT_OK_AND_ASSIGN(auto p3, writer->Patch(ref, Buf("d2")));
  EXPECT_EQ(p3.version, 3u);

  const auto server_before = server_.store->stats();
  ASSERT_OK_AND_ASSIGN(auto value, client_->Get(ref));
  EXPECT_EQ(server_.store->stats().patch_replies - server_before.patch_replies, 1);
  EXPECT_EQ(value->version, 3u);
  EXPECT_EQ(value->base_version, 1u);
  EXPECT_EQ(value->base.get(), first->base.get());  // the cached base, not a new download
  EXPECT_EQ(Deltas(*value), (std::vector<std::string>{"d1", "d2"}));
  EXPECT_EQ(client_->stats().patch_only, 1);
  EXPECT_EQ(client_->stats().rows_received, 3);  // base once, then two delta rows

  ASSERT_OK(writer->Patch(ref, Buf("d3")).status());
  ASSERT_OK_AND_ASSIGN(auto later, client_->Get(ref));
  EXPECT_EQ(Deltas(*later), (std::vector<std::string>{"d1", "d2", "d3"}));
  EXPECT_EQ(client_->stats().patch_only, 2);
  ASSERT_OK_AND_ASSIGN(auto same, client_->Get(ref));
  EXPECT_EQ(same.get(), later.get());
  EXPECT_EQ(client_->stats().not_modified, 1);
}

TEST_F(CacheClientTest, RemoteUpdateIsAFullReplace) {
  auto writer = Connect();
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf("v1")));
  ASSERT_OK(client_->Patch(ref, Buf("d")).status());
  ASSERT_OK(client_->Get(ref).status());
  ASSERT_OK_AND_ASSIGN(auto updated, writer->Update(ref, Buf("v3")));
  EXPECT_EQ(updated.version, 3u);
  EXPECT_EQ(updated.endpoint, ref.endpoint);
  const auto before = client_->stats();
  ASSERT_OK_AND_ASSIGN(auto value, client_->Get(ref));
  EXPECT_EQ(Str(value->base), "v3");
  EXPECT_TRUE(value->deltas.empty());
  EXPECT_EQ(value->version, 3u);
  EXPECT_EQ(client_->stats().full - before.full, 1);
  EXPECT_EQ(client_->stats().hits - before.hits, 1);  // it asked with its cached version
}

TEST_F(CacheClientTest, VersionZeroBypassesTheCache) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf("data")));
  ASSERT_OK(client_->Get(ref).status());
  const auto before = client_->stats();
  const auto server_before = server_.store->stats();
  ObjectRef zero = ref;
  zero.version = 0;
  ASSERT_OK_AND_ASSIGN(auto value, client_->Get(zero));
  EXPECT_EQ(Str(value->base), "data");
  const auto after = client_->stats();
  EXPECT_EQ(after.misses - before.misses, 1);
  EXPECT_EQ(after.full - before.full, 1);
  EXPECT_EQ(after.not_modified, before.not_modified);
  EXPECT_EQ(server_.store->stats().full_replies - server_before.full_replies, 1);
  // ...and refreshes the entry, so the next versioned get is "not modified".
  ASSERT_OK(client_->Get(ref).status());
  EXPECT_EQ(client_->stats().not_modified - after.not_modified, 1);
}

TEST_F(CacheClientTest, UpdatePatchAndDeleteInvalidate) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf("v1")));
  ASSERT_OK_AND_ASSIGN(auto other, client_->Put("app/t", Buf("other")));
  ASSERT_OK(client_->Get(ref).status());
  ASSERT_OK(client_->Get(other).status());
  EXPECT_EQ(client_->stats().entries, 2);

  ASSERT_OK_AND_ASSIGN(auto updated, client_->Update(ref, Buf("v2")));
  EXPECT_EQ(client_->stats().entries, 1);
  EXPECT_EQ(client_->stats().invalidations, 1);
  auto before = client_->stats();
  ASSERT_OK_AND_ASSIGN(auto v2, client_->Get(updated));
  EXPECT_EQ(Str(v2->base), "v2");
  EXPECT_EQ(client_->stats().misses - before.misses, 1);

  ASSERT_OK(client_->Patch(updated, Buf("p")).status());
  EXPECT_EQ(client_->stats().entries, 1);
  before = client_->stats();
  ASSERT_OK_AND_ASSIGN(auto v3, client_->Get(updated));
  EXPECT_EQ(Deltas(*v3), std::vector<std::string>{"p"});
  EXPECT_EQ(client_->stats().full - before.full, 1);  // no optimistic local append (as flamepy)

  ASSERT_OK(client_->Delete("app/s"));
  EXPECT_EQ(client_->stats().entries, 1);  // app/t is untouched
  auto gone = client_->Get(ref);
  EXPECT_TRUE(IsObjectNotFound(gone.status())) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find(ref.key), std::string::npos);
  ASSERT_OK(client_->Get(other).status());

  ASSERT_OK(client_->Delete("app/*"));
  EXPECT_EQ(client_->stats().entries, 0);
  EXPECT_TRUE(IsObjectNotFound(client_->Get(other).status()));
}

TEST_F(CacheClientTest, EpochChangeIsAMissNotAStaleHit) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/obj", Buf("old data")));
  ASSERT_OK_AND_ASSIGN(auto old_value, client_->Get(ref));
  const std::string old_epoch = old_value->epoch;
  const int port = server_.port();

  // The memory-only server restarts on the same port: everything is gone, versions restart.
  client_.reset();  // (the client reconnects by itself; this only checks the other client)
  auto client = Connect();
  ASSERT_OK(client->Get(ref).status());
  ASSERT_OK(server_.Stop());
  ASSERT_OK(server_.StartOn(port));
  ASSERT_EQ(server_.port(), port);

  // Another client re-creates the key: same key, same version 1, different bytes.
  auto other = Connect();
  ASSERT_OK_AND_ASSIGN(auto recreated, other->Put("app/s/obj", Buf("new data")));
  ASSERT_EQ(recreated.version, 1u);
  ASSERT_EQ(recreated.endpoint, ref.endpoint);

  const auto before = client->stats();
  ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));
  EXPECT_EQ(Str(value->base), "new data");
  EXPECT_NE(value->epoch, old_epoch);
  const auto after = client->stats();
  EXPECT_EQ(after.epoch_changes - before.epoch_changes, 1);
  EXPECT_EQ(after.not_modified, before.not_modified);
  EXPECT_EQ(after.requests - before.requests, 2);  // the conditional read, then `:0`
  ASSERT_OK_AND_ASSIGN(auto again, client->Get(ref));
  EXPECT_EQ(Str(again->base), "new data");
  EXPECT_EQ(client->stats().not_modified - after.not_modified, 1);
}

TEST_F(CacheClientTest, EpochInAPutResultDropsTheEndpointsEntries) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/obj", Buf("old")));
  ASSERT_OK(client_->Get(ref).status());
  const int port = server_.port();
  ASSERT_OK(server_.Stop());
  ASSERT_OK(server_.StartOn(port));
  ASSERT_OK(client_->Put("app/other", Buf("x")).status());  // learns the new epoch
  EXPECT_EQ(client_->stats().entries, 0);
  EXPECT_EQ(client_->stats().epoch_changes, 1);
}

TEST_F(CacheClientTest, ByteBoundIsRespected) {
  ClientOptions options;
  options.cache_max_bytes = 250 * 1024;
  auto client = Connect(options);
  std::vector<ObjectRef> refs;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto ref, client->Put("app/s", Buf(std::string(100 * 1024, 'a' + i))));
    refs.push_back(ref);
    ASSERT_OK(client->Get(ref).status());
    EXPECT_LE(client->stats().bytes, options.cache_max_bytes);
  }
  auto st = client->stats();
  EXPECT_EQ(st.entries, 2);
  EXPECT_EQ(st.bytes, 200 * 1024);
  EXPECT_EQ(st.evictions, 3);
  // The most recent two are cached, the first is not (a full read again).
  ASSERT_OK(client->Get(refs[4]).status());
  EXPECT_EQ(client->stats().not_modified, 1);
  ASSERT_OK_AND_ASSIGN(auto v0, client->Get(refs[0]));
  EXPECT_EQ(Str(v0->base), std::string(100 * 1024, 'a'));
  EXPECT_EQ(client->stats().full, st.full + 1);

  // Larger than the whole budget: returned, never cached.
  ASSERT_OK_AND_ASSIGN(auto big, client->Put("app/s", Buf(std::string(300 * 1024, 'z'))));
  ASSERT_OK_AND_ASSIGN(auto bv, client->Get(big));
  EXPECT_EQ(bv->base->size(), 300 * 1024);
  EXPECT_LE(client->stats().bytes, options.cache_max_bytes);
}

TEST_F(CacheClientTest, SixteenThreadsShareOneRequest) {
  const std::string payload(4 << 20, 'q');
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s", Buf(payload)));
  const auto server_before = server_.store->stats();
  constexpr int kThreads = 16;
  std::barrier start(kThreads);
  std::vector<std::shared_ptr<const ObjectValue>> values(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto v = client_->Get(ref);
      if (v.ok()) values[i] = *v;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& v : values) {
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->base.get(), values[0]->base.get());  // one download shared by all
  }
  EXPECT_EQ(values[0]->base->size(), static_cast<int64_t>(payload.size()));
  const auto st = client_->stats();
  const auto server_after = server_.store->stats();
  // Exactly one transfer of the object. A get that arrives after the request was sent cannot
  // share its answer (the answer might predate the get), so it waits and then asks "changed
  // since v1?" in one more request shared by every get arriving meanwhile. With all 16 threads
  // released together that is usually 2 requests; a thread scheduled late (2 cores, 16 threads)
  // can add a round, always "not modified".
  EXPECT_EQ(st.full, 1);
  EXPECT_EQ(server_after.full_replies - server_before.full_replies, 1);
  EXPECT_EQ(st.not_modified, st.requests - 1);
  EXPECT_EQ(st.requests + st.coalesced, kThreads);
  EXPECT_GE(st.coalesced, kThreads / 2);
  EXPECT_EQ(st.bytes_received, static_cast<int64_t>(payload.size()));
  std::printf("16 concurrent gets: %lld requests, %lld coalesced\n",
              static_cast<long long>(st.requests), static_cast<long long>(st.coalesced));
}

TEST_F(CacheClientTest, UploadAndDownloadAMultiMiBFile) {
  std::string content(5 * (1 << 20) + 12345, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 131) >> 7);
  const auto src = dir_ / "src.bin";
  std::ofstream(src, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));

  ASSERT_OK_AND_ASSIGN(auto ref, client_->Upload("app/files", src));
  EXPECT_EQ(ref.version, 1u);
  EXPECT_EQ(server_.store->stats().bytes_written, static_cast<int64_t>(content.size()));
  ASSERT_OK_AND_ASSIGN(auto value, client_->Get(ref));
  EXPECT_TRUE(value->base->Equals(*Buf(content)));

  const auto dst = dir_ / "dst.bin";
  ASSERT_OK(client_->Download(ref, dst));
  EXPECT_EQ(ReadFile(dst), content);
  EXPECT_EQ(FilesInDir(), 2u);

  // A full key upload replaces the object.
  ASSERT_OK_AND_ASSIGN(auto again, client_->Upload(ref.key, src));
  EXPECT_EQ(again.version, 2u);

  // An empty file is an empty object.
  const auto empty = dir_ / "empty.bin";
  std::ofstream(empty).close();
  ASSERT_OK_AND_ASSIGN(auto eref, client_->Upload("app/files", empty));
  ASSERT_OK(client_->Download(eref, dir_ / "empty.out"));
  EXPECT_EQ(fs::file_size(dir_ / "empty.out"), 0u);
}

TEST_F(CacheClientTest, AFailingDownloadLeavesNoFile) {
  const std::string content(3 << 20, 'b');
  const auto src = dir_ / "src.bin";
  std::ofstream(src, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Upload("app/files", src));
  ASSERT_OK(client_->Patch(ref, Buf("delta")).status());
  const size_t files = FilesInDir();

  // Fails after the 3 MiB base has been written to the temporary file: the delta row.
  const auto dst = dir_ / "dst.bin";
  EXPECT_STATUS(Invalid, "has deltas", client_->Download(ref, dst));
  EXPECT_FALSE(fs::exists(dst));
  EXPECT_EQ(FilesInDir(), files);  // no temporary file either

  // An existing file is left as it was.
  std::ofstream(dst) << "keep me";
  EXPECT_STATUS(Invalid, "has deltas", client_->Download(ref, dst));
  EXPECT_EQ(ReadFile(dst), "keep me");

  // A missing object, a missing directory, a stopped server.
  auto missing = client_->Download(client_->RefFor("app/files/nope"), dir_ / "x.bin");
  EXPECT_TRUE(IsObjectNotFound(missing)) << missing.ToString();
  EXPECT_NE(missing.message().find("app/files/nope"), std::string::npos);
  EXPECT_FALSE(client_->Download(ref, dir_ / "no" / "dir.bin").ok());
  ASSERT_OK_AND_ASSIGN(auto plain, client_->Upload("app/files", src));
  ASSERT_OK(server_.Stop());
  EXPECT_FALSE(client_->Download(plain, dir_ / "down.bin").ok());
  EXPECT_EQ(FilesInDir(), files + 1);  // only "dst.bin" was added, by this test itself
}

TEST_F(CacheClientTest, NativeTablesRoundTripAndAreCached) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  ASSERT_OK(ids.AppendValues({1, 2, 3}));
  ASSERT_OK(names.AppendValues(std::vector<std::string>{"a", "b", "c"}));
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())},
                              arrow::key_value_metadata({"user"}, {"kept"}));
  auto table = arrow::Table::Make(schema, {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});

  ASSERT_OK_AND_ASSIGN(auto ref, client_->PutTable("app/tables", table));
  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTable(ref));
  EXPECT_TRUE(got->Equals(*table, /*check_metadata=*/true)) << got->schema()->ToString(true);
  ASSERT_OK_AND_ASSIGN(auto again, client_->GetTable(ref));
  EXPECT_EQ(again.get(), got.get());
  EXPECT_EQ(client_->stats().not_modified, 1);

  // Opaque data is not a table and a table takes no patches (the server refuses).
  ASSERT_OK_AND_ASSIGN(auto bytes, client_->Put("app/s", Buf("x")));
  EXPECT_STATUS(Invalid, "not a native table", client_->GetTable(bytes));
  EXPECT_STATUS(Invalid, ref.key, client_->Patch(ref, Buf("d")));
  EXPECT_STATUS(Invalid, "native Arrow table", client_->Download(ref, dir_ / "t.bin"));

  // An empty table, and a replacement with another schema.
  auto empty = arrow::Table::MakeEmpty(schema).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto eref, client_->PutTable(ref.key, empty));
  EXPECT_EQ(eref.version, 2u);
  ASSERT_OK_AND_ASSIGN(auto eg, client_->GetTable(eref));
  EXPECT_EQ(eg->num_rows(), 0);
  EXPECT_TRUE(eg->schema()->Equals(*schema, true));
}

TEST_F(CacheClientTest, ListAndStat) {
  ASSERT_OK_AND_ASSIGN(auto ref, client_->Put("app/s/a", Buf("12345")));
  ASSERT_OK(client_->Patch(ref, Buf("678")).status());
  ASSERT_OK(client_->Put("app/s/b", Buf("x")).status());
  ASSERT_OK_AND_ASSIGN(auto listed, client_->List());
  ASSERT_EQ(listed.size(), 2u);
  std::sort(listed.begin(), listed.end(), [](auto& x, auto& y) { return x.key < y.key; });
  EXPECT_EQ(listed[0].key, "app/s/a");
  EXPECT_EQ(listed[0].bytes, 8);
  EXPECT_EQ(listed[0].endpoint, server_.endpoint());
  EXPECT_EQ(listed[1].key, "app/s/b");

  ASSERT_OK_AND_ASSIGN(auto st, client_->Stat(ref));
  EXPECT_EQ(st.version, 2u);
  EXPECT_EQ(st.base_version, 1u);
  EXPECT_EQ(st.base_bytes, 5);
  EXPECT_EQ(st.delta_count, 1);
  EXPECT_EQ(st.total_bytes, 8);
  EXPECT_FALSE(st.is_table);
  EXPECT_TRUE(IsObjectNotFound(client_->Stat(client_->RefFor("app/s/c")).status()));
}

TEST_F(CacheClientTest, ErrorsNameTheKeyAndKeepTheirCode) {
  auto missing = client_->Get(client_->RefFor("app/s/missing"));
  EXPECT_TRUE(IsObjectNotFound(missing.status())) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("app/s/missing"), std::string::npos);
  EXPECT_TRUE(IsObjectNotFound(client_->Patch(client_->RefFor("app/s/missing"), Buf("d")).status()));
  EXPECT_STATUS(Invalid, "a/../b", client_->Get(client_->RefFor("a/../b")));
  EXPECT_STATUS(Invalid, "app/*", client_->Put("app/*", Buf("x")));
  EXPECT_STATUS(Invalid, "app", client_->Delete("app"));
  EXPECT_STATUS(IOError, "cannot open", client_->Upload("app/s", dir_ / "no-such-file"));
  ClientOptions http;
  http.endpoint = "http://x:1";
  EXPECT_FALSE(CacheClient::Connect(http).ok());
  ClientOptions half_mtls;
  half_mtls.cert_chain = "PEM";
  EXPECT_STATUS(Invalid, "mutual TLS", CacheClient::Connect(half_mtls));

  // Nothing listening: an error naming the key, not a hang (short deadline).
  ClientOptions options;
  options.endpoint = "grpc://127.0.0.1:1";
  options.timeout = std::chrono::seconds(5);
  ASSERT_OK_AND_ASSIGN(auto dead, CacheClient::Connect(options));
  auto r = dead->Get(dead->RefFor("app/s/o"));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("app/s/o"), std::string::npos) << r.status().ToString();
}

TEST_F(CacheClientTest, LaterCallsFollowTheAdvertisedEndpoint) {
  // The server advertises `localhost` while we dialled 127.0.0.1: refs, and so the cache,
  // are keyed by the advertised endpoint (as flamepy).
  TestServer named;
  ASSERT_OK(named.Start());  // learn a free port, then advertise it under another name
  const int port = named.port();
  ASSERT_OK(named.Stop());
  ASSERT_OK(named.StartOn(port, "grpc://localhost:" + std::to_string(port)));
  ClientOptions options;
  options.endpoint = "grpc://127.0.0.1:" + std::to_string(port);
  ASSERT_OK_AND_ASSIGN(auto client, CacheClient::Connect(options));
  ASSERT_OK_AND_ASSIGN(auto ref, client->Put("app/s", Buf("x")));
  EXPECT_EQ(ref.endpoint, "grpc://localhost:" + std::to_string(port));
  ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));
  EXPECT_EQ(value->endpoint, ref.endpoint);
  EXPECT_EQ(client->stats().entries, 1);
  // A put to the full key (sent to the configured endpoint) still drops that entry.
  ASSERT_OK(client->Put(ref.key, Buf("y")).status());
  EXPECT_EQ(client->stats().entries, 0);
  ASSERT_OK_AND_ASSIGN(auto updated, client->Get(ref));
  EXPECT_EQ(Str(updated->base), "y");
  client.reset();
  ASSERT_OK(named.Stop());
}

}  // namespace
}  // namespace foc
