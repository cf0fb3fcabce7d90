#include "storage/durable_file.h"

#include <cerrno>
#include <set>

#include "storage/storage_full.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

using testing::TempDir;

TEST(DurableFileTest, WriteIsExclusiveAndSized) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  auto write = [](arrow::io::OutputStream* out) { return out->Write("12345", 5); };
  ASSERT_OK_AND_ASSIGN(int64_t size, WriteFileSynced(path, write));
  EXPECT_EQ(size, 5);
  EXPECT_EQ(FileSize(path).ValueOrDie(), 5);
  EXPECT_STATUS(IOError, path, WriteFileSynced(path, write));  // O_EXCL
  ASSERT_OK(RenameFile(path, dir.path() + "/g"));
  EXPECT_FALSE(PathExists(path));
  ASSERT_OK(SyncDir(dir.path()));
  ASSERT_OK(RemoveFile(dir.path() + "/g"));
  ASSERT_OK(RemoveFile(dir.path() + "/g"));  // missing is fine
  EXPECT_STATUS(IOError, "remove", RemoveFile(dir.path() + "/g", false));
  EXPECT_TRUE(IsNotFound(FileSize(dir.path() + "/g").status()));
}

TEST(DurableFileTest, ErrnoMapping) {
  auto full = FileError(ENOSPC, "write", "/x/y");
  EXPECT_TRUE(full.IsCapacityError());
  EXPECT_TRUE(IsDeviceFull(full));
  EXPECT_FALSE(IsCapacityLimit(full));
  EXPECT_NE(full.message().find("/x/y"), std::string::npos);
  EXPECT_TRUE(IsDeviceFull(FileError(EDQUOT, "write", "/x")));
  auto missing = FileError(ENOENT, "open", "/x");
  EXPECT_TRUE(missing.IsIOError());
  EXPECT_TRUE(IsNotFound(missing));
  EXPECT_FALSE(IsNotFound(FileError(EACCES, "open", "/x")));
  EXPECT_TRUE(IsCapacityLimit(StorageFullError(StorageFullKind::kLimit, "limit")));
}

TEST(DurableFileTest, DirectoriesListAndTrees) {
  TempDir dir;
  const std::string a = dir.path() + "/a";
  ASSERT_OK_AND_ASSIGN(bool created, MakeDir(dir.path(), a));
  EXPECT_TRUE(created);
  ASSERT_OK_AND_ASSIGN(created, MakeDir(dir.path(), a));
  EXPECT_FALSE(created);
  ASSERT_OK(MakeDir(a, a + "/b").status());
  ASSERT_OK(WriteFileSynced(a + "/b/f", [](arrow::io::OutputStream*) {
              return arrow::Status::OK();
            }).status());
  ASSERT_OK(WriteFileSynced(a + "/g", [](arrow::io::OutputStream*) {
              return arrow::Status::OK();
            }).status());
  EXPECT_TRUE(
      IsNotFound(MakeDir(dir.path() + "/missing", dir.path() + "/missing/x").status()));
  ASSERT_OK_AND_ASSIGN(auto entries, ListDir(a));
  std::set<std::string> names;
  for (const auto& e : entries) {
    names.insert(e.name);
    EXPECT_EQ(e.is_dir, e.name == "b");
    EXPECT_EQ(e.is_file, e.name == "g");
  }
  EXPECT_EQ(names, (std::set<std::string>{"b", "g"}));
  EXPECT_FALSE(RemoveDirIfEmpty(a));
  ASSERT_OK(RemoveTree(a));
  EXPECT_FALSE(PathExists(a));
  ASSERT_OK(RemoveTree(a));
  EXPECT_TRUE(IsNotFound(ListDir(a).status()));
  EXPECT_EQ(RandomHex(12).size(), 12u);
  EXPECT_NE(RandomHex(16), RandomHex(16));
}

}  // namespace
}  // namespace foc
