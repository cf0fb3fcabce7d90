#include "store/object_store.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

#include <thread>

#include <arrow/util/key_value_metadata.h>
#include <vector>

#include "storage/disk_storage.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

std::shared_ptr<arrow::Buffer> Bytes(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

std::unique_ptr<ObjectStore> MemoryStore(StoreOptions options = {}) {
  return ObjectStore::Open(options, nullptr).ValueOrDie();
}

PutTarget Target(const std::string& app, const std::string& session,
                 const std::string& id = "") {
  return PutTarget{app, session, id};
}

std::string Text(const std::shared_ptr<arrow::Buffer>& b) { return b->ToString(); }

TEST(ObjectStoreTest, PutGeneratesIdAndStartsAtVersionOne) {
  auto store = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("app", "s"), {Bytes("hello"), {}}));
  EXPECT_EQ(w.version, 1u);
  EXPECT_EQ(w.key.prefix(), "app/s");
  EXPECT_EQ(w.key.object().size(), 36u);
  ASSERT_OK_AND_ASSIGN(auto r, store->Get(w.key, 0));
  EXPECT_EQ(r.plan.kind, GetReplyKind::kFull);
  EXPECT_EQ(Text(r.object->data()), "hello");
}

TEST(ObjectStoreTest, UpdateAndPatchAdvanceVersions) {
  auto store = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto w1, store->Put(Target("a", "s", "o"), {Bytes("base"), {}}));
  ASSERT_OK_AND_ASSIGN(auto w2, store->Patch(w1.key, Bytes("p1")));
  ASSERT_OK_AND_ASSIGN(auto w3, store->Patch(w1.key, Bytes("p2")));
  EXPECT_EQ(w2.version, 2u);
  EXPECT_EQ(w3.version, 3u);
  ASSERT_OK_AND_ASSIGN(auto r, store->Get(w1.key, 1));
  EXPECT_EQ(r.plan.kind, GetReplyKind::kPatches);
  ASSERT_OK_AND_ASSIGN(auto nm, store->Get(w1.key, 3));
  EXPECT_EQ(nm.plan.kind, GetReplyKind::kNotModified);
  ASSERT_OK_AND_ASSIGN(auto w4, store->Put(Target("a", "s", "o"), {Bytes("new"), {}}));
  EXPECT_EQ(w4.version, 4u);
  ASSERT_OK_AND_ASSIGN(auto full, store->Get(w1.key, 1));
  EXPECT_EQ(full.plan.kind, GetReplyKind::kFull);
  EXPECT_TRUE(full.object->deltas().empty());
  auto stats = store->stats();
  EXPECT_EQ(stats.not_modified_replies, 1);
  EXPECT_EQ(stats.patch_replies, 1);
}

TEST(ObjectStoreTest, PatchOfMissingObjectIsNotFound) {
  auto store = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto key, ObjectKey::Parse("a/s/missing"));
  EXPECT_STATUS(KeyError, "not found for patch", store->Patch(key, Bytes("x")));
  EXPECT_STATUS(KeyError, "not found", store->Get(key, 0));
}

TEST(ObjectStoreTest, VersionsContinueAfterDeleteAndRecreate) {
  auto store = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto w1, store->Put(Target("a", "s", "o"), {Bytes("v1"), {}}));
  ASSERT_OK(store->Patch(w1.key, Bytes("p")));
  for (const char* pattern : {"a/s/o", "a/s", "a/*"}) {
    ASSERT_OK_AND_ASSIGN(auto before, store->Get(w1.key, 0));
    const uint64_t old_version = before.object->version();
    before = {};
    ASSERT_OK_AND_ASSIGN(auto p, KeyPattern::Parse(pattern));
    ASSERT_OK_AND_ASSIGN(auto removed, store->Delete(p));
    EXPECT_EQ(removed, 1) << pattern;
    EXPECT_STATUS(KeyError, "not found", store->Get(w1.key, 0));
    ASSERT_OK_AND_ASSIGN(auto again,
                         store->Put(Target("a", "s", "o"), {Bytes("new"), {}}));
    EXPECT_GT(again.version, old_version) << pattern;
  }
}

