// The S3 engine against a real S3 server: Versity S3 Gateway on loopback (built by
// scripts/bootstrap.sh), POSIX backend in a temporary directory.
#include "storage/s3_storage.h"

#include <sys/xattr.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <arrow/api.h>
#include <arrow/io/file.h>

#include "storage/object_file.h"
#include "storage/storage_full.h"
#include "storage/storage_unavailable.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"
#include "testing/versitygw.h"

namespace foc {
namespace {

using testing::TempDir;
using testing::Versitygw;

ObjectKey Key(std::string_view k) { return ObjectKey::Parse(k).ValueOrDie(); }
std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

std::string Describe(const Object& o) {
  std::string s = "v" + std::to_string(o.version()) + " base@" +
                  std::to_string(o.base_version()) + "=";
  s += o.is_native() ? "<native>" : o.data()->ToString();
  for (const auto& d : o.deltas())
    s += " +" + std::to_string(d.version) + "=" + d.data->ToString();
  return s;
}

class S3StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Credentials are in the URIs; never ask an instance-metadata service (off loopback).
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    ASSERT_TRUE(gw_.running()) << "versitygw did not start: "
                               << testing::VersitygwBinary()
                               << " (scripts/bootstrap.sh builds it)";
    gw_.MakeBucket("bucket");
  }
  // A short lease, so that reopening after a simulated crash does not wait long.
  std::string Uri(const std::string& prefix = "bucket/cache") const {
    return gw_.Uri(prefix, "&lease_seconds=1");
  }
  arrow::Result<std::unique_ptr<StorageEngine>> Open(int64_t capacity = 0) {
    return OpenS3Storage({Uri(), capacity});
  }
  // Everything a fresh engine indexes.
  std::map<std::string, StoredObjectInfo> ScanAll(StorageEngine* engine) {
    std::map<std::string, StoredObjectInfo> seen;
    EXPECT_OK(engine->Scan(
        [&](StoredObjectInfo info) { seen.insert_or_assign(info.key.str(), info); }));
    return seen;
  }
  // The files below the gateway's bucket directory, relative to it.
  std::set<std::string> Files() const {
    std::set<std::string> out;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(dir_.path() + "/bucket")) {
      if (e.is_regular_file())
        out.insert(std::filesystem::relative(e.path(), dir_.path() + "/bucket").string());
    }
    return out;
  }

  TempDir dir_;
  Versitygw gw_{dir_.path()};
};

TEST_F(S3StorageTest, PutAppendReadRemoveAndRestart) {
  const ObjectKey k = Key("app/sess/obj.1");
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    EXPECT_TRUE(ScanAll(engine.get()).empty());
    ASSERT_OK(engine->Put(k, *Object::MakeOpaque(1, Buf("hello"))));
    ASSERT_OK_AND_ASSIGN(auto o, engine->Read(k));
    EXPECT_EQ(Describe(*o), "v1 base@1=hello");
    ASSERT_OK_AND_ASSIGN(auto o2, o->WithDelta(Delta{2, Buf(" world")}));
    ASSERT_OK(engine->Append(k, *o2));
    ASSERT_OK_AND_ASSIGN(auto o3, engine->Read(k));
    EXPECT_EQ(Describe(*o3), "v2 base@1=hello +2= world");
    EXPECT_GT(engine->Usage().stored_bytes, 0);
  }
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    auto seen = ScanAll(engine.get());
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen.at(k.str()).version, 2u);
    EXPECT_EQ(seen.at(k.str()).delta_count, 1);
    ASSERT_OK_AND_ASSIGN(auto o, engine->Read(k));
    EXPECT_EQ(Describe(*o), "v2 base@1=hello +2= world");
    // Replacing drops the deltas and the old base.
    ASSERT_OK(engine->Put(k, *Object::MakeOpaque(3, Buf("new"))));
    ASSERT_OK_AND_ASSIGN(auto o2, engine->Read(k));
    EXPECT_EQ(Describe(*o2), "v3 base@3=new");
    EXPECT_EQ(Files(), (std::set<std::string>{
                           "cache/.flame-cache/instance-id", "cache/.flame-cache/lease",
                           "cache/app/sess/obj.1.00000000000000000003.base.arrow"}));
    ASSERT_OK(engine->Remove(k));
    EXPECT_STATUS(KeyError, "not found", engine->Read(k).status());
    ASSERT_OK(engine->Remove(k));  // missing is fine
  }
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  EXPECT_TRUE(ScanAll(engine.get()).empty());
}

// Whether the gateway completed `file` (relative to the bucket) as a multipart upload:
// its POSIX backend stores the parts' layout in the xattr "user.mp-metadata" of objects
// made by CompleteMultipartUpload only, never of a single PutObject.
bool MadeByMultipartUpload(const std::string& bucket_dir, const std::string& file) {
  const std::string path = bucket_dir + "/" + file;
  return ::getxattr(path.c_str(), "user.mp-metadata", nullptr, 0) >= 0;
}

