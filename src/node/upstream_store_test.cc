// The node-local tier's store against a real in-process upstream on port 0, directly and
// through a FlightService serving it (a real client talking to the tier).
#include "node/upstream_store.h"

#include <unistd.h>

#include <thread>

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "flight/flight_service.h"
#include "testing/gtest_util.h"
#include "testing/test_server.h"

namespace foc {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

ObjectKey Key(const std::string& s) { return *ObjectKey::Parse(s); }

class UpstreamStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(upstream_.Start());
    ClientOptions options;
    options.endpoint = upstream_.endpoint();
    ASSERT_OK_AND_ASSIGN(auto tier, UpstreamStore::Open(options));
    tier_ = std::shared_ptr<UpstreamStore>(std::move(tier));
  }
  void TearDown() override {
    if (service_) {
      ASSERT_OK(service_->Shutdown());
      ASSERT_OK(service_->Wait());
    }
    service_.reset();
    tier_.reset();
    ASSERT_OK(upstream_.Stop());
  }
  // Serves the tier over Flight on port 0 and returns a client of it.
  std::unique_ptr<CacheClient> ServeTier() {
    auto location = *arrow::flight::Location::ForGrpcTcp("127.0.0.1", 0);
    service_ = std::make_unique<FlightService>(tier_, FlightServiceOptions{});
    EXPECT_OK(service_->Init(arrow::flight::FlightServerOptions(location)));
    ClientOptions options;
    options.endpoint = "grpc://127.0.0.1:" + std::to_string(service_->port());
    return *CacheClient::Connect(options);
  }

  testing::TestServer upstream_;
  std::shared_ptr<UpstreamStore> tier_;
  std::unique_ptr<FlightService> service_;
};

TEST_F(UpstreamStoreTest, WritesAreTheUpstreamsWithTheUpstreamsVersions) {
  ASSERT_OK_AND_ASSIGN(auto put,
                       tier_->Put(PutTarget{"app", "s", "o"}, {Buf("base"), {}}));
  EXPECT_EQ(put.key.str(), "app/s/o");
  EXPECT_EQ(put.version, 1u);
  ASSERT_OK_AND_ASSIGN(auto patched, tier_->Patch(put.key, Buf("d1")));
  EXPECT_EQ(patched.version, 2u);
  // The upstream holds exactly that: the tier assigned nothing itself.
  ASSERT_OK_AND_ASSIGN(auto there, upstream_.store->Get(put.key, 0));
  EXPECT_EQ(there.object->version(), 2u);
  EXPECT_EQ(there.object->data()->ToString(), "base");
  ASSERT_EQ(there.object->deltas().size(), 1u);
  EXPECT_EQ(there.object->deltas()[0].data->ToString(), "d1");
  // A session put: the upstream generates the id.
  ASSERT_OK_AND_ASSIGN(auto generated,
                       tier_->Put(PutTarget{"app", "s", ""}, {Buf("x"), {}}));
  EXPECT_EQ(generated.key.session(), "s");
  EXPECT_OK(upstream_.store->Get(generated.key, 0).status());
  EXPECT_EQ(tier_->epoch(), upstream_.store->epoch());
}

TEST_F(UpstreamStoreTest, GetsPlanAgainstTheUpstreamsCurrentVersion) {
  ASSERT_OK_AND_ASSIGN(
      auto put, upstream_.store->Put(PutTarget{"app", "s", "o"}, {Buf("base"), {}}));
  ASSERT_OK_AND_ASSIGN(auto read, tier_->Get(put.key, 0));
  EXPECT_EQ(read.plan.kind, GetReplyKind::kFull);
  EXPECT_EQ(read.object->version(), 1u);
  ASSERT_OK_AND_ASSIGN(read, tier_->Get(put.key, 1));
  EXPECT_EQ(read.plan.kind, GetReplyKind::kNotModified);
  // Written behind the tier's back, at the upstream: the tier's next get has it (a
  // conditional round trip, or the pushed change while its subscription is healthy).
  ASSERT_OK(upstream_.store->Patch(put.key, Buf("d2")).status());
  ASSERT_OK(upstream_.store->Patch(put.key, Buf("d3")).status());
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 60000) << "the tier never saw the upstream's patches";
    ASSERT_OK_AND_ASSIGN(read, tier_->Get(put.key, 2));
    if (read.object->version() == 3) break;
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(read.plan.kind, GetReplyKind::kPatches);
  EXPECT_EQ(read.object->deltas()[read.plan.first_delta].data->ToString(), "d3");
  EXPECT_EQ(tier_->stats().patch_replies, 1);
}