// Issue 12: with storage: none every DELETE of a distinct session used to leave one
// version floor in memory forever. The floors stay bounded (the oldest fold into their
// app's floor) and every deleted session's keys still continue above their old versions.
TEST(ObjectStoreTest, DeleteFloorsStayBoundedAndVersionsStillIncrease) {
  StoreOptions options;
  options.max_version_floors = 16;
  auto store = MemoryStore(options);
  constexpr int kSessions = 500;
  std::map<std::string, uint64_t> deleted;  // session -> version its key had
  for (int i = 0; i < kSessions; ++i) {
    const std::string session = "s" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(auto w,
                         store->Put(Target("app", session, "o"), {Bytes("v"), {}}));
    // A few versions each, different per session, so that the floors differ.
    for (int p = 0; p < i % 4; ++p) ASSERT_OK(store->Patch(w.key, Bytes("p")));
    ASSERT_OK_AND_ASSIGN(auto before, store->Lookup(w.key));
    ASSERT_OK_AND_ASSIGN(auto pattern, KeyPattern::Parse("app/" + session));
    ASSERT_OK_AND_ASSIGN(auto removed, store->Delete(pattern));
    ASSERT_EQ(removed, 1);
    deleted[session] = before.version;
    // 16 session floors, plus the app's own.
    EXPECT_LE(store->version_floors_size(), 16 + 1) << session;
  }
  for (const auto& [session, old_version] : deleted) {
    ASSERT_OK_AND_ASSIGN(auto key, ObjectKey::Make("app", session, "o"));
    EXPECT_STATUS(KeyError, "not found", store->Get(key, 0));
    ASSERT_OK_AND_ASSIGN(auto again,
                         store->Put(Target("app", session, "o"), {Bytes("w"), {}}));
    EXPECT_GT(again.version, old_version) << session;
    ASSERT_OK_AND_ASSIGN(auto read, store->Get(key, 0));
    EXPECT_EQ(Text(read.object->data()), "w");
  }
  EXPECT_LE(store->version_floors_size(), 16 + 1);
}

TEST(ObjectStoreTest, DeleteMatchesByComponent) {
  auto store = MemoryStore();
  ASSERT_OK(store->Put(Target("a", "s", "x"), {Bytes("1"), {}}));
  ASSERT_OK(store->Put(Target("a", "s2", "x"), {Bytes("2"), {}}));
  ASSERT_OK(store->Put(Target("a", "s-extra", "x"), {Bytes("3"), {}}));
  ASSERT_OK(store->Put(Target("ab", "s", "x"), {Bytes("4"), {}}));
  ASSERT_OK_AND_ASSIGN(auto session, KeyPattern::Parse("a/s"));
  ASSERT_OK_AND_ASSIGN(auto n, store->Delete(session));
  EXPECT_EQ(n, 1);
  ASSERT_OK_AND_ASSIGN(auto app, KeyPattern::Parse("a/*"));
  ASSERT_OK_AND_ASSIGN(n, store->Delete(app));
  EXPECT_EQ(n, 2);
  auto listing = *store->List();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0].key.str(), "ab/s/x");
}

TEST(ObjectStoreTest, MemoryOnlyEvictionIsReportedNotSilent) {
  StoreOptions options;
  options.max_memory_bytes = 4096;
  auto store = MemoryStore(options);
  ASSERT_OK_AND_ASSIGN(auto first, store->Put(Target("a", "s", "first"),
                                              {Bytes(std::string(1500, 'x')), {}}));
  ASSERT_OK(store->Put(Target("a", "s", "second"), {Bytes(std::string(1500, 'y')), {}}));
  ASSERT_OK(store->Put(Target("a", "s", "third"), {Bytes(std::string(1500, 'z')), {}}));
  EXPECT_STATUS(KeyError, "evicted from the memory tier under memory pressure",
                store->Get(first.key, 0));
  EXPECT_STATUS(KeyError, "evicted", store->Patch(first.key, Bytes("p")));
  auto stats = store->stats();
  EXPECT_EQ(stats.lost_objects, 1);
  EXPECT_EQ(stats.objects, 2);
  for (const auto& l : *store->List()) EXPECT_NE(l.key.str(), first.key.str());
  // Writing it again works and continues its versions.
  ASSERT_OK_AND_ASSIGN(auto again,
                       store->Put(Target("a", "s", "first"), {Bytes("small"), {}}));
  EXPECT_EQ(again.version, 2u);
}

