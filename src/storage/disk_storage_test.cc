#include "storage/disk_storage.h"

#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <arrow/io/file.h>
#include <arrow/memory_pool.h>

#include "storage/durable_file.h"
#include "storage/object_file.h"
#include "storage/storage_full.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

namespace fs = std::filesystem;
using testing::ForeignFileShape;
using testing::TempDir;

ObjectKey Key(std::string_view k) { return ObjectKey::Parse(k).ValueOrDie(); }
std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

// A readable summary of an object: version, base and deltas, for "wholly old or new"
// checks.
std::string Describe(const Object& o) {
  std::string s = "v" + std::to_string(o.version()) + " base@" +
                  std::to_string(o.base_version()) + "=";
  s += o.is_native() ? "<native>" : o.data()->ToString();
  for (const auto& d : o.deltas())
    s += " +" + std::to_string(d.version) + "=" + d.data->ToString();
  return s;
}

// What a reopened engine says about `key`: "absent" or Describe(); checks Scan agrees.
std::string Recovered(const std::string& root, const ObjectKey& key) {
  auto engine = OpenDiskStorage({root, 0, {}, /*lock_directory=*/false});
  if (!engine.ok()) return "open failed: " + engine.status().ToString();
  std::map<std::string, StoredObjectInfo> seen;
  auto st = (*engine)->Scan(
      [&](StoredObjectInfo info) { seen.insert_or_assign(info.key.str(), info); });
  if (!st.ok()) return "scan failed: " + st.ToString();
  auto object = (*engine)->Read(key);
  if (!object.ok()) {
    if (!object.status().IsKeyError())
      return "read failed: " + object.status().ToString();
    return seen.count(key.str()) ? "scan lists a missing object" : "absent";
  }
  auto it = seen.find(key.str());
  if (it == seen.end()) return "scan missed " + key.str();
  if (it->second.version != (*object)->version()) {
    return "scan version " + std::to_string(it->second.version) + " != read " +
           Describe(**object);
  }
  if (it->second.delta_count != static_cast<int32_t>((*object)->deltas().size())) {
    return "scan delta count differs: " + Describe(**object);
  }
  return Describe(**object);
}

// Files the engine should have cleaned up: temporaries anywhere below `root` (outside
// .flame-cache).
std::vector<std::string> Leftovers(const std::string& root) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root);
       it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (name == ".flame-cache") {
      it.disable_recursion_pending();
      continue;
    }
    if (name.starts_with(".")) out.push_back(it->path().string());
  }
  return out;
}

class DiskStorageTest : public ::testing::Test {
 protected:
  std::unique_ptr<StorageEngine> Open(int64_t capacity = 0) {
    auto engine = OpenDiskStorage({dir_.path(), capacity, {}, /*lock_directory=*/false});
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    return std::move(engine).ValueOrDie();
  }
  std::map<std::string, StoredObjectInfo> ScanAll(StorageEngine* engine) {
    std::map<std::string, StoredObjectInfo> seen;
    EXPECT_OK(engine->Scan(
        [&](StoredObjectInfo info) { seen.insert_or_assign(info.key.str(), info); }));
    return seen;
  }
  std::string Path(const std::string& rel) { return dir_.path() + "/" + rel; }
  void MakeDirs(const std::string& rel) { fs::create_directories(Path(rel)); }

  TempDir dir_;
};

TEST_F(DiskStorageTest, OpaqueRoundTripWithDeltasInUpstreamLayout) {
  auto engine = Open();
  const auto key = Key("app/ssn/obj");
  auto v1 = Object::MakeOpaque(1, Buf("base"));
  ASSERT_OK(engine->Put(key, *v1));
  ASSERT_OK_AND_ASSIGN(auto v2, v1->WithDelta({2, Buf("d2")}));
  ASSERT_OK(engine->Append(key, *v2));
  ASSERT_OK_AND_ASSIGN(auto v3, v2->WithDelta({3, Buf("d3")}));
  ASSERT_OK(engine->Append(key, *v3));
  EXPECT_TRUE(fs::is_regular_file(Path("app/ssn/obj.arrow")));
  EXPECT_TRUE(fs::is_regular_file(Path("app/ssn/obj.deltas/0.arrow")));
  EXPECT_TRUE(fs::is_regular_file(Path("app/ssn/obj.deltas/1.arrow")));
  ASSERT_OK_AND_ASSIGN(auto read, engine->Read(key));
  EXPECT_EQ(Describe(*read), "v3 base@1=base +2=d2 +3=d3");
  ASSERT_OK_AND_ASSIGN(auto schema, engine->ReadNativeSchema(key));
  EXPECT_EQ(schema, nullptr);

  // Reopen: the index comes back, so do the bytes.
  engine = Open();
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.at("app/ssn/obj").version, 3u);
  EXPECT_EQ(seen.at("app/ssn/obj").delta_count, 2);
  EXPECT_FALSE(seen.at("app/ssn/obj").native);
  EXPECT_GT(seen.at("app/ssn/obj").payload_bytes, 8);
  EXPECT_EQ(engine->Usage().stored_bytes, seen.at("app/ssn/obj").payload_bytes);
  ASSERT_OK_AND_ASSIGN(read, engine->Read(key));
  EXPECT_EQ(Describe(*read), "v3 base@1=base +2=d2 +3=d3");

  // Replace drops the deltas; remove drops everything including empty directories.
  ASSERT_OK(engine->Put(key, *Object::MakeOpaque(4, Buf("new"))));
  EXPECT_FALSE(fs::exists(Path("app/ssn/obj.deltas")));
  ASSERT_OK_AND_ASSIGN(read, engine->Read(key));
  EXPECT_EQ(Describe(*read), "v4 base@4=new");
  ASSERT_OK(engine->Remove(key));
  EXPECT_STATUS(KeyError, "object app/ssn/obj not found", engine->Read(key));
  EXPECT_STATUS(KeyError, "not found", engine->ReadNativeSchema(key));
  EXPECT_STATUS(KeyError, "not found", engine->Append(key, *v2));
  EXPECT_FALSE(fs::exists(Path("app")));
  ASSERT_OK(engine->Remove(key));  // missing is fine
  EXPECT_EQ(engine->Usage().stored_bytes, 0);
}