TEST_F(UpstreamStoreTest, MissingAndDeletedObjectsAreNotFound) {
  EXPECT_TRUE(tier_->Get(Key("app/s/none"), 0).status().IsKeyError());
  EXPECT_TRUE(tier_->Patch(Key("app/s/none"), Buf("d")).status().IsKeyError());
  ASSERT_OK_AND_ASSIGN(auto put, tier_->Put(PutTarget{"app", "s", "o"}, {Buf("v"), {}}));
  ASSERT_OK(tier_->Get(put.key, 0).status());
  ASSERT_OK_AND_ASSIGN(auto n, tier_->Delete(*KeyPattern::Parse("app/s")));
  EXPECT_EQ(n, -1);  // the upstream does not report a count
  EXPECT_TRUE(upstream_.store->Get(put.key, 0).status().IsKeyError());
  EXPECT_TRUE(tier_->Get(put.key, 0).status().IsKeyError());  // its copy is gone too
}

TEST_F(UpstreamStoreTest, ListsTheUpstreamsObjects) {
  ASSERT_OK(upstream_.store->Put(PutTarget{"a", "s", "o1"}, {Buf("12345"), {}}).status());
  ASSERT_OK(tier_->Put(PutTarget{"a", "s", "o2"}, {Buf("1"), {}}).status());
  ASSERT_OK_AND_ASSIGN(auto listed, tier_->List());
  ASSERT_EQ(listed.size(), 2u);
  std::sort(listed.begin(), listed.end(),
            [](const auto& x, const auto& y) { return x.key.str() < y.key.str(); });
  EXPECT_EQ(listed[0].key.str(), "a/s/o1");
  EXPECT_EQ(listed[0].version, 1u);
  EXPECT_EQ(listed[0].payload_bytes, 5);
}

TEST_F(UpstreamStoreTest, AClientOfTheTierReadsAndWritesTheUpstream) {
  auto client = ServeTier();
  ASSERT_OK_AND_ASSIGN(auto ref, client->Put("app/s/o", Buf("v1")));
  EXPECT_EQ(ref.version, 1u);
  ASSERT_OK_AND_ASSIGN(ref, client->Patch(ref, Buf("+d")));
  EXPECT_EQ(ref.version, 2u);
  ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));
  EXPECT_EQ(value->version, 2u);
  EXPECT_EQ(value->base->ToString(), "v1");
  ASSERT_EQ(value->deltas.size(), 1u);
  EXPECT_EQ(value->epoch, upstream_.store->epoch());
  // A native table goes through the tier and comes back a table, metadata intact.
  auto table =
      arrow::Table::Make(arrow::schema({arrow::field("x", arrow::int64())}),
                         {*arrow::MakeArrayFromScalar(arrow::Int64Scalar(7), 3)});
  ASSERT_OK_AND_ASSIGN(auto tref, client->PutTable("app/s/t", table));
  ASSERT_OK_AND_ASSIGN(auto back, client->GetTable(tref));
  EXPECT_TRUE(back->Equals(*table));
  ASSERT_OK_AND_ASSIGN(auto there, upstream_.store->NativeSchema(Key("app/s/t")));
  ASSERT_NE(there, nullptr);
  // WATCH through the tier: the upstream's changes, republished with its versions.
  WatchRequest request;
  request.patterns = {"app/*"};
  request.snapshot = false;
  ASSERT_OK_AND_ASSIGN(auto watch, client->Watch(request));
  ASSERT_OK_AND_ASSIGN(auto put, upstream_.store->Put(PutTarget{"app", "s", "w"},
                                                      {Buf("from upstream"), {}}));
  ASSERT_OK(upstream_.store->Patch(put.key, Buf("d")).status());
  ASSERT_OK(upstream_.store->Delete(*KeyPattern::Parse("app/s/w")).status());
  ASSERT_OK_AND_ASSIGN(auto e1, watch->Next());
  EXPECT_EQ(e1, (WatchEvent{"app/s/w", put.version, "put", upstream_.store->epoch()}));
  ASSERT_OK_AND_ASSIGN(auto e2, watch->Next());
  EXPECT_EQ(e2.kind, "patch");
  EXPECT_EQ(e2.version, put.version + 1);
  ASSERT_OK_AND_ASSIGN(auto e3, watch->Next());
  EXPECT_EQ(e3.kind, "delete");
  EXPECT_EQ(e3.version, put.version + 1);
  watch->Cancel();
}