TEST(ObjectStoreTest, EvictedKeysLeaveTheIndexAndVersionsAreNeverReused) {
  // A memory tier that holds 4 objects and remembers 8 evictions: 500 keys written three
  // times each, round-robin, so that every key is evicted between its writes.
  StoreOptions options;
  options.max_objects = 4;
  options.recent_evictions = 8;
  auto store = MemoryStore(options);
  std::map<std::string, uint64_t> last;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 500; ++i) {
      const std::string id = "o" + std::to_string(i);
      ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("app", "s", id), {Bytes("v"), {}}));
      EXPECT_GT(w.version, last[id]) << id << " round " << round;  // never reused
      last[id] = w.version;
      EXPECT_LE(store->index_size(), 4);
      EXPECT_LE(store->recent_evictions_size(), 8);
    }
  }
  EXPECT_EQ(store->stats().lost_objects, 1500 - 4);
  // Recently evicted: "evicted"; forgotten long ago: "not found" — never a stale object.
  ASSERT_OK_AND_ASSIGN(auto recent, ObjectKey::Parse("app/s/o490"));
  EXPECT_STATUS(KeyError, "evicted from the memory tier", store->Get(recent, 0));
  ASSERT_OK_AND_ASSIGN(auto old, ObjectKey::Parse("app/s/o3"));
  EXPECT_STATUS(KeyError, "not found", store->Get(old, 0));
  EXPECT_STATUS(KeyError, "not found for patch", store->Patch(old, Bytes("p")));
  // A brand-new key of the app continues above the forgotten versions too (the floor is
  // per app once the set forgets a key), and a forgotten key's next version is above
  // every version it had.
  ASSERT_OK_AND_ASSIGN(auto again,
                       store->Put(Target("app", "s", "o3"), {Bytes("w"), {}}));
  EXPECT_GT(again.version, last["o3"]);
  // Another app is unaffected: it starts at 1.
  ASSERT_OK_AND_ASSIGN(auto other,
                       store->Put(Target("other", "s", "x"), {Bytes("w"), {}}));
  EXPECT_EQ(other.version, 1u);
}

TEST(ObjectStoreTest, DeletingAnEvictedKeyMakesItNotFoundAndKeepsItsVersions) {
  StoreOptions options;
  options.max_objects = 1;
  auto store = MemoryStore(options);
  ASSERT_OK_AND_ASSIGN(auto a, store->Put(Target("a", "s", "x"), {Bytes("1"), {}}));
  ASSERT_OK_AND_ASSIGN(auto a2, store->Patch(a.key, Bytes("2")));
  ASSERT_OK(store->Put(Target("a", "t", "y"), {Bytes("3"), {}}));  // evicts a/s/x
  EXPECT_STATUS(KeyError, "evicted", store->Get(a.key, 0));
  ASSERT_OK_AND_ASSIGN(auto pattern, KeyPattern::Parse("a/s"));
  ASSERT_OK_AND_ASSIGN(int64_t n, store->Delete(pattern));
  EXPECT_EQ(n, 1);
  EXPECT_STATUS(KeyError, "not found", store->Get(a.key, 0));
  EXPECT_EQ(store->recent_evictions_size(), 0);
  ASSERT_OK_AND_ASSIGN(auto again, store->Put(Target("a", "s", "x"), {Bytes("4"), {}}));
  EXPECT_GT(again.version, a2.version);
}

TEST(ObjectStoreTest, MemoryOnlyRefuseModeRefusesInsteadOfEvicting) {
  StoreOptions options;
  options.max_memory_bytes = 4096;
  options.memory_full = MemoryFullPolicy::kRefuse;
  auto store = MemoryStore(options);
  ASSERT_OK_AND_ASSIGN(auto first, store->Put(Target("a", "s", "first"),
                                              {Bytes(std::string(1500, 'x')), {}}));
  ASSERT_OK(store->Put(Target("a", "s", "second"), {Bytes(std::string(1500, 'y')), {}}));
  EXPECT_STATUS(
      CapacityError, "memory",
      store->Put(Target("a", "s", "third"), {Bytes(std::string(1500, 'z')), {}}));
  ASSERT_OK(store->Get(first.key, 0));
  EXPECT_EQ(store->stats().refused_writes, 1);
  ASSERT_OK_AND_ASSIGN(auto third, ObjectKey::Parse("a/s/third"));
  EXPECT_STATUS(KeyError, "not found", store->Get(third, 0));
}

