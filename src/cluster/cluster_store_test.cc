// Two (and more) cluster stores sharing a real etcd and a real S3 gateway (versitygw), in
// one process: what one server commits, the other serves, with the cluster's versions.
#include "cluster/cluster_store.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

#include <arrow/api.h>
#include <arrow/filesystem/filesystem.h>
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
    o.gc_interval = 0ms;  // sweeps only when a test asks (SweepOrphans)
    o.gc_grace = grace_;
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

  // Payload object names under the cluster's S3 prefix, as S3 lists them.
  std::set<std::string> Payloads() {
    auto s3 = ConnectS3(gw_.Uri("bucket/cluster"));
    EXPECT_OK(s3.status());
    arrow::fs::FileSelector sel;
    sel.base_dir = s3->root + "/cluster/objects";
    sel.recursive = true;
    sel.allow_not_found = true;
    std::set<std::string> out;
    for (const auto& info : *s3->fs->GetFileInfo(sel)) {
      if (info.IsFile()) out.insert(info.path());
    }
    return out;
  }

  std::chrono::milliseconds grace_ = 0ms;
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

TEST_F(ClusterStoreTest, MembersAreEveryLiveServersEndpoint) {
  for (int i = 0; i < 5000 && a_->MemberEndpoints().size() != 2; ++i)
    std::this_thread::sleep_for(1ms);  // b's registration reaches a by the watch
  EXPECT_EQ(a_->MemberEndpoints(),
            (std::vector<std::string>{"grpc://a:9090", "grpc://b:9090"}));
  b_.reset();  // leaves (revokes its lease)
  for (int i = 0; i < 5000 && a_->MemberEndpoints().size() != 1; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(a_->MemberEndpoints(), std::vector<std::string>{"grpc://a:9090"});
}

// The race docs/cluster.md described: a DELETE applied to the deleting server's index,
// then a late watch event of an older write of the same key. The event must not bring
// the key back (it did: the index compared revisions only with entries it still had).
TEST_F(ClusterStoreTest, ALateWatchEventOfAnOlderWriteDoesNotReShowADeletedKey) {
  ASSERT_OK_AND_ASSIGN(auto put, b_->Put(PutTarget{"app", "s", "o"}, {Buf("v1"), {}}));
  ASSERT_NE(AwaitVersion(a_.get(), "app/s/o", 1), nullptr);
  ASSERT_OK_AND_ASSIGN(auto patched, b_->Patch(put.key, Buf("d")));
  // Freeze a's watch so the patch's event has not reached it, then delete through a.
  a_->StopWatchForTesting();
  auto read_now = [&]() -> arrow::Result<RecordEvent> {
    EtcdOptions eo;
    eo.endpoints = {etcd_.endpoint()};
    ARROW_ASSIGN_OR_RAISE(auto etcd, EtcdClient::Make(eo));
    ARROW_ASSIGN_OR_RAISE(auto meta, ClusterMetadata::Open(etcd.get(), "/test"));
    ARROW_ASSIGN_OR_RAISE(RecordRead read, meta->Read("app/s/o"));
    RecordEvent ev;
    ev.key = "app/s/o";
    ev.record = read.record;
    ev.revision = read.revision;
    return ev;
  };
  ASSERT_OK_AND_ASSIGN(RecordEvent late_event, read_now());
  ASSERT_TRUE(late_event.record.has_value());
  EXPECT_EQ(late_event.record->version, patched.version);
  ASSERT_OK(a_->Delete(*KeyPattern::Parse("app/s")).status());
  EXPECT_TRUE(a_->Get(put.key, 0).status().IsKeyError());
  a_->DeliverForTesting(std::vector<RecordEvent>{
      late_event});  // the patch's event arrives after the delete
  EXPECT_TRUE(a_->Get(put.key, 0).status().IsKeyError());
  ASSERT_OK_AND_ASSIGN(auto listed, a_->List());
  EXPECT_TRUE(listed.empty());
  // A write committed after the delete is shown, tombstone or not.
  ASSERT_OK_AND_ASSIGN(auto again, a_->Put(PutTarget{"app", "s", "o"}, {Buf("v4"), {}}));
  EXPECT_EQ(again.version, patched.version + 1);
  ASSERT_OK_AND_ASSIGN(auto read, a_->Get(put.key, 0));
  EXPECT_EQ(read.object->version(), again.version);
}

TEST_F(ClusterStoreTest, ARefreshedReadSeesEveryCommitBeforeIt) {
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "o"}, {Buf("1"), {}}));
  ASSERT_NE(AwaitVersion(b_.get(), "app/s/o", 1), nullptr);
  b_->StopWatchForTesting();  // b's index now lags without bound
  ASSERT_OK(a_->Patch(put.key, Buf("2")).status());
  ASSERT_OK_AND_ASSIGN(auto stale, b_->Get(put.key, 0));
  EXPECT_EQ(stale.object->version(), 1u);  // the plain read: within the staleness bound
  ASSERT_OK(b_->Refresh(put.key));
  ASSERT_OK_AND_ASSIGN(auto fresh, b_->Get(put.key, 0));
  EXPECT_EQ(Describe(*fresh.object), "v2 base@1=1 +2=2");
  // A key created elsewhere is found; a key deleted elsewhere is gone.
  ASSERT_OK_AND_ASSIGN(auto other, a_->Put(PutTarget{"app", "s", "new"}, {Buf("n"), {}}));
  EXPECT_TRUE(b_->Get(other.key, 0).status().IsKeyError());
  ASSERT_OK(b_->Refresh(other.key));
  ASSERT_OK_AND_ASSIGN(auto found, b_->Get(other.key, 0));
  EXPECT_EQ(found.object->version(), 1u);
  ASSERT_OK(a_->Delete(*KeyPattern::Parse("app/s/o")).status());
  ASSERT_OK(b_->Get(put.key, 0).status());  // stale
  ASSERT_OK(b_->Refresh(put.key));
  EXPECT_TRUE(b_->Get(put.key, 0).status().IsKeyError());
}