TEST_F(DiskStorageTest, NativeRoundTrip) {
  auto engine = Open();
  const auto key = Key("app/ssn/table");
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeNativeBatch(0));
  auto object = Object::MakeNative(5, NativeTable{batch->schema(), {batch, batch}});
  ASSERT_OK(engine->Put(key, *object));
  engine = Open();
  auto seen = ScanAll(engine.get());
  EXPECT_TRUE(seen.at(key.str()).native);
  EXPECT_EQ(seen.at(key.str()).version, 5u);
  ASSERT_OK_AND_ASSIGN(auto read, engine->Read(key));
  ASSERT_TRUE(read->is_native());
  EXPECT_EQ(read->base_version(), 5u);
  ASSERT_EQ(read->table()->batches.size(), 2u);
  EXPECT_TRUE(read->table()->batches[1]->Equals(*batch));
  ASSERT_OK_AND_ASSIGN(auto schema, engine->ReadNativeSchema(key));
  ASSERT_NE(schema, nullptr);
  EXPECT_EQ(NativeSchemaVersion(*schema), 5u);
  EXPECT_EQ(schema->metadata()->Get("flame.cache.logical_type").ValueOr(""),
            "pyarrow.table");
}

TEST_F(DiskStorageTest, ReadsAreZeroCopyFromTheMapping) {
  auto engine = Open();
  const auto key = Key("a/s/big");
  ASSERT_OK(engine->Put(key, *Object::MakeOpaque(1, Buf(std::string(8 << 20, 'b')))));
  auto* pool = arrow::default_memory_pool();
  const int64_t before = pool->total_bytes_allocated();
  ASSERT_OK_AND_ASSIGN(auto read, engine->Read(key));
  EXPECT_EQ(read->data()->size(), 8 << 20);
  EXPECT_LT(pool->total_bytes_allocated() - before, 64 << 10);
  EXPECT_FALSE(read->data()->is_mutable());
  // The mapping outlives a replacement and a removal of the file.
  ASSERT_OK(engine->Remove(key));
  EXPECT_EQ(read->data()->ToString(), std::string(8 << 20, 'b'));
}

TEST_F(DiskStorageTest, LocalFilesListTheBaseAndLiveDeltasForMapping) {
  auto engine = Open();
  const auto key = Key("app/ssn/obj");
  EXPECT_STATUS(KeyError, "not found", engine->LocalFiles(key));
  auto v1 = Object::MakeOpaque(1, Buf("base"));
  ASSERT_OK(engine->Put(key, *v1));
  ASSERT_OK_AND_ASSIGN(auto v2, v1->WithDelta({2, Buf("d2")}));
  ASSERT_OK(engine->Append(key, *v2));
  ASSERT_OK_AND_ASSIGN(auto files, engine->LocalFiles(key));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, Path("app/ssn/obj.arrow"));
  EXPECT_EQ(files[0].version, 1u);
  EXPECT_EQ(files[1].path, Path("app/ssn/obj.deltas/0.arrow"));
  EXPECT_EQ(files[1].version, 2u);
  EXPECT_EQ(files[0].checksum.rfind("xxh3-64:", 0), 0u);
  EXPECT_NE(files[0].checksum, files[1].checksum);
  EXPECT_EQ(files[0].bytes, static_cast<int64_t>(fs::file_size(files[0].path)));
  // A stale delta (an interrupted PUT's, version <= the base's) is not listed.
  ASSERT_OK(engine->Put(key, *Object::MakeOpaque(3, Buf("new"))));
  ASSERT_OK(engine->Append(
      key, *Object::MakeOpaque(3, Buf("new"))->WithDelta({4, Buf("d4")}).ValueOrDie()));
  {
    auto out = arrow::io::FileOutputStream::Open(Path("app/ssn/obj.deltas/5.arrow"))
                   .ValueOrDie();
    ASSERT_OK(WriteOpaqueFile(out.get(), 2, Buf("stale")));
    ASSERT_OK(out->Close());
  }
  ASSERT_OK_AND_ASSIGN(files, engine->LocalFiles(key));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].version, 3u);
  EXPECT_EQ(files[1].version, 4u);
}

TEST_F(DiskStorageTest, ReadsAnUpstreamStoreWithVersionZeroDeltas) {
  // Written the way upstream does (ZSTD, non-nullable), plus pyarrow-shaped files.
  MakeDirs("app/ssn/legacy.deltas");
  const ForeignFileShape upstream{true, false, false, 1 << 30};
  const ForeignFileShape pyarrow{false, true, true, 1};
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("app/ssn/legacy.arrow"), {{1, "base"}},
                                            upstream));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("app/ssn/legacy.deltas/0.arrow"),
                                            {{0, "p0"}}, upstream));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("app/ssn/legacy.deltas/1.arrow"),
                                            {{0, "p1"}}, pyarrow));
  ASSERT_OK(testing::WriteForeignOpaqueFile(
      Path("app/ssn/rows.arrow"), {{7, "ab"}, {7, std::nullopt}, {7, "cd"}}, pyarrow));
  MakeDirs("app/other");
  ASSERT_OK(testing::WriteForeignNativeFile(Path("app/other/t.arrow"), 3, true));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("app/other/zero.arrow"), {{0, "local"}},
                                            pyarrow));

  auto engine = Open();
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.at("app/ssn/legacy").version, 3u);
  EXPECT_EQ(seen.at("app/ssn/legacy").delta_count, 2);
  EXPECT_EQ(seen.at("app/ssn/rows").version, 7u);
  EXPECT_EQ(seen.at("app/other/t").version, 3u);
  EXPECT_TRUE(seen.at("app/other/t").native);
  EXPECT_EQ(seen.at("app/other/zero").version, 0u);
  ASSERT_OK_AND_ASSIGN(auto legacy, engine->Read(Key("app/ssn/legacy")));
  EXPECT_EQ(Describe(*legacy), "v3 base@1=base +2=p0 +3=p1");
  ASSERT_OK_AND_ASSIGN(auto rows, engine->Read(Key("app/ssn/rows")));
  EXPECT_EQ(Describe(*rows), "v7 base@7=abcd");
  ASSERT_OK_AND_ASSIGN(auto table, engine->Read(Key("app/other/t")));
  EXPECT_TRUE(table->is_native());

  // Appending after legacy deltas continues the numbering; it survives a reopen.
  ASSERT_OK_AND_ASSIGN(auto v4, legacy->WithDelta({4, Buf("p2")}));
  ASSERT_OK(engine->Append(Key("app/ssn/legacy"), *v4));
  EXPECT_TRUE(fs::exists(Path("app/ssn/legacy.deltas/2.arrow")));
  EXPECT_EQ(Recovered(dir_.path(), Key("app/ssn/legacy")),
            "v4 base@1=base +2=p0 +3=p1 +4=p2");
  // Replacing a legacy object: the new base wins.
  ASSERT_OK(engine->Put(Key("app/ssn/legacy"), *Object::MakeOpaque(5, Buf("fresh"))));
  EXPECT_EQ(Recovered(dir_.path(), Key("app/ssn/legacy")), "v5 base@5=fresh");
}