TEST(ObjectStoreTest, MemoryOnlyObjectLargerThanLimitIsRefused) {
  StoreOptions options;
  options.max_memory_bytes = 1000;
  auto store = MemoryStore(options);
  EXPECT_STATUS(CapacityError, "max_memory",
                store->Put(Target("a", "s", "big"), {Bytes(std::string(2000, 'x')), {}}));
}

TEST(ObjectStoreTest, ReadersPinTheirObjectAgainstEviction) {
  StoreOptions options;
  options.max_memory_bytes = 4096;
  auto store = MemoryStore(options);
  ASSERT_OK_AND_ASSIGN(auto first, store->Put(Target("a", "s", "first"),
                                              {Bytes(std::string(1500, 'x')), {}}));
  ASSERT_OK_AND_ASSIGN(auto reading, store->Get(first.key, 0));  // pinned
  ASSERT_OK(store->Put(Target("a", "s", "second"), {Bytes(std::string(1500, 'y')), {}}));
  ASSERT_OK(store->Put(Target("a", "s", "third"), {Bytes(std::string(1500, 'z')), {}}));
  ASSERT_OK(store->Get(first.key, 0));  // still there: "second" went instead
  EXPECT_EQ(Text(reading.object->data()), std::string(1500, 'x'));
}

TEST(ObjectStoreTest, NativeTablesCannotBePatched) {
  auto store = MemoryStore();
  auto schema = arrow::schema(
      {arrow::field("x", arrow::int32())},
      arrow::key_value_metadata({kFormatMetadataKey}, {kNativeTableFormat}));
  Payload payload;
  payload.table = NativeTable{schema, {}};
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("a", "s", "t"), std::move(payload)));
  EXPECT_STATUS(Invalid, "native Arrow table", store->Patch(w.key, Bytes("p")));
  ASSERT_OK_AND_ASSIGN(auto schema_back, store->NativeSchema(w.key));
  ASSERT_NE(schema_back, nullptr);
  EXPECT_EQ(NativeSchemaVersion(*schema_back), 1u);
}

TEST(ObjectStoreTest, DeltaLimit) {
  StoreOptions options;
  options.max_deltas = 3;
  auto store = MemoryStore(options);
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("a", "s", "o"), {Bytes("b"), {}}));
  for (int i = 0; i < 3; ++i) ASSERT_OK(store->Patch(w.key, Bytes("p")));
  EXPECT_STATUS(Invalid, "maximum delta count (3)", store->Patch(w.key, Bytes("p")));
}

TEST(ObjectStoreTest, ConcurrentPatchersGetDistinctIncreasingVersions) {
  auto store = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("a", "s", "o"), {Bytes("b"), {}}));
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> seen(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = store->Patch(w.key, Bytes("p"));
        if (r.ok()) seen[t].push_back(r->version);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint64_t> all;
  for (auto& s : seen) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 400u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i + 2);
}

TEST(ObjectStoreTest, EpochIsFreshForMemoryOnlyStores) {
  auto a = MemoryStore();
  auto b = MemoryStore();
  EXPECT_FALSE(a->epoch().empty());
  EXPECT_NE(a->epoch(), b->epoch());
}

}  // namespace
}  // namespace foc

