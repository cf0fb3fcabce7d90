// Two (and more) cluster stores sharing a real etcd and a real S3 gateway (versitygw), in
// one process: what one server commits, the other serves, with the cluster's versions.
#include "cluster/cluster_store.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "storage/test_files.h"
#include "testing/etcd_server.h"
#include "testing/gtest_util.h"
#include "testing/versitygw.h"

namespace foc::cluster {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}
ObjectKey Key(const std::string& s) { return *ObjectKey::Parse(s); }

std::string Describe(const Object& o) {
  std::string s = "v" + std::to_string(o.version()) + " base@" +
                  std::to_string(o.base_version()) + "=";
  s += o.is_native() ? "<native>" : o.data()->ToString();
  for (const auto& d : o.deltas())
    s += " +" + std::to_string(d.version) + "=" + d.data->ToString();
  return s;
}

class ClusterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    ASSERT_OK(etcd_.Start());
    ASSERT_TRUE(gw_.running()) << "versitygw did not start: "
                               << testing::VersitygwBinary();
    gw_.MakeBucket("bucket");
    ASSERT_OK_AND_ASSIGN(a_, Open("a"));
    ASSERT_OK_AND_ASSIGN(b_, Open("b"));
  }
  arrow::Result<std::unique_ptr<ClusterStore>> Open(const std::string& id,
                                                    std::string uri = {}) {
    ClusterStoreOptions o;
    o.etcd = {etcd_.endpoint()};
    o.prefix = "/test";
    o.storage_uri = uri.empty() ? gw_.Uri("bucket/cluster") : uri;
    o.server_id = id;
    o.advertised_endpoint = "grpc://" + id + ":9090";
    return ClusterStore::Open(o);
  }
  // Waits (bounded) until `store` serves `key` at `version` (the watch lag).
  static Object::Ptr AwaitVersion(ClusterStore* store, const std::string& key,
                                  uint64_t version) {
    for (int i = 0; i < 60000; ++i) {
      auto read = store->Get(Key(key), 0);
      if (read.ok() && read->object->version() == version) return read->object;
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << key << " never reached version " << version;
    return nullptr;
  }
  static bool AwaitGone(ClusterStore* store, const std::string& key) {
    for (int i = 0; i < 60000; ++i) {
      if (store->Get(Key(key), 0).status().IsKeyError()) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

  foc::testing::EtcdServer etcd_;
  foc::testing::TempDir dir_;
  testing::Versitygw gw_{dir_.path()};
  std::unique_ptr<ClusterStore> a_, b_;
};

TEST_F(ClusterStoreTest, WrittenThroughOneServedByAnotherWithTheSameVersion) {
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "o"}, {Buf("base"), {}}));
  EXPECT_EQ(put.version, 1u);
  // Read your writes on the server that took it: no waiting.
  ASSERT_OK_AND_ASSIGN(auto mine, a_->Get(put.key, 0));
  EXPECT_EQ(Describe(*mine.object), "v1 base@1=base");
  Object::Ptr there = AwaitVersion(b_.get(), "app/s/o", 1);
  ASSERT_NE(there, nullptr);
  EXPECT_EQ(Describe(*there), "v1 base@1=base");
  ASSERT_OK_AND_ASSIGN(auto patched, b_->Patch(put.key, Buf("d")));
  EXPECT_EQ(patched.version, 2u);
  there = AwaitVersion(a_.get(), "app/s/o", 2);
  ASSERT_NE(there, nullptr);
  EXPECT_EQ(Describe(*there), "v2 base@1=base +2=d");
  // A conditional get is planned against the cluster's version.
  ASSERT_OK_AND_ASSIGN(auto read, a_->Get(put.key, 1));
  EXPECT_EQ(read.plan.kind, GetReplyKind::kPatches);
  EXPECT_EQ(a_->epoch(), b_->epoch());
  EXPECT_EQ(a_->members().size(), 2u);
}

TEST_F(ClusterStoreTest,
       ConcurrentPatchesThroughTwoServersAllLandWithContiguousVersions) {
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "hot"}, {Buf("b"), {}}));
  ASSERT_NE(AwaitVersion(b_.get(), "app/s/hot", 1), nullptr);
  constexpr int kEach = 12;
  std::vector<uint64_t> versions[2];
  std::thread writers[2];
  ClusterStore* servers[2] = {a_.get(), b_.get()};
  for (int w = 0; w < 2; ++w) {
    writers[w] = std::thread([&, w] {
      for (int i = 0; i < kEach; ++i) {
        auto r = servers[w]->Patch(put.key, Buf(std::to_string(w)));
        ASSERT_OK(r.status());
        versions[w].push_back(r->version);
      }
    });
  }
  for (auto& t : writers) t.join();
  std::vector<uint64_t> all = versions[0];
  all.insert(all.end(), versions[1].begin(), versions[1].end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(all[i], i + 2);  // distinct, contiguous
  for (ClusterStore* s : servers) {
    Object::Ptr o = AwaitVersion(s, "app/s/hot", 1 + 2 * kEach);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->deltas().size(), size_t{2 * kEach});
  }
}