TEST_F(DiskStorageTest, RecoveryRemovesTemporariesStaleAndOrphanDeltas) {
  MakeDirs(".flame-cache");  // our store (marked), left by a crash: temporaries included
  MakeDirs("a/s/stale.deltas");
  MakeDirs("a/s/partial.deltas");
  MakeDirs("a/s/orphan.deltas");
  const ForeignFileShape shape{};
  ASSERT_OK(
      testing::WriteForeignOpaqueFile(Path("a/s/stale.arrow"), {{5, "new"}}, shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/stale.deltas/0.arrow"), {{2, "x"}},
                                            shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/stale.deltas/1.arrow"), {{3, "y"}},
                                            shape));
  ASSERT_OK(
      testing::WriteForeignOpaqueFile(Path("a/s/partial.arrow"), {{5, "b"}}, shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/partial.deltas/3.arrow"),
                                            {{4, "x"}}, shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/partial.deltas/4.arrow"),
                                            {{6, "y"}}, shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/orphan.deltas/0.arrow"), {{2, "x"}},
                                            shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/.stale.0123abcd.tmp"), {{9, "t"}},
                                            shape));
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/partial.deltas/.5.ab.tmp"),
                                            {{7, "t"}}, shape));

  // Before recovery, reads already ignore stale deltas.
  auto engine = Open();
  ASSERT_OK_AND_ASSIGN(auto stale, engine->Read(Key("a/s/stale")));
  EXPECT_EQ(Describe(*stale), "v5 base@5=new");
  auto seen = ScanAll(engine.get());
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.at("a/s/stale").version, 5u);
  EXPECT_EQ(seen.at("a/s/stale").delta_count, 0);
  EXPECT_EQ(seen.at("a/s/partial").version, 6u);
  EXPECT_EQ(seen.at("a/s/partial").delta_count, 1);
  EXPECT_FALSE(fs::exists(Path("a/s/stale.deltas")));
  EXPECT_FALSE(fs::exists(Path("a/s/orphan.deltas")));
  EXPECT_FALSE(fs::exists(Path("a/s/partial.deltas/3.arrow")));
  EXPECT_TRUE(Leftovers(dir_.path()).empty());
  ASSERT_OK_AND_ASSIGN(auto partial, engine->Read(Key("a/s/partial")));
  EXPECT_EQ(Describe(*partial), "v6 base@5=b +6=y");
  // A patch continues after the highest index.
  ASSERT_OK_AND_ASSIGN(auto v7, partial->WithDelta({7, Buf("z")}));
  ASSERT_OK(engine->Append(Key("a/s/partial"), *v7));
  EXPECT_TRUE(fs::exists(Path("a/s/partial.deltas/5.arrow")));
  EXPECT_EQ(Recovered(dir_.path(), Key("a/s/partial")), "v7 base@5=b +6=y +7=z");
}

TEST_F(DiskStorageTest, QuarantinesCorruptAndForeignFilesAndServesTheRest) {
  auto engine = Open();
  ASSERT_OK(engine->Put(Key("a/s/good"), *Object::MakeOpaque(1, Buf("good"))));
  MakeDirs("a/s/bad.deltas");
  std::FILE* f = std::fopen(Path("a/s/bad.arrow").c_str(), "w");
  std::fputs("ARROW1 but then nothing sensible", f);
  std::fclose(f);
  ASSERT_OK(
      testing::WriteForeignOpaqueFile(Path("a/s/bad.deltas/0.arrow"), {{2, "x"}}, {}));
  f = std::fopen(Path("a/s/notes.txt").c_str(), "w");
  std::fputs("an operator's file", f);
  std::fclose(f);
  f = std::fopen(Path("README").c_str(), "w");
  std::fputs("root file", f);
  std::fclose(f);
  // A truncated last delta makes its object unreadable.
  ASSERT_OK(engine->Put(Key("a/t/torn"), *Object::MakeOpaque(1, Buf("t"))));
  MakeDirs("a/t/torn.deltas");
  f = std::fopen(Path("a/t/torn.deltas/0.arrow").c_str(), "w");
  std::fputs("ARRO", f);
  std::fclose(f);

  engine = Open();
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen.count("a/s/good"));
  ASSERT_OK_AND_ASSIGN(auto good, engine->Read(Key("a/s/good")));
  EXPECT_EQ(good->data()->ToString(), "good");
  EXPECT_STATUS(KeyError, "not found", engine->Read(Key("a/s/bad")));
  EXPECT_STATUS(KeyError, "not found", engine->Read(Key("a/t/torn")));
  EXPECT_FALSE(fs::exists(Path("a/s/notes.txt")));
  EXPECT_FALSE(fs::exists(Path("README")));
  std::set<std::string> quarantined;
  for (const auto& e :
       fs::recursive_directory_iterator(Path(".flame-cache/quarantine"))) {
    if (e.is_regular_file()) quarantined.insert(e.path().filename().string());
  }
  EXPECT_EQ(quarantined, (std::set<std::string>{"bad.arrow", "0.arrow", "notes.txt",
                                                "README", "torn.arrow"}));
  // Nothing left to quarantine on the next start.
  engine = Open();
  EXPECT_EQ(ScanAll(engine.get()).size(), 1u);
}