namespace foc {
namespace {

TEST(ObjectStoreMapTest, DiskStoresListTheFilesOfTheCurrentVersion) {
  auto memory = MemoryStore();
  ASSERT_OK_AND_ASSIGN(auto m, memory->Put(Target("app", "s", "o"), {Bytes("v"), {}}));
  EXPECT_TRUE(memory->MapLocal(m.key).status().IsNotImplemented());  // no files

  testing::TempDir dir;
  auto store = ObjectStore::Open({}, OpenDiskStorage({dir.path(), 0, {}}).ValueOrDie())
                   .ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto w, store->Put(Target("app", "s", "o"), {Bytes("base"), {}}));
  ASSERT_OK_AND_ASSIGN(auto p, store->Patch(w.key, Bytes("d")));
  ASSERT_OK_AND_ASSIGN(auto local, store->MapLocal(w.key));
  EXPECT_EQ(local.key.str(), "app/s/o");
  EXPECT_EQ(local.version, p.version);
  EXPECT_FALSE(local.native);
  ASSERT_EQ(local.files.size(), 2u);
  EXPECT_EQ(local.files[0].path, dir.path() + "/app/s/o.arrow");
  EXPECT_EQ(local.files[0].version, w.version);
  EXPECT_EQ(local.files[1].version, p.version);
  EXPECT_TRUE(store->MapLocal(*ObjectKey::Parse("app/s/none")).status().IsKeyError());
  ASSERT_OK(store->Delete(*KeyPattern::Parse("app/s/o")).status());
  EXPECT_TRUE(store->MapLocal(w.key).status().IsKeyError());
}

TEST(ObjectStoreDiskCapacityTest, EvictsLeastRecentlyUsedFromDiskAndKeepsVersions) {
  testing::TempDir dir;
  auto open = [&] {
    return ObjectStore::Open({},
                             OpenDiskStorage({dir.path(), 350 << 10, {}}).ValueOrDie())
        .ValueOrDie();
  };
  auto store = open();
  const std::string kb100(100 << 10, 'x');
  ASSERT_OK_AND_ASSIGN(auto a, store->Put(Target("app", "s", "a"), {Bytes(kb100), {}}));
  ASSERT_OK_AND_ASSIGN(auto b, store->Put(Target("app", "s", "b"), {Bytes(kb100), {}}));
  ASSERT_OK_AND_ASSIGN(auto b2, store->Patch(b.key, Bytes("patch")));
  ASSERT_OK_AND_ASSIGN(auto c, store->Put(Target("app", "s", "c"), {Bytes(kb100), {}}));
  ASSERT_OK(store->Get(a.key, 0));  // a is now more recent than b
  ASSERT_OK_AND_ASSIGN(auto d, store->Put(Target("app", "s", "d"), {Bytes(kb100), {}}));
  EXPECT_EQ(d.version, 1u);
  // Exactly b went: the least recently used, not the one being written.
  EXPECT_STATUS(KeyError, "evicted from the durable tier (disk storage)",
                store->Get(b.key, 0));
  EXPECT_STATUS(KeyError, "evicted from the durable tier",
                store->Patch(b.key, Bytes("p")));
  ASSERT_OK(store->Get(a.key, 0));
  ASSERT_OK(store->Get(c.key, 0));
  EXPECT_EQ(store->List()->size(), 3u);
  EXPECT_EQ(store->index_size(), 3);             // b left the index ...
  EXPECT_EQ(store->recent_evictions_size(), 1);  // ... for the recent evictions
  EXPECT_EQ(store->stats().lost_objects, 1);
  EXPECT_LE(store->stats().storage.stored_bytes, 350 << 10);
  // An object larger than the whole capacity evicts nothing.
  auto st =
      store->Put(Target("app", "s", "huge"), {Bytes(std::string(400 << 10, 'h')), {}});
  EXPECT_TRUE(st.status().IsCapacityError()) << st.status().ToString();
  EXPECT_EQ(store->List()->size(), 3u);
  // Versions survive the eviction, also across a restart.
  store.reset();
  store = open();
  ASSERT_OK_AND_ASSIGN(auto b3,
                       store->Put(Target("app", "s", "b"), {Bytes("again"), {}}));
  EXPECT_EQ(b3.version, b2.version + 1);
}

}  // namespace
}  // namespace foc

