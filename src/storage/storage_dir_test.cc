#include "storage/storage_dir.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "storage/disk_storage.h"
#include "storage/test_files.h"
#include "testing/gtest_util.h"

namespace foc {
namespace {

namespace fs = std::filesystem;

void Touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}

TEST(StorageDirTest, EmptyMarkedAndUpstreamShapedDirectoriesAreAccepted) {
  testing::TempDir dir;
  EXPECT_OK(CheckStorageDirOwnership(dir.path()));
  Touch(dir.path() + "/.hidden");  // dot-entries of the root are never touched
  fs::create_directories(dir.path() + "/lost+found");
  Touch(dir.path() + "/app/ssn/obj.arrow");
  Touch(dir.path() + "/app/ssn/obj.deltas/0.arrow");
  fs::create_directories(dir.path() + "/app/empty-session");
  EXPECT_OK(CheckStorageDirOwnership(dir.path()));
  Touch(dir.path() + "/notes.txt");
  EXPECT_FALSE(CheckStorageDirOwnership(dir.path()).ok());
  fs::create_directories(dir.path() + "/.flame-cache");
  EXPECT_OK(CheckStorageDirOwnership(dir.path()));  // ours: the scan deals with it
}

TEST(StorageDirTest, ForeignDirectoriesAreRefusedAndLeftAlone) {
  for (const std::string rel :
       {"notes.txt", "photos/2024/cat.jpg", "app/ssn/.tmp.arrow", "app/ssn/obj.arrow.bak",
        "app/file", "app/ssn/sub/x.arrow"}) {
    testing::TempDir dir;
    Touch(dir.path() + "/" + rel);
    auto st = CheckStorageDirOwnership(dir.path());
    EXPECT_TRUE(st.IsInvalid()) << rel << ": " << st.ToString();
    EXPECT_NE(st.message().find(dir.path()), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("not a flame-object-cache store"), std::string::npos);
    // The engine refuses it too, and creates, moves or removes nothing.
    auto engine = OpenDiskStorage({dir.path(), 0, {}});
    EXPECT_TRUE(engine.status().IsInvalid()) << rel << ": " << engine.status().ToString();
    EXPECT_FALSE(fs::exists(dir.path() + "/.flame-cache")) << rel;
    EXPECT_TRUE(fs::exists(dir.path() + "/" + rel)) << rel;
  }
}

TEST(StorageDirTest, ASecondEngineOnTheSameDirectoryIsRefusedWithThePid) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto first, OpenDiskStorage({dir.path(), 0, {}}));
  auto second = OpenDiskStorage({dir.path(), 0, {}});
  ASSERT_FALSE(second.ok());
  const std::string msg = second.status().message();
  EXPECT_NE(msg.find(dir.path()), std::string::npos) << msg;
  EXPECT_NE(msg.find("in use by another flame-object-cache process"), std::string::npos);
  EXPECT_NE(msg.find("pid " + std::to_string(::getpid())), std::string::npos) << msg;
  first.reset();  // released with the engine
  ASSERT_OK(OpenDiskStorage({dir.path(), 0, {}}).status());
}

}  // namespace
}  // namespace foc