TEST_F(S3StorageTest, LargeObjectsUseMultipartUploadAndRoundTrip) {
  // Arrow's S3 output stream uploads parts of 10 MiB: 26 MiB go up in three parts.
  std::string big(26 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 2654435761u) >> 13);
  const ObjectKey k = Key("app/s/big");
  const ObjectKey small = Key("app/s/small");
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    ASSERT_OK(engine->Put(k, *Object::MakeOpaque(1, Buf(big))));
    ASSERT_OK(engine->Put(small, *Object::MakeOpaque(1, Buf("tiny"))));
    EXPECT_GT(engine->StoredBytes(k), static_cast<int64_t>(big.size()));
  }
  const std::string bucket_dir = dir_.path() + "/bucket";
  const std::string big_file = "cache/app/s/big.00000000000000000001.base.arrow";
  const std::string small_file = "cache/app/s/small.00000000000000000001.base.arrow";
  ASSERT_TRUE(Files().count(big_file)) << "missing " << big_file;
  EXPECT_TRUE(MadeByMultipartUpload(bucket_dir, big_file));
  EXPECT_FALSE(MadeByMultipartUpload(bucket_dir, small_file));  // one PutObject
  // A fresh engine indexes it and reads every byte back.
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.count(k.str()), 1u);
  EXPECT_GE(seen.at(k.str()).payload_bytes, static_cast<int64_t>(big.size()));
  ASSERT_OK_AND_ASSIGN(auto o, engine->Read(k));
  ASSERT_EQ(o->data()->size(), static_cast<int64_t>(big.size()));
  EXPECT_TRUE(o->data()->ToString() == big);
}

TEST_F(S3StorageTest, FilesAreTheDiskFormat) {
  const ObjectKey k = Key("a/s/o");
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  ASSERT_OK(engine->Put(k, *Object::MakeOpaque(7, Buf("payload"))));
  auto file = arrow::io::ReadableFile::Open(
                  dir_.path() + "/bucket/cache/a/s/o.00000000000000000007.base.arrow")
                  .ValueOrDie();
  ASSERT_OK_AND_ASSIGN(auto object, ReadBaseFile(file));
  EXPECT_EQ(Describe(*object), "v7 base@7=payload");
}

TEST_F(S3StorageTest, NativeTables) {
  const ObjectKey k = Key("a/s/table");
  ASSERT_OK_AND_ASSIGN(auto batch, testing::MakeNativeBatch(5));
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    ASSERT_OK(
        engine->Put(k, *Object::MakeNative(4, NativeTable{batch->schema(), {batch}})));
  }
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen.at(k.str()).native);
  ASSERT_OK_AND_ASSIGN(auto object, engine->Read(k));
  EXPECT_TRUE(object->is_native());
  EXPECT_EQ(object->version(), 4u);
  ASSERT_OK_AND_ASSIGN(auto schema, engine->ReadNativeSchema(k));
  ASSERT_NE(schema, nullptr);
  EXPECT_TRUE(schema->Equals(*batch->schema(), false));
}

TEST_F(S3StorageTest, InstanceIdAndFloorsSurviveRestarts) {
  std::string id;
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    ASSERT_OK_AND_ASSIGN(id, engine->InstanceId());
    EXPECT_FALSE(id.empty());
    ASSERT_OK(engine->RecordFloor({"a/s/o", 5}));
    ASSERT_OK(engine->RecordFloor({"a/s/*", 9}));
    ASSERT_OK(engine->RecordFloor({"a/s/o", 7}));
  }
  for (int i = 0; i < 2; ++i) {  // the second start reads the compacted file
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    EXPECT_EQ(engine->InstanceId().ValueOrDie(), id);
    ASSERT_OK_AND_ASSIGN(auto floors, engine->LoadFloors());
    std::map<std::string, uint64_t> got;
    for (const auto& f : floors) got[f.pattern] = f.version;
    EXPECT_EQ(got, (std::map<std::string, uint64_t>{{"a/s/*", 9}, {"a/s/o", 7}}));
  }
}