namespace foc {
namespace {

// A spooled upload (Payload::spooled) is committed at the version the store assigns, is
// served from its file (nothing of it resident), and evicts others for room like any PUT.
TEST(ObjectStoreSpoolTest, SpooledPutsAreVersionedServedAndMakeRoom) {
  EXPECT_TRUE(MemoryStore()->BeginUpload().status().IsNotImplemented());
  testing::TempDir dir;
  auto store =
      ObjectStore::Open({}, OpenDiskStorage({dir.path(), 350 << 10, {}}).ValueOrDie())
          .ValueOrDie();
  auto spooled = [&](const std::string& bytes) -> std::shared_ptr<UploadSpool> {
    auto spool = store->BeginUpload().ValueOrDie();
    EXPECT_OK(spool->Append(*Bytes(bytes)));
    return spool;
  };
  const std::string kb100(100 << 10, 'x');
  ASSERT_OK_AND_ASSIGN(auto a, store->Put(Target("app", "s", "a"), {Bytes(kb100), {}}));
  ASSERT_OK_AND_ASSIGN(auto a2, store->Patch(a.key, Bytes("p")));
  ASSERT_OK_AND_ASSIGN(auto b, store->Put(Target("app", "s", "b"), {Bytes(kb100), {}}));
  const std::string big(150 << 10, 'y');
  Payload payload;
  payload.spooled = spooled(big);
  // Replaces a (and its delta): its old files make the room.
  ASSERT_OK_AND_ASSIGN(auto a3, store->Put(Target("app", "s", "a"), payload));
  EXPECT_EQ(a3.version, a2.version + 1);
  EXPECT_EQ(store->stats().resident_objects, 1);  // b only
  ASSERT_OK_AND_ASSIGN(auto r, store->Get(a3.key, 0));
  EXPECT_EQ(r.plan.kind, GetReplyKind::kFull);
  EXPECT_TRUE(Text(r.object->data()) == big);
  EXPECT_TRUE(r.object->deltas().empty());
  ASSERT_OK_AND_ASSIGN(auto listed, store->Lookup(a3.key));
  EXPECT_EQ(listed.version, a3.version);
  EXPECT_EQ(listed.payload_bytes, 150 << 10);
  // a (150 KiB) + b (100 KiB) + 150 KiB > 350 KiB: b, the least recently used, goes.
  payload.spooled = spooled(big);
  ASSERT_OK_AND_ASSIGN(auto n, store->Put(Target("app", "s"), payload));
  EXPECT_EQ(n.version, 1u);
  EXPECT_STATUS(KeyError, "evicted", store->Get(b.key, 0));
}

TEST(ObjectStoreDiskFailureTest, AWriteThatFailedAfterItsRenameNeverHasItsVersionReused) {
  testing::TempDir dir;
  auto fail_at = std::make_shared<std::string>();
  DiskStorageOptions options{dir.path(), 0, [fail_at](std::string_view step) {
                               if (step == *fail_at) {
                                 return arrow::Status::IOError("injected failure at ",
                                                               step);
                               }
                               return arrow::Status::OK();
                             }};
  auto store = ObjectStore::Open({}, OpenDiskStorage(options).ValueOrDie()).ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto v1, store->Put(Target("a", "s", "o"), {Bytes("one"), {}}));
  *fail_at = "put:dir-synced";  // after the rename: the new base is on disk
  EXPECT_STATUS(IOError, "injected",
                store->Put(Target("a", "s", "o"), {Bytes("two"), {}}));
  fail_at->clear();
  ASSERT_OK_AND_ASSIGN(auto patched, store->Patch(v1.key, Bytes("+p")));
  EXPECT_EQ(patched.version, 3u);  // above the failed PUT's version 2
  store.reset();
  store = ObjectStore::Open({}, OpenDiskStorage({dir.path(), 0, {}}).ValueOrDie())
              .ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto r, store->Get(v1.key, 0));
  EXPECT_EQ(r.object->version(), 3u);
  ASSERT_EQ(r.object->deltas().size(), 1u);  // the acknowledged patch survived
  EXPECT_EQ(Text(r.object->deltas()[0].data), "+p");
}

}  // namespace
}  // namespace foc

