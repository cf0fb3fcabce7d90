// ClusterMetadata against a real etcd (Debian's etcd-server) on loopback.
#include "cluster/metadata.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "testing/etcd_server.h"
#include "testing/gtest_util.h"

namespace foc::cluster {
namespace {

// A mutation that creates the object or appends one delta, named after the writer.
std::function<arrow::Result<ObjectRecord>(const CommitInput&)> AppendOrCreate(
    const std::string& writer) {
  return [writer](const CommitInput& in) -> arrow::Result<ObjectRecord> {
    PayloadRef part{in.version, writer + "-" + std::to_string(in.version), 10};
    if (!in.current) return ObjectRecord{in.version, part, {}, false};
    ObjectRecord next = *in.current;
    next.version = in.version;
    next.deltas.push_back(part);
    return next;
  };
}

std::function<arrow::Result<ObjectRecord>(const CommitInput&)> Replace() {
  return [](const CommitInput& in) -> arrow::Result<ObjectRecord> {
    return ObjectRecord{
        in.version, {in.version, "base-" + std::to_string(in.version), 5}, {}, false};
  };
}

class MetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    ASSERT_OK_AND_ASSIGN(client_, EtcdClient::Make({{etcd_.endpoint()}}));
    ASSERT_OK_AND_ASSIGN(meta_, ClusterMetadata::Open(client_.get(), "/c"));
  }
  foc::testing::EtcdServer etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<ClusterMetadata> meta_;
};

TEST(RecordTest, EncodesAndDecodes) {
  ObjectRecord r{7, {3, "a/s/o/3-x", 100}, {{5, "d5", 1}, {7, "d7", 2}}, false};
  ASSERT_OK_AND_ASSIGN(auto back, DecodeRecord(EncodeRecord(r)));
  EXPECT_EQ(back, r);
  ObjectRecord big{UINT64_MAX, {UINT64_MAX, "n", 1}, {}, true};
  ASSERT_OK_AND_ASSIGN(auto big_back, DecodeRecord(EncodeRecord(big)));
  EXPECT_EQ(big_back, big);
  EXPECT_STATUS(Invalid, "unreadable", DecodeRecord("not json"));
  EXPECT_STATUS(Invalid, "malformed", DecodeRecord("{\"version\": \"x\"}"));
}

TEST_F(MetadataTest, EpochIsCreatedOnceAndSharedByEveryServer) {
  ASSERT_OK_AND_ASSIGN(auto again, ClusterMetadata::Open(client_.get(), "/c"));
  EXPECT_EQ(again->epoch(), meta_->epoch());
  EXPECT_EQ(meta_->epoch().size(), 32u);
  ASSERT_OK_AND_ASSIGN(auto other, ClusterMetadata::Open(client_.get(), "/other"));
  EXPECT_NE(other->epoch(), meta_->epoch());
  EXPECT_STATUS(Invalid, "must start with '/'",
                ClusterMetadata::Open(client_.get(), "c"));
  EXPECT_STATUS(Invalid, "must start with '/'",
                ClusterMetadata::Open(client_.get(), "/c/"));
}

TEST_F(MetadataTest, CommitsCreateAppendAndReplace) {
  ASSERT_OK_AND_ASSIGN(auto c1, meta_->Commit("a/s/o", AppendOrCreate("w")));
  EXPECT_EQ(c1.record.version, 1u);
  EXPECT_EQ(c1.attempts, 1);
  ASSERT_OK_AND_ASSIGN(auto c2, meta_->Commit("a/s/o", AppendOrCreate("w")));
  EXPECT_EQ(c2.record.version, 2u);
  ASSERT_EQ(c2.record.deltas.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto c3, meta_->Commit("a/s/o", Replace()));
  EXPECT_EQ(c3.record.version, 3u);
  EXPECT_TRUE(c3.record.deltas.empty());
  ASSERT_OK_AND_ASSIGN(auto stored, meta_->Get("a/s/o"));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, c3.record);
  ASSERT_OK_AND_ASSIGN(auto none, meta_->Get("a/s/missing"));
  EXPECT_FALSE(none.has_value());
}