TEST_F(DiskStorageTest, FloorsAndInstanceIdSurviveReopen) {
  auto engine = Open();
  ASSERT_OK_AND_ASSIGN(const std::string id, engine->InstanceId());
  EXPECT_EQ(id.size(), 36u);
  ASSERT_OK(engine->RecordFloor({"app/*", 5}));
  ASSERT_OK(engine->RecordFloor({"app/s", 19}));
  ASSERT_OK(engine->RecordFloor({"app/*", 12}));
  ASSERT_OK(engine->RecordFloor({"app/*", 7}));
  engine.reset();
  // A torn append (crash mid-write) is dropped.
  std::FILE* f = std::fopen(Path(".flame-cache/version-floors").c_str(), "a");
  std::fputs("99\tapp/s\t00", f);
  std::fclose(f);
  engine = Open();
  EXPECT_EQ(engine->InstanceId().ValueOrDie(), id);
  ASSERT_OK_AND_ASSIGN(auto floors, engine->LoadFloors());
  std::map<std::string, uint64_t> got;
  for (const auto& fl : floors) got[fl.pattern] = fl.version;
  EXPECT_EQ(got, (std::map<std::string, uint64_t>{{"app/*", 12}, {"app/s", 19}}));
  ASSERT_OK(engine->RecordFloor({"b/s/o", 3}));
  engine = Open();
  ASSERT_OK_AND_ASSIGN(floors, engine->LoadFloors());
  EXPECT_EQ(floors.size(), 3u);
  TempDir other;
  ASSERT_OK_AND_ASSIGN(auto e2, OpenDiskStorage({other.path(), 0, {}}));
  EXPECT_NE(e2->InstanceId().ValueOrDie(), id);
}

TEST(CompactFloorsTest, DropsSubsumedFloorsAndBoundsEachApp) {
  auto patterns = [](const std::vector<VersionFloor>& floors) {
    std::map<std::string, uint64_t> out;
    for (const auto& f : floors) out[f.pattern] = f.version;
    return out;
  };
  EXPECT_EQ(patterns(CompactFloors({{"a/s1", 4},
                                    {"a/s2", 9},
                                    {"a/*", 7},
                                    {"a/s1/o", 3},
                                    {"a/s3/o", 8},
                                    {"b/s/o", 2},
                                    {"b/s", 2},
                                    {"c/s/o", 5}})),
            (std::map<std::string, uint64_t>{
                {"a/*", 7}, {"a/s2", 9}, {"a/s3/o", 8}, {"b/s", 2}, {"c/s/o", 5}}));
  // Thousands of deleted sessions of one app: one app floor at their maximum.
  std::vector<VersionFloor> many;
  for (int i = 0; i < 5000; ++i) many.push_back({"big/s" + std::to_string(i), 10u + i});
  many.push_back({"small/s", 3});
  EXPECT_EQ(patterns(CompactFloors(many)),
            (std::map<std::string, uint64_t>{{"big/*", 5009}, {"small/s", 3}}));
}

TEST_F(DiskStorageTest, FloorLogStaysBoundedAcrossRestarts) {
  auto engine = Open();
  for (int i = 0; i < 2000; ++i)
    ASSERT_OK(engine->RecordFloor({"app/s" + std::to_string(i), 1u + i}));
  engine.reset();
  engine = Open();
  ASSERT_OK_AND_ASSIGN(auto floors, engine->LoadFloors());
  ASSERT_EQ(floors.size(), 1u);
  EXPECT_EQ(floors[0].pattern, "app/*");
  EXPECT_EQ(floors[0].version, 2000u);
  EXPECT_LT(fs::file_size(Path(".flame-cache/version-floors")), 100u);
}

void FlipByteOf(const std::string& path, const std::string& inside) {
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::string bytes(fs::file_size(path), '\0');
  ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), f), bytes.size());
  const size_t at = bytes.find(inside);
  ASSERT_NE(at, std::string::npos);
  std::fseek(f, static_cast<long>(at + inside.size() / 2), SEEK_SET);
  std::fputc(bytes[at + inside.size() / 2] ^ 0x10, f);
  std::fclose(f);
}

TEST_F(DiskStorageTest, CorruptBytesAreQuarantinedAndNeverServed) {
  auto engine = Open();
  const std::string big(200 << 10, 'B');  // above the scan's whole-read size
  ASSERT_OK(engine->Put(Key("a/s/base"), *Object::MakeOpaque(3, Buf(big + "tail"))));
  ASSERT_OK(engine->Put(Key("a/s/delta"), *Object::MakeOpaque(4, Buf("base"))));
  ASSERT_OK_AND_ASSIGN(auto d0, engine->Read(Key("a/s/delta")));
  ASSERT_OK_AND_ASSIGN(auto d1, d0->WithDelta({5, Buf("the-delta-bytes")}));
  ASSERT_OK(engine->Append(Key("a/s/delta"), *d1));
  ASSERT_OK(engine->Put(Key("a/s/small"), *Object::MakeOpaque(6, Buf("small-bytes"))));
  ASSERT_OK(engine->Put(Key("a/s/fine"), *Object::MakeOpaque(1, Buf("fine"))));
  d0.reset();
  d1.reset();
  FlipByteOf(Path("a/s/base.arrow"), big);
  FlipByteOf(Path("a/s/delta.deltas/0.arrow"), "the-delta-bytes");

  // Read: NotFound naming the corruption, the files moved aside, a floor recorded.
  for (const std::string key : {"a/s/base", "a/s/delta"}) {
    auto read = engine->Read(Key(key));
    EXPECT_TRUE(read.status().IsKeyError()) << read.status().ToString();
    EXPECT_NE(read.status().message().find("checksum mismatch"), std::string::npos)
        << read.status().message();
    EXPECT_NE(read.status().message().find("quarantine"), std::string::npos);
    EXPECT_STATUS(KeyError, "not found", engine->Read(Key(key)));
  }
  EXPECT_FALSE(fs::exists(Path("a/s/base.arrow")));
  EXPECT_FALSE(fs::exists(Path("a/s/delta.deltas")));
  ASSERT_OK_AND_ASSIGN(auto floors, engine->LoadFloors());
  std::map<std::string, uint64_t> got;
  for (const auto& f : floors) got[f.pattern] = f.version;
  EXPECT_EQ(got, (std::map<std::string, uint64_t>{{"a/s/base", 3}, {"a/s/delta", 5}}));

  // Startup: a small file is read whole by the scan and verified there.
  FlipByteOf(Path("a/s/small.arrow"), "small-bytes");
  engine = Open();
  auto seen = ScanAll(engine.get());
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen.count("a/s/fine"));
  std::set<std::string> quarantined;
  for (const auto& e : fs::recursive_directory_iterator(Path(".flame-cache/quarantine")))
    if (e.is_regular_file()) quarantined.insert(e.path().filename().string());
  EXPECT_EQ(quarantined, (std::set<std::string>{"base.arrow", "delta.arrow", "0.arrow",
                                                "small.arrow"}));
}