namespace foc {
namespace {

TEST(ObjectStoreDiskCapacityTest, DeviceFullIsResourceExhaustedWithoutEvicting) {
  testing::TempDir dir;
  const std::string mnt = dir.path() + "/small-fs";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a 2 MiB tmpfs at " << mnt << ": "
                 << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  // A capacity far above the device's size: the device fills first.
  auto store =
      ObjectStore::Open({}, OpenDiskStorage({mnt + "/store", 100 << 20, {}}).ValueOrDie())
          .ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto a, store->Put(Target("app", "s", "a"),
                                          {Bytes(std::string(1200 << 10, 'a')), {}}));
  auto st =
      store->Put(Target("app", "s", "b"), {Bytes(std::string(1200 << 10, 'b')), {}});
  EXPECT_TRUE(st.status().IsCapacityError()) << st.status().ToString();
  EXPECT_NE(st.status().message().find("device full"), std::string::npos);
  ASSERT_OK(store->Get(a.key, 0));  // not evicted
  EXPECT_EQ(store->stats().lost_objects, 0);
  // Fill the device to the last byte: a DELETE (floor first, then the files) still works,
  // and frees the space.
  {
    std::FILE* f = std::fopen((mnt + "/filler").c_str(), "w");
    ASSERT_NE(f, nullptr);
    while (std::fputc('f', f) != EOF && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  ASSERT_OK_AND_ASSIGN(auto removed,
                       store->Delete(KeyPattern::Parse("app/s").ValueOrDie()));
  EXPECT_EQ(removed, 1);
  std::filesystem::remove(mnt + "/filler");
  ASSERT_OK_AND_ASSIGN(auto again, store->Put(Target("app", "s", "a"),
                                              {Bytes(std::string(1200 << 10, 'c')), {}}));
  EXPECT_GT(again.version, a.version);  // the floor was recorded
}

}  // namespace
}  // namespace foc

namespace foc {
namespace {

// flamepy's local-storage mode writes objects straight into the storage directory, with
// versions of its own. An object placed there after a DELETE is adopted with its file's
// version; the next write must still continue above every version the key ever had (the
// DELETE's floor), or a client holding an old version gets "not modified" for new data.
TEST(ObjectStoreDiskFloorTest, WritesToAnAdoptedObjectContinueAboveTheDeleteFloor) {
  testing::TempDir dir;
  auto store = ObjectStore::Open({}, OpenDiskStorage({dir.path(), 0, {}}).ValueOrDie())
                   .ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto v1, store->Put(Target("a", "s", "o"), {Bytes("one"), {}}));
  ASSERT_OK(store->Put(Target("a", "s", "o"), {Bytes("two"), {}}));
  ASSERT_OK_AND_ASSIGN(auto v3, store->Patch(v1.key, Bytes("+3")));
  EXPECT_EQ(v3.version, 3u);
  ASSERT_OK(store->Delete(KeyPattern::Parse("a/s/o").ValueOrDie()));
  {
    // Another writer places a version-1 object behind the store's back.
    auto other =
        OpenDiskStorage({dir.path(), 0, {}, /*lock_directory=*/false}).ValueOrDie();
    ASSERT_OK(other->Put(v1.key, *Object::MakeOpaque(1, Bytes("foreign"))));
  }
  ASSERT_OK_AND_ASSIGN(auto patched, store->Patch(v1.key, Bytes("+p")));
  EXPECT_GT(patched.version, v3.version);
  ASSERT_OK_AND_ASSIGN(auto put, store->Put(Target("a", "s", "o"), {Bytes("new"), {}}));
  EXPECT_GT(put.version, patched.version);
}

}  // namespace
}  // namespace foc

namespace foc {
namespace {

// A stored version at the top of the version space (written by another writer): the
// next write is refused, never wrapped to 0 (versions would go backwards).
TEST(ObjectStoreVersionTest, VersionOverflowIsRefusedNotWrapped) {
  testing::TempDir dir;
  const uint64_t top = std::numeric_limits<uint64_t>::max();
  const auto key = ObjectKey::Make("a", "s", "o").ValueOrDie();
  {
    auto other = OpenDiskStorage({dir.path(), 0, {}}).ValueOrDie();
    ASSERT_OK(other->Put(key, *Object::MakeOpaque(top, Bytes("top"))));
  }
  auto store = ObjectStore::Open({}, OpenDiskStorage({dir.path(), 0, {}}).ValueOrDie())
                   .ValueOrDie();
  EXPECT_STATUS(CapacityError, "largest version",
                store->Put(Target("a", "s", "o"), {Bytes("next"), {}}));
  EXPECT_STATUS(CapacityError, "largest version", store->Patch(key, Bytes("+d")));
  ASSERT_OK_AND_ASSIGN(auto r, store->Get(key, 0));
  EXPECT_EQ(r.object->version(), top);
  EXPECT_EQ(Text(r.object->data()), "top");
}

}  // namespace
}  // namespace foc