TEST_F(MetadataTest, AFailedMutationWritesNothing) {
  ASSERT_OK(meta_->Commit("a/s/o", Replace()));
  EXPECT_STATUS(Invalid, "refused", meta_->Commit("a/s/o", [](const CommitInput&) {
    return arrow::Result<ObjectRecord>(arrow::Status::Invalid("refused"));
  }));
  EXPECT_STATUS(Invalid, "instead of", meta_->Commit("a/s/o", [](const CommitInput& in) {
    return arrow::Result<ObjectRecord>(ObjectRecord{in.version + 5, {}, {}, false});
  }));
  ASSERT_OK_AND_ASSIGN(auto stored, meta_->Get("a/s/o"));
  EXPECT_EQ(stored->version, 1u);
}

TEST_F(MetadataTest, ConcurrentPatchersThroughThreeServersGetDistinctContiguousVersions) {
  ASSERT_OK(meta_->Commit("rl/s/policy", Replace()));  // version 1
  // Three "servers", each with its own etcd client and metadata handle.
  std::vector<std::unique_ptr<EtcdClient>> clients;
  std::vector<std::unique_ptr<ClusterMetadata>> servers;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, EtcdClient::Make({{etcd_.endpoint()}}));
    ASSERT_OK_AND_ASSIGN(auto m, ClusterMetadata::Open(c.get(), "/c"));
    clients.push_back(std::move(c));
    servers.push_back(std::move(m));
  }
  constexpr int kPatchers = 64;
  std::mutex mu;
  std::vector<uint64_t> versions;
  std::atomic<int> failures{0}, lost_races{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kPatchers; ++p) {
    threads.emplace_back([&, p] {
      auto r =
          servers[p % 3]->Commit("rl/s/policy", AppendOrCreate("p" + std::to_string(p)));
      if (!r.ok()) {
        ++failures;
        return;
      }
      lost_races += r->attempts - 1;
      std::lock_guard<std::mutex> lock(mu);
      versions.push_back(r->record.version);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  std::set<uint64_t> distinct(versions.begin(), versions.end());
  ASSERT_EQ(distinct.size(), size_t{kPatchers});
  EXPECT_EQ(*distinct.begin(), 2u);
  EXPECT_EQ(*distinct.rbegin(), uint64_t{kPatchers} + 1);  // contiguous: 2..65
  ASSERT_OK_AND_ASSIGN(auto stored, meta_->Get("rl/s/policy"));
  ASSERT_EQ(stored->deltas.size(), size_t{kPatchers});
  for (size_t i = 0; i < stored->deltas.size(); ++i) {
    EXPECT_EQ(stored->deltas[i].version, i + 2);  // every delta kept, in version order
  }
  EXPECT_GT(lost_races.load(), 0) << "the patchers never raced; the test proves little";
}

TEST_F(MetadataTest, DeleteRaisesFloorsSoVersionsNeverRepeat) {
  for (int i = 0; i < 5; ++i) ASSERT_OK(meta_->Commit("a/s1/o", AppendOrCreate("w")));
  ASSERT_OK(meta_->Commit("a/s1/p", Replace()));
  ASSERT_OK(meta_->Commit("a/s2/o", Replace()));
  ASSERT_OK(meta_->Commit("b/s1/o", Replace()));

  ASSERT_OK_AND_ASSIGN(int64_t one, meta_->Delete("a/s1/o"));
  EXPECT_EQ(one, 1);
  ASSERT_OK_AND_ASSIGN(auto recreated, meta_->Commit("a/s1/o", Replace()));
  EXPECT_EQ(recreated.record.version, 6u);  // above the 5 it had

  ASSERT_OK_AND_ASSIGN(int64_t session, meta_->Delete("a/s1"));
  EXPECT_EQ(session, 2);
  ASSERT_OK_AND_ASSIGN(auto p_again, meta_->Commit("a/s1/p", Replace()));
  EXPECT_EQ(p_again.record.version, 7u);  // the session floor is 6

  ASSERT_OK_AND_ASSIGN(int64_t app, meta_->Delete("a/*"));
  EXPECT_EQ(app, 2);  // a/s1/p and a/s2/o
  ASSERT_OK_AND_ASSIGN(auto fresh, meta_->Commit("a/s9/new", Replace()));
  EXPECT_EQ(fresh.record.version, 8u);  // the app floor is 7
  ASSERT_OK_AND_ASSIGN(auto b, meta_->Get("b/s1/o"));
  EXPECT_TRUE(b.has_value());  // another app untouched
  ASSERT_OK_AND_ASSIGN(int64_t nothing, meta_->Delete("zzz/*"));
  EXPECT_EQ(nothing, 0);
}

TEST_F(MetadataTest, SnapshotPagesThroughEveryRecordAtOneRevision) {
  constexpr int kObjects = 2300;  // more than two pages
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kObjects; i += 4) {
        if (!meta_
                 ->Commit("app/s" + std::to_string(i % 7) + "/o" + std::to_string(i),
                          Replace())
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_OK(meta_->Delete("app/s0/o0"));
  ASSERT_OK_AND_ASSIGN(auto snap, meta_->Snapshot());
  EXPECT_EQ(snap.records.size(), size_t{kObjects} - 1);
  ASSERT_EQ(snap.floors.size(), 1u);
  EXPECT_EQ(snap.floors[0].first, "app/s0/o0");
  EXPECT_EQ(snap.floors[0].second, 1u);
  std::set<std::string> keys;
  for (const auto& [k, r] : snap.records) keys.insert(k);
  EXPECT_EQ(keys.size(), snap.records.size());
  EXPECT_GT(snap.revision, 0);
}

TEST_F(MetadataTest, FollowSeesCommitsDeletesAndFloorsAfterASnapshot) {
  ASSERT_OK(meta_->Commit("a/s/before", Replace()));
  ASSERT_OK_AND_ASSIGN(auto snap, meta_->Snapshot());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<RecordEvent> seen;
  ASSERT_OK_AND_ASSIGN(auto watch, meta_->Follow(
                                       snap.revision,
                                       [&](const std::vector<RecordEvent>& events) {
                                         std::lock_guard<std::mutex> lock(mu);
                                         seen.insert(seen.end(), events.begin(),
                                                     events.end());
                                         cv.notify_all();
                                       },
                                       nullptr));
  ASSERT_OK(meta_->Commit("a/s/o", Replace()));
  ASSERT_OK(meta_->Commit("a/s/o", AppendOrCreate("w")));
  ASSERT_OK(meta_->Delete("a/s"));
  std::unique_lock<std::mutex> lock(mu);
  // create, patch, then one transaction: the session floor and two record deletions
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] {
    return seen.size() >= 5;
  })) << seen.size();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].key, "a/s/o");
  EXPECT_EQ(seen[0].record->version, 1u);
  EXPECT_EQ(seen[1].record->version, 2u);
  EXPECT_EQ(seen[1].record->deltas.size(), 1u);
  EXPECT_TRUE(seen[2].is_floor);
  EXPECT_EQ(seen[2].key, "a/s");
  EXPECT_EQ(seen[2].floor, 2u);
  std::set<std::string> deleted = {seen[3].key, seen[4].key};
  EXPECT_EQ(deleted, (std::set<std::string>{"a/s/before", "a/s/o"}));
  EXPECT_FALSE(seen[3].record.has_value());
  EXPECT_EQ(seen[3].revision, seen[4].revision);  // one transaction
}

}  // namespace
}  // namespace foc::cluster