TEST_F(DiskStorageTest, ScanDoesNotReadPayloads) {
  // A 64 MiB ZSTD-compressed object (upstream's format): scanning it must not decompress
  // it.
  MakeDirs("a/s");
  ASSERT_OK(testing::WriteForeignOpaqueFile(Path("a/s/big.arrow"),
                                            {{3, std::string(64 << 20, 'q')}}, {true}));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(testing::WriteForeignOpaqueFile(
        Path("a/s/small" + std::to_string(i) + ".arrow"), {{1, "s"}}, {true}));
  }
  auto engine = Open();
  auto* pool = arrow::default_memory_pool();
  const int64_t before = pool->total_bytes_allocated();
  const auto start = std::chrono::steady_clock::now();
  auto seen = ScanAll(engine.get());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const int64_t allocated = pool->total_bytes_allocated() - before;
  EXPECT_EQ(seen.size(), 101u);
  EXPECT_EQ(seen.at("a/s/big").version, 3u);
  EXPECT_LT(allocated, 4 << 20) << "scan allocated " << allocated << " bytes";
  std::printf(
      "scan of 101 objects (one of 64 MiB) took %.2f ms and allocated %lld bytes\n",
      std::chrono::duration<double, std::milli>(elapsed).count(),
      static_cast<long long>(allocated));
}

TEST_F(DiskStorageTest, CapacityLimitRefusesAndKeepsTheOldObject) {
  auto engine = Open(200 << 10);
  const std::string kb100(100 << 10, 'c');
  ASSERT_OK(engine->Put(Key("a/s/one"), *Object::MakeOpaque(1, Buf(kb100))));
  // Replacing an object only charges the difference.
  ASSERT_OK(engine->Put(Key("a/s/one"), *Object::MakeOpaque(2, Buf(kb100))));
  auto st = engine->Put(Key("a/s/two"), *Object::MakeOpaque(1, Buf(kb100 + kb100)));
  EXPECT_TRUE(IsCapacityLimit(st)) << st.ToString();
  EXPECT_NE(st.message().find("capacity"), std::string::npos);
  // It says how much to free: here more than all that is stored (the object alone is
  // larger than the capacity), so the store knows evicting cannot help.
  const int64_t one = engine->StoredBytes(Key("a/s/one"));
  EXPECT_GT(one, 100 << 10);
  EXPECT_EQ(engine->Usage().stored_bytes, one);
  EXPECT_GT(BytesToFree(st), one);
  ASSERT_OK(engine->Put(Key("a/s/two"), *Object::MakeOpaque(1, Buf("small"))));
  ASSERT_OK_AND_ASSIGN(auto two, engine->Read(Key("a/s/two")));
  ASSERT_OK_AND_ASSIGN(auto big, two->WithDelta({2, Buf(kb100)}));
  EXPECT_TRUE(IsCapacityLimit(engine->Append(Key("a/s/two"), *big)));
  EXPECT_EQ(engine->Usage().capacity_bytes, 200 << 10);
  EXPECT_LE(engine->Usage().stored_bytes, 200 << 10);
  EXPECT_TRUE(Leftovers(dir_.path()).empty());
  ASSERT_OK(engine->Remove(Key("a/s/one")));
  ASSERT_OK(engine->Append(Key("a/s/two"), *big));
  EXPECT_EQ(Recovered(dir_.path(), Key("a/s/two")), "v2 base@1=small +2=" + kb100);
}

TEST_F(DiskStorageTest, DeviceFullFailsCleanlyAndRecovers) {
  const std::string mnt = Path("small-fs");
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a 2 MiB tmpfs at " << mnt << ": "
                 << std::strerror(errno) << " (needs root or CAP_SYS_ADMIN)";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage({mnt + "/store", 0, {}}));
    const auto key = Key("a/s/k");
    ASSERT_OK(
        engine->Put(key, *Object::MakeOpaque(1, Buf(std::string(1200 << 10, 'o')))));
    auto st = engine->Put(key, *Object::MakeOpaque(2, Buf(std::string(1200 << 10, 'n'))));
    EXPECT_TRUE(IsDeviceFull(st)) << st.ToString();
    EXPECT_NE(st.message().find("full"), std::string::npos) << st.ToString();
    st = engine->Put(Key("a/s/other"),
                     *Object::MakeOpaque(1, Buf(std::string(1200 << 10, 'x'))));
    EXPECT_TRUE(IsDeviceFull(st)) << st.ToString();
    ASSERT_OK_AND_ASSIGN(auto old, engine->Read(key));
    ASSERT_OK_AND_ASSIGN(auto big,
                         old->WithDelta({2, Buf(std::string(1200 << 10, 'd'))}));
    EXPECT_TRUE(IsDeviceFull(engine->Append(key, *big)));
    EXPECT_TRUE(Leftovers(mnt + "/store").empty());
    EXPECT_EQ(Recovered(mnt + "/store", key),
              "v1 base@1=" + std::string(1200 << 10, 'o'));
    // Space returns: writes work again. (A mapped reader keeps a removed file's blocks
    // allocated until it lets go, so drop ours first.)
    old.reset();
    big.reset();
    ASSERT_OK(engine->Remove(key));
    // Arrow's I/O thread pool may still be dropping the closure of an asynchronous read
    // that holds the removed file's mapping for a moment; space returns when it does.
    arrow::Status again;
    for (int i = 0; i < 100; ++i) {
      again = engine->Put(Key("a/s/other"),
                          *Object::MakeOpaque(3, Buf(std::string(1200 << 10, 'x'))));
      if (!IsDeviceFull(again)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_OK(again);
  }
}