TEST_F(S3StorageTest, StartupRemovesStaleAndOrphanFiles) {
  const ObjectKey k = Key("a/s/o");
  {
    ASSERT_OK_AND_ASSIGN(auto engine, Open());
    ASSERT_OK(engine->Put(k, *Object::MakeOpaque(5, Buf("five"))));
  }
  // What interrupted writes leave behind: an older base, a delta at or below the base
  // version, deltas of a deleted object; and a foreign file, which is left alone.
  const std::string s = dir_.path() + "/bucket/cache/a/s/";
  ASSERT_OK(testing::WriteForeignOpaqueFile(s + "o.00000000000000000002.base.arrow",
                                            {{2, "old"}}, {}));
  ASSERT_OK(testing::WriteForeignOpaqueFile(s + "o.00000000000000000004.delta.arrow",
                                            {{4, "stale"}}, {}));
  ASSERT_OK(testing::WriteForeignOpaqueFile(s + "gone.00000000000000000003.delta.arrow",
                                            {{3, "orphan"}}, {}));
  ASSERT_OK(testing::WriteForeignOpaqueFile(s + "notes.txt", {{1, "x"}}, {}));
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  auto seen = ScanAll(engine.get());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.at(k.str()).version, 5u);
  ASSERT_OK_AND_ASSIGN(auto o, engine->Read(k));
  EXPECT_EQ(Describe(*o), "v5 base@5=five");
  auto files = Files();
  EXPECT_TRUE(files.count("cache/a/s/o.00000000000000000005.base.arrow"));
  EXPECT_TRUE(files.count("cache/a/s/notes.txt"));
  EXPECT_FALSE(files.count("cache/a/s/o.00000000000000000002.base.arrow"));
  EXPECT_FALSE(files.count("cache/a/s/o.00000000000000000004.delta.arrow"));
  EXPECT_FALSE(files.count("cache/a/s/gone.00000000000000000003.delta.arrow"));
}

TEST_F(S3StorageTest, CapacityLimit) {
  ASSERT_OK_AND_ASSIGN(auto engine, Open(4096));
  ASSERT_OK(engine->Put(Key("a/s/small"), *Object::MakeOpaque(1, Buf("x"))));
  auto st =
      engine->Put(Key("a/s/big"), *Object::MakeOpaque(2, Buf(std::string(8192, 'b'))));
  EXPECT_TRUE(IsCapacityLimit(st)) << st.ToString();
  EXPECT_EQ(engine->Usage().capacity_bytes, 4096);
  // The refusal says how much must be freed, in the bytes the engine counts per object.
  const int64_t small = engine->StoredBytes(Key("a/s/small"));
  EXPECT_GT(small, 1);
  EXPECT_EQ(engine->Usage().stored_bytes, small);
  EXPECT_GT(BytesToFree(st), 8192 - 4096);
  EXPECT_EQ(engine->StoredBytes(Key("a/s/big")), 0);
}

TEST_F(S3StorageTest, SecondServerOnThePrefixIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto first, Open());
  auto second = Open();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use by another running server"),
            std::string::npos)
      << second.status().ToString();
  // Another prefix of the same bucket is fine.
  ASSERT_OK(OpenS3Storage({Uri("bucket/other"), 0}).status());
  // A clean stop frees the prefix at once.
  first.reset();
  ASSERT_OK(Open().status());
}

TEST_F(S3StorageTest, ErrorsAreClear) {
  auto no_bucket = OpenS3Storage({gw_.Uri("missing/p"), 0});
  ASSERT_FALSE(no_bucket.ok());
  EXPECT_TRUE(IsStorageUnavailable(no_bucket.status())) << no_bucket.status().ToString();
  EXPECT_NE(no_bucket.status().message().find("does not exist"), std::string::npos)
      << no_bucket.status().ToString();

  std::string bad = Uri();
  bad.replace(bad.find(testing::kS3SecretKey), std::strlen(testing::kS3SecretKey),
              "wrong");
  auto refused = OpenS3Storage({bad, 0});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsStorageUnavailable(refused.status())) << refused.status().ToString();

  auto unreachable =
      OpenS3Storage({"s3://k:s@bucket/p?endpoint_override=127.0.0.1:" +
                         std::to_string(testing::FreeLoopbackPort()) + "&scheme=http",
                     0});
  ASSERT_FALSE(unreachable.ok());
  EXPECT_TRUE(IsStorageUnavailable(unreachable.status()))
      << unreachable.status().ToString();

  EXPECT_STATUS(Invalid, "lease_seconds",
                OpenS3Storage({Uri() + "&lease_seconds=x", 0}).status());
  EXPECT_EQ(RedactS3Uri("s3://ak:sk@b/p?x=1"), "s3://***@b/p?x=1");
  EXPECT_EQ(RedactS3Uri("s3://b/p"), "s3://b/p");
}

TEST_F(S3StorageTest, OutageFailsWritesUnavailableAndRecovers) {
  const ObjectKey k = Key("a/s/o");
  ASSERT_OK_AND_ASSIGN(auto engine, Open());
  ASSERT_OK(engine->Put(k, *Object::MakeOpaque(1, Buf("one"))));
  gw_.Stop();
  auto st = engine->Put(k, *Object::MakeOpaque(2, Buf("two")));
  EXPECT_TRUE(IsStorageUnavailable(st)) << st.ToString();
  EXPECT_TRUE(IsStorageUnavailable(engine->Read(k).status()));
  ASSERT_TRUE(gw_.Start());
  ASSERT_OK(engine->Put(k, *Object::MakeOpaque(3, Buf("three"))));
  ASSERT_OK_AND_ASSIGN(auto o, engine->Read(k));
  EXPECT_EQ(Describe(*o), "v3 base@3=three");
}

}  // namespace
}  // namespace foc