TEST_F(UpstreamStoreTest, MapWritesTheVersionsFilesOnceAndReusesTheBase) {
  // Without a map directory: refused (clients read over gRPC).
  EXPECT_TRUE(tier_->MapLocal(Key("app/s/o")).status().IsNotImplemented());
  ClientOptions options;
  options.endpoint = upstream_.endpoint();
  ASSERT_OK_AND_ASSIGN(auto dir, LocalMapDir::Open(::testing::TempDir(), 1 << 20));
  const std::string path = dir->path();
  ASSERT_OK_AND_ASSIGN(auto tier, UpstreamStore::Open(options, std::move(dir)));
  ASSERT_OK_AND_ASSIGN(
      auto put, upstream_.store->Put(PutTarget{"app", "s", "o"}, {Buf("base"), {}}));
  ASSERT_OK_AND_ASSIGN(auto mapped, tier->MapLocal(put.key));
  EXPECT_EQ(mapped.version, 1u);
  ASSERT_EQ(mapped.files.size(), 1u);
  EXPECT_EQ(mapped.files[0].path.rfind(path, 0), 0u);
  EXPECT_EQ(mapped.files[0].version, 1u);
  EXPECT_EQ(mapped.files[0].checksum.rfind("xxh3-64:", 0), 0u);
  ASSERT_OK(upstream_.store->Patch(put.key, Buf("d2")).status());
  for (int i = 0;; ++i) {  // until the tier has seen the patch
    ASSERT_LT(i, 60000);
    ASSERT_OK_AND_ASSIGN(mapped, tier->MapLocal(put.key));
    if (mapped.version == 2) break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(mapped.files.size(), 2u);
  EXPECT_EQ(mapped.files[0].path.rfind(path, 0), 0u);
  EXPECT_EQ(mapped.files[1].version, 2u);
  // Replaced: a new base; the old files are unlinked.
  const std::string old_base = mapped.files[0].path;
  ASSERT_OK(upstream_.store->Put(PutTarget{"app", "s", "o"}, {Buf("new"), {}}).status());
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 60000);
    ASSERT_OK_AND_ASSIGN(mapped, tier->MapLocal(put.key));
    if (mapped.version == 3) break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(mapped.files.size(), 1u);
  EXPECT_NE(mapped.files[0].path, old_base);
  EXPECT_NE(::access(old_base.c_str(), F_OK), 0);
  EXPECT_TRUE(tier->MapLocal(Key("app/s/none")).status().IsKeyError());
  tier.reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // removed with the tier
}

TEST_F(UpstreamStoreTest, AnUnreachableUpstreamFailsWritesAndKeepsNothing) {
  ASSERT_OK(tier_->Put(PutTarget{"app", "s", "o"}, {Buf("v"), {}}).status());
  ASSERT_OK(upstream_.Stop());
  auto put = tier_->Put(PutTarget{"app", "s", "p"}, {Buf("v"), {}});
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(put.status().IsIOError()) << put.status().ToString();
  auto patch = tier_->Patch(Key("app/s/o"), Buf("d"));
  EXPECT_FALSE(patch.ok());
}

}  // namespace
}  // namespace foc