// A DELETE must be able to free space on a full disk, although it appends its version
// floor first: the floor log's reserve makes room for it.
TEST_F(DiskStorageTest, DeleteWorksOnAFullDevice) {
  const std::string mnt = Path("small-fs");
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a 2 MiB tmpfs at " << mnt << ": "
                 << std::strerror(errno) << " (needs root or CAP_SYS_ADMIN)";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage({mnt + "/store", 0, {}}));
  EXPECT_TRUE(fs::exists(mnt + "/store/.flame-cache/version-floors.reserve"));
  // Fill the device to the last byte: objects, then a filler file.
  ASSERT_OK(engine->Put(Key("a/s/k"),
                        *Object::MakeOpaque(1, Buf(std::string(900 << 10, 'k')))));
  ASSERT_OK(engine->Put(Key("a/t/k"),
                        *Object::MakeOpaque(1, Buf(std::string(900 << 10, 'k')))));
  {
    std::FILE* f = std::fopen((mnt + "/filler").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string block(4096, 'f');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() &&
           std::fflush(f) == 0) {
    }
    std::fclose(f);
    f = std::fopen((mnt + "/filler2").c_str(), "w");
    while (std::fputc('f', f) != EOF && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  ASSERT_TRUE(IsDeviceFull(engine->Put(Key("a/u/k"), *Object::MakeOpaque(1, Buf("x")))));
  // The store's DELETE: floor first (durably), then the files.
  ASSERT_OK(engine->RecordFloor({"a/s", 1}));
  ASSERT_OK(engine->Remove(Key("a/s/k")));
  // Space is back: the next floor restores the reserve, writes work again.
  ASSERT_OK(engine->RecordFloor({"a/t", 1}));
  ASSERT_OK(engine->Remove(Key("a/t/k")));
  EXPECT_EQ(fs::file_size(mnt + "/store/.flame-cache/version-floors.reserve"), 64u << 10);
  ASSERT_OK(engine->Put(Key("a/u/k"), *Object::MakeOpaque(1, Buf("x"))));
  engine.reset();
  ASSERT_OK_AND_ASSIGN(engine, OpenDiskStorage({mnt + "/store", 0, {}}));
  ASSERT_OK_AND_ASSIGN(auto floors, engine->LoadFloors());
  std::map<std::string, uint64_t> got;
  for (const auto& fl : floors) got[fl.pattern] = fl.version;
  EXPECT_EQ(got, (std::map<std::string, uint64_t>{{"a/s", 1}, {"a/t", 1}}));
}

TEST_F(DiskStorageTest, ConcurrentPutAndRemoveInOneSession) {
  auto engine = Open();
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    for (int i = 0; i < 300 && !failed; ++i) {
      auto st = engine->Put(Key("a/s/w"), *Object::MakeOpaque(i + 1, Buf("w")));
      if (!st.ok()) {
        ADD_FAILURE() << st.ToString();
        failed = true;
      }
      if (i % 2 == 0) {
        EXPECT_OK(engine->Remove(Key("a/s/w")));
      }
    }
  });
  for (int i = 0; i < 300 && !failed; ++i) {
    ASSERT_OK(engine->Put(Key("a/s/r"), *Object::MakeOpaque(i + 1, Buf("r"))));
    ASSERT_OK(engine->Remove(Key("a/s/r")));
  }
  writer.join();
}