TEST_F(ClusterStoreTest, DeleteThroughOneServerFloorsVersionsOnAll) {
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "o"}, {Buf("1"), {}}));
  ASSERT_OK(a_->Patch(put.key, Buf("2")).status());
  ASSERT_NE(AwaitVersion(b_.get(), "app/s/o", 2), nullptr);
  ASSERT_OK_AND_ASSIGN(auto removed, b_->Delete(*KeyPattern::Parse("app/*")));
  EXPECT_EQ(removed, 1);
  EXPECT_TRUE(b_->Get(put.key, 0).status().IsKeyError());  // at once where it was deleted
  EXPECT_TRUE(AwaitGone(a_.get(), "app/s/o"));
  EXPECT_TRUE(a_->Patch(put.key, Buf("x")).status().IsKeyError());
  // Re-created through the other server: continues above every version ever issued.
  ASSERT_OK_AND_ASSIGN(auto again, a_->Put(PutTarget{"app", "s", "o"}, {Buf("new"), {}}));
  EXPECT_EQ(again.version, 3u);
}

TEST_F(ClusterStoreTest, EveryServersFeedReportsEveryServersCommitsInOrder) {
  ASSERT_OK_AND_ASSIGN(auto sub,
                       b_->change_feed()->Subscribe({*KeyPattern::Parse("app/*")}, 64));
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "o"}, {Buf("1"), {}}));
  ASSERT_OK(b_->Patch(put.key, Buf("2")).status());
  ASSERT_OK(a_->Delete(*KeyPattern::Parse("app/s/o")).status());
  std::vector<Change> got;
  for (int i = 0; i < 600 && got.size() < 3; ++i) ASSERT_OK(sub->Next(100ms, &got));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], (Change{"app/s/o", 1, ChangeKind::kPut}));
  EXPECT_EQ(got[1], (Change{"app/s/o", 2, ChangeKind::kPatch}));
  EXPECT_EQ(got[2], (Change{"app/s/o", 2, ChangeKind::kDelete}));
}

TEST_F(ClusterStoreTest, ANewServerServesEverythingFromEtcdAndS3) {
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", ""}, {Buf("base"), {}}));
  ASSERT_OK(a_->Patch(put.key, Buf("d")).status());
  auto table =
      arrow::Table::Make(arrow::schema({arrow::field("x", arrow::int64())}),
                         {*arrow::MakeArrayFromScalar(arrow::Int64Scalar(7), 3)});
  auto batches = *arrow::TableBatchReader(*table).ToRecordBatches();
  auto schema = table->schema()->WithMetadata(
      arrow::key_value_metadata({"flame.cache.format"}, {"arrow-table-v1"}));
  ASSERT_OK_AND_ASSIGN(auto native, a_->Put(PutTarget{"app", "s", "t"},
                                            {nullptr, NativeTable{schema, batches}}));
  a_.reset();
  b_.reset();
  ASSERT_OK_AND_ASSIGN(auto c, Open("c"));
  ASSERT_OK_AND_ASSIGN(auto read, c->Get(put.key, 0));
  EXPECT_EQ(Describe(*read.object), "v2 base@1=base +2=d");
  ASSERT_OK_AND_ASSIGN(read, c->Get(native.key, 0));
  ASSERT_TRUE(read.object->is_native());
  EXPECT_EQ(read.plan.kind, GetReplyKind::kNative);
  ASSERT_OK_AND_ASSIGN(auto listed, c->List());
  EXPECT_EQ(listed.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto s, c->NativeSchema(native.key));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->num_fields(), 1);
}

TEST_F(ClusterStoreTest, RefusesWhatCannotBeACluster) {
  ClusterStoreOptions o;
  o.storage_uri = gw_.Uri("bucket/x");
  EXPECT_STATUS(Invalid, "etcd", ClusterStore::Open(o).status());
  o.etcd = {etcd_.endpoint()};
  o.storage_uri = "fs:///tmp/x";
  EXPECT_STATUS(Invalid, "s3://", ClusterStore::Open(o).status());
}

}  // namespace
}  // namespace foc::cluster