TEST_F(ClusterStoreTest, APatchOfAKeyCreatedElsewhereIsNotRefusedWithinTheWatchLag) {
  b_->StopWatchForTesting();  // b never hears of the key by the watch
  ASSERT_OK_AND_ASSIGN(auto put, a_->Put(PutTarget{"app", "s", "new"}, {Buf("b"), {}}));
  ASSERT_OK_AND_ASSIGN(auto patched, b_->Patch(put.key, Buf("d")));  // asks etcd
  EXPECT_EQ(patched.version, 2u);
  EXPECT_TRUE(b_->Patch(Key("app/s/never"), Buf("d")).status().IsKeyError());
}

TEST_F(ClusterStoreTest, OrphansAreCollectedAndLiveObjectsNeverAre) {
  // Orphans of every origin: a replaced base, a deleted object, a crashed write (a
  // payload whose commit never happened).
  ASSERT_OK_AND_ASSIGN(auto live,
                       a_->Put(PutTarget{"app", "s", "live"}, {Buf("old"), {}}));
  ASSERT_OK(a_->Put(PutTarget{"app", "s", "live"}, {Buf("base"), {}}).status());
  ASSERT_OK(b_->Patch(live.key, Buf("+d")).status());
  ASSERT_OK_AND_ASSIGN(auto gone, b_->Put(PutTarget{"app", "t", "gone"}, {Buf("x"), {}}));
  ASSERT_OK(b_->Patch(gone.key, Buf("y")).status());
  ASSERT_OK(a_->Delete(*KeyPattern::Parse("app/t")).status());
  {
    ASSERT_OK_AND_ASSIGN(auto s3, ConnectS3(gw_.Uri("bucket/cluster")));
    ASSERT_OK_AND_ASSIGN(
        auto out,
        s3.fs->OpenOutputStream(s3.root + "/cluster/objects/app/s/crashed/x.arrow"));
    ASSERT_OK(out->Write("torn"));
    ASSERT_OK(out->Close());
  }
  const std::set<std::string> before = Payloads();
  ASSERT_EQ(before.size(),
            6u);  // live: old base, base, delta; gone: base, delta; crashed
  std::this_thread::sleep_for(1100ms);  // S3 times have whole seconds

  // One collector at a time: the first server to sweep holds <prefix>/gc.
  ASSERT_OK_AND_ASSIGN(SweepResult first, a_->SweepOrphans());
  EXPECT_TRUE(first.collector);
  ASSERT_OK_AND_ASSIGN(SweepResult other, b_->SweepOrphans());
  EXPECT_FALSE(other.collector);
  EXPECT_EQ(first.listed, 6);
  EXPECT_EQ(first.referenced, 2);
  EXPECT_EQ(first.marked, 4);
  EXPECT_EQ(first.collected, 0);  // marked now, collected if still unreferenced next time
  ASSERT_OK_AND_ASSIGN(SweepResult second, a_->SweepOrphans());
  EXPECT_EQ(second.collected, 4);
  EXPECT_EQ(Payloads().size(), 2u);

  // What is live is intact: a fresh server (nothing cached) reads it from S3.
  ASSERT_OK_AND_ASSIGN(auto c, Open("c"));
  ASSERT_OK_AND_ASSIGN(auto read, c->Get(live.key, 0));
  EXPECT_EQ(Describe(*read.object), "v3 base@2=base +3=+d");

  // The collector leaving frees the lock for another server.
  a_.reset();
  ASSERT_OK_AND_ASSIGN(SweepResult taken_over, b_->SweepOrphans());
  EXPECT_TRUE(taken_over.collector);
  EXPECT_EQ(taken_over.collected, 0);
}

TEST_F(ClusterStoreTest, AWriteBetweenPayloadAndCommitIsNeverCollected) {
  grace_ = 1h;
  ASSERT_OK_AND_ASSIGN(auto collector, Open("collector"));
  // A payload in S3 whose commit has not happened yet (an in-flight write) looks like an
  // orphan; the grace period keeps it.
  ASSERT_OK_AND_ASSIGN(auto s3, ConnectS3(gw_.Uri("bucket/cluster")));
  const std::string name = s3.root + "/cluster/objects/app/s/o/inflight.arrow";
  ASSERT_OK_AND_ASSIGN(auto out, s3.fs->OpenOutputStream(name));
  ASSERT_OK(out->Write("payload"));
  ASSERT_OK(out->Close());
  a_.reset();  // so that `collector` can hold the lock
  b_.reset();
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(SweepResult swept, collector->SweepOrphans());
    EXPECT_TRUE(swept.collector);
    EXPECT_EQ(swept.young, 1);
    EXPECT_EQ(swept.collected, 0);
  }
  EXPECT_EQ(Payloads(), std::set<std::string>{name});
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