// Group commit (durable_file.h, DirSyncer): concurrent puts into one session share the
// session directory's fsyncs. The first put's fsync is held until the other puts are all
// waiting for theirs; one more fsync then acknowledges all of them — 2 instead of kPuts —
// and every put is in the store after a reopen.
TEST_F(DiskStorageTest, ConcurrentPutsIntoOneSessionShareDirectoryFsyncs) {
  constexpr int kPuts = 6;
  const std::string session = Path("a/s");
  std::atomic<int> session_fsyncs{0};
  std::atomic<int> done{0};  // puts after the first that returned
  std::atomic<bool> armed{false};
  std::shared_ptr<DirSyncer> syncer;
  syncer = std::make_shared<DirSyncer>([&](const std::string& d) {
    if (armed && d == session && ++session_fsyncs == 1) {
      // (Also released if the other puts finish without waiting: the test then fails
      // instead of hanging.)
      while (syncer->waiting(d) != kPuts - 1 && done != kPuts - 1)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return SyncDir(d);
  });
  ASSERT_OK_AND_ASSIGN(
      auto engine,
      OpenDiskStorage({dir_.path(), 0, {}, /*lock_directory=*/false}, syncer));
  ASSERT_OK(engine->Put(Key("a/s/seed"), *Object::MakeOpaque(1, Buf("seed"))));
  armed = true;
  auto put = [&](int i) {
    EXPECT_OK(engine->Put(Key("a/s/o" + std::to_string(i)),
                          *Object::MakeOpaque(1, Buf("v" + std::to_string(i)))));
    if (i > 0) ++done;
  };
  {
    std::vector<std::jthread> threads;
    threads.emplace_back(put, 0);
    while (session_fsyncs.load() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int i = 1; i < kPuts; ++i) threads.emplace_back(put, i);
  }  // joined
  EXPECT_EQ(session_fsyncs.load(), 2);
  engine.reset();
  for (int i = 0; i < kPuts; ++i) {
    EXPECT_EQ(Recovered(dir_.path(), Key("a/s/o" + std::to_string(i))),
              "v1 base@1=v" + std::to_string(i));
  }
}

// A put that finds its session directory just created by another put, whose fsync of the
// app directory has not finished, is acknowledged only after an fsync of the app
// directory that started after it arrived: the directory's own entry is durable before
// anything written into it is acknowledged.
TEST_F(DiskStorageTest, APutIntoAJustCreatedSessionWaitsForItsEntryToBeDurable) {
  const std::string app = Path("a");
  std::atomic<int> app_fsyncs{0};
  std::atomic<bool> second_done{false};
  std::atomic<int> app_fsyncs_when_second_done{-1};
  std::shared_ptr<DirSyncer> syncer;
  syncer = std::make_shared<DirSyncer>([&](const std::string& d) {
    if (d == app && ++app_fsyncs == 1) {
      // Held until the second put waits for an app fsync (or, without the wait, is done).
      while (syncer->waiting(d) != 1 && !second_done)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return SyncDir(d);
  });
  ASSERT_OK_AND_ASSIGN(
      auto engine,
      OpenDiskStorage({dir_.path(), 0, {}, /*lock_directory=*/false}, syncer));
  MakeDirs("a");  // the app exists: the first put creates the session and fsyncs "a"
  {
    std::jthread first(
        [&] { EXPECT_OK(engine->Put(Key("a/s/x"), *Object::MakeOpaque(1, Buf("x")))); });
    while (app_fsyncs.load() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::jthread second([&] {
      EXPECT_OK(engine->Put(Key("a/s/y"), *Object::MakeOpaque(1, Buf("y"))));
      app_fsyncs_when_second_done = app_fsyncs.load();
      second_done = true;
    });
  }  // joined
  EXPECT_EQ(app_fsyncs_when_second_done.load(), 2);
  EXPECT_EQ(app_fsyncs.load(), 2);
}

// ---------------------------------------------------------------------------------------
// A spooled upload is a temporary file in .flame-cache/uploads/ until PutSpooled renames
// it into place: dropped, it is removed; refused for capacity, it stays for a retry; left
// by a crash, the next start removes it.
TEST_F(DiskStorageTest, SpooledUploadsAreTemporaryUntilCommitted) {
  auto uploads = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(Path(".flame-cache/uploads")))
      names.push_back(e.path().filename().string());
    return names;
  };
  const std::string payload(3000, 'x');
  auto engine = Open(/*capacity=*/2000);
  {
    ASSERT_OK_AND_ASSIGN(auto spool, engine->BeginUpload());
    ASSERT_OK(spool->Append(*Buf(payload)));
    EXPECT_EQ(uploads().size(), 1u);
  }
  EXPECT_TRUE(uploads().empty());
  ASSERT_OK_AND_ASSIGN(auto spool, engine->BeginUpload());
  ASSERT_OK(spool->Append(*Buf(payload)));
  auto refused = engine->PutSpooled(Key("a/s/o"), 1, spool.get());
  EXPECT_TRUE(IsCapacityLimit(refused)) << refused.ToString();
  EXPECT_EQ(uploads().size(), 1u);
  EXPECT_TRUE(engine->Read(Key("a/s/o")).status().IsKeyError());
  engine.reset();
  engine = Open(/*capacity=*/0);  // restarted with room: the old spool is gone
  EXPECT_TRUE(uploads().empty());
  ASSERT_OK_AND_ASSIGN(spool, engine->BeginUpload());
  ASSERT_OK(spool->Append(*Buf(payload)));
  ASSERT_OK(engine->PutSpooled(Key("a/s/o"), 5, spool.get()));
  EXPECT_TRUE(uploads().empty());
  EXPECT_TRUE(engine->PutSpooled(Key("a/s/o"), 6, spool.get()).IsInvalid());
  spool.reset();
  ASSERT_OK_AND_ASSIGN(auto object, engine->Read(Key("a/s/o")));
  EXPECT_EQ(object->version(), 5u);
  EXPECT_TRUE(object->data()->ToString() == payload);
  EXPECT_EQ(engine->StoredBytes(Key("a/s/o")),
            static_cast<int64_t>(fs::file_size(Path("a/s/o.arrow"))));
  EXPECT_EQ(ScanAll(engine.get()).at("a/s/o").version, 5u);
}

// Fault injection: stop a write between any two of its steps, as a crash would, then
// check that a freshly opened engine sees each object wholly old or wholly new.

struct Scenario {
  const char* name;
  // Prepares the store (no faults) and returns the expected old state of `key`.
  std::function<void(StorageEngine*, const std::string& root)> setup;
  std::function<arrow::Status(StorageEngine*)> operation;
  std::string old_state;
  std::string new_state;
};

const ObjectKey kKey = Key("app/ssn/obj");

std::vector<Scenario> Scenarios() {
  auto put = [](uint64_t v, const char* data) {
    return [v, data](StorageEngine* e) {
      return e->Put(kKey, *Object::MakeOpaque(v, Buf(data)));
    };
  };
  auto with_deltas = [](StorageEngine* e, const std::string&) {
    auto o = Object::MakeOpaque(1, Buf("A"));
    ASSERT_OK(e->Put(kKey, *o));
    ASSERT_OK_AND_ASSIGN(o, o->WithDelta({2, Buf("B")}));
    ASSERT_OK(e->Append(kKey, *o));
    ASSERT_OK_AND_ASSIGN(o, o->WithDelta({3, Buf("C")}));
    ASSERT_OK(e->Append(kKey, *o));
  };
  auto legacy = [](StorageEngine*, const std::string& root) {
    const std::string dir = root + "/app/ssn";
    fs::create_directories(dir + "/obj.deltas");
    const ForeignFileShape upstream{true};
    ASSERT_OK(testing::WriteForeignOpaqueFile(dir + "/obj.arrow", {{1, "A"}}, upstream));
    ASSERT_OK(testing::WriteForeignOpaqueFile(dir + "/obj.deltas/0.arrow", {{0, "B"}},
                                              upstream));
    ASSERT_OK(testing::WriteForeignOpaqueFile(dir + "/obj.deltas/1.arrow", {{0, "C"}},
                                              upstream));
  };
  auto patch = [](StorageEngine* e) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto o, e->Read(kKey));
    ARROW_ASSIGN_OR_RAISE(o, o->WithDelta({4, Buf("D")}));
    return e->Append(kKey, *o);
  };
  // A PUT whose payload was spooled as it arrived (BeginUpload), in two pieces.
  auto put_spooled = [](uint64_t v, const char* data) {
    return [v, data](StorageEngine* e) -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto spool, e->BeginUpload());
      const std::string payload(data);
      ARROW_RETURN_NOT_OK(spool->Append(*Buf(payload.substr(0, 1))));
      ARROW_RETURN_NOT_OK(spool->Append(*Buf(payload.substr(1))));
      return e->PutSpooled(kKey, v, spool.get());
    };
  };
  const std::string three = "v3 base@1=A +2=B +3=C";
  return {
      {"put-spooled-new", [](StorageEngine*, const std::string&) {}, put_spooled(1, "NN"),
       "absent", "v1 base@1=NN"},
      {"put-spooled-replace-with-deltas", with_deltas, put_spooled(4, "NN"), three,
       "v4 base@4=NN"},
      {"put-spooled-replace-legacy-deltas", legacy, put_spooled(4, "NN"), three,
       "v4 base@4=NN"},
      {"put-new", [](StorageEngine*, const std::string&) {}, put(1, "N"), "absent",
       "v1 base@1=N"},
      {"put-replace-plain",
       [](StorageEngine* e, const std::string&) {
         ASSERT_OK(e->Put(kKey, *Object::MakeOpaque(1, Buf("A"))));
       },
       put(2, "N"), "v1 base@1=A", "v2 base@2=N"},
      {"put-replace-with-deltas", with_deltas, put(4, "N"), three, "v4 base@4=N"},
      {"put-replace-legacy-deltas", legacy, put(4, "N"), three, "v4 base@4=N"},
      {"patch", with_deltas, patch, three, "v4 base@1=A +2=B +3=C +4=D"},
      {"patch-first",
       [](StorageEngine* e, const std::string&) {
         ASSERT_OK(e->Put(kKey, *Object::MakeOpaque(3, Buf("A"))));
       },
       [](StorageEngine* e) -> arrow::Status {
         ARROW_ASSIGN_OR_RAISE(auto o, e->Read(kKey));
         ARROW_ASSIGN_OR_RAISE(o, o->WithDelta({4, Buf("D")}));
         return e->Append(kKey, *o);
       },
       "v3 base@3=A", "v4 base@3=A +4=D"},
      {"patch-legacy", legacy, patch, three, "v4 base@1=A +2=B +3=C +4=D"},
      {"remove", with_deltas, [](StorageEngine* e) { return e->Remove(kKey); }, three,
       "absent"},
      {"remove-legacy", legacy, [](StorageEngine* e) { return e->Remove(kKey); }, three,
       "absent"},
  };
}

struct FaultState {
  bool armed = false;
  int calls = 0;
  int fail_at = -1;  // -1: record only
  std::vector<std::string> steps;
};

TEST(DiskStorageFaultTest, EveryStepOfEveryWriteLeavesOldOrNew) {
  int checked = 0;
  for (const auto& scenario : Scenarios()) {
    // 1. Learn the steps of the operation.
    std::vector<std::string> steps;
    {
      TempDir dir;
      auto state = std::make_shared<FaultState>();
      DiskStorageOptions options{dir.path(), 0, [state](std::string_view step) {
                                   if (state->armed) state->steps.emplace_back(step);
                                   return arrow::Status::OK();
                                 }};
      options.lock_directory = false;  // reopened below while the first is alive
      ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage(options));
      scenario.setup(engine.get(), dir.path());
      EXPECT_EQ(Recovered(dir.path(), kKey), scenario.old_state) << scenario.name;
      ASSERT_OK_AND_ASSIGN(engine, OpenDiskStorage(options));
      ASSERT_OK(engine->Scan([](StoredObjectInfo) {}));
      state->armed = true;
      ASSERT_OK(scenario.operation(engine.get())) << scenario.name;
      steps = state->steps;
      EXPECT_EQ(Recovered(dir.path(), kKey), scenario.new_state) << scenario.name;
    }
    ASSERT_FALSE(steps.empty()) << scenario.name;
    // 2. Crash at each step in turn.
    for (size_t k = 0; k < steps.size(); ++k) {
      TempDir dir;
      auto state = std::make_shared<FaultState>();
      state->fail_at = static_cast<int>(k);
      DiskStorageOptions options{dir.path(), 0, [state](std::string_view step) {
                                   if (!state->armed) return arrow::Status::OK();
                                   if (state->calls++ == state->fail_at) {
                                     return arrow::Status::Cancelled("crash at ", step);
                                   }
                                   return arrow::Status::OK();
                                 }};
      {
        ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage(options));
        scenario.setup(engine.get(), dir.path());
      }
      {
        ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage(options));
        ASSERT_OK(engine->Scan([](StoredObjectInfo) {}));
        state->armed = true;
        auto st = scenario.operation(engine.get());
        EXPECT_TRUE(st.IsCancelled())
            << scenario.name << " at " << steps[k] << ": " << st.ToString();
      }
      const std::string got = Recovered(dir.path(), kKey);
      EXPECT_TRUE(got == scenario.old_state || got == scenario.new_state)
          << scenario.name << ", crash after step " << k << " (" << steps[k] << "): got '"
          << got << "', expected '" << scenario.old_state << "' or '"
          << scenario.new_state << "'";
      EXPECT_TRUE(Leftovers(dir.path()).empty()) << scenario.name << " at " << steps[k];
      // After recovery the object is writable again and its history consistent.
      ASSERT_OK_AND_ASSIGN(auto engine, OpenDiskStorage({dir.path(), 0, {}}));
      ASSERT_OK(engine->Scan([](StoredObjectInfo) {}));
      ASSERT_OK(engine->Put(kKey, *Object::MakeOpaque(10, Buf("Z"))));
      EXPECT_EQ(Recovered(dir.path(), kKey), "v10 base@10=Z")
          << scenario.name << " at " << steps[k];
      ++checked;
    }
  }
  std::printf("checked %d crash points\n", checked);
  EXPECT_GT(checked, 25);
}

}  // namespace
}  // namespace foc
