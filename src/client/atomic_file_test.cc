// AtomicFileWriter: the target appears only on Commit(); an abandoned writer leaves
// nothing.
#include "client/atomic_file.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {
namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("foc-atomic-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t Files() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

TEST_F(AtomicFileTest, CommitReplacesTheTarget) {
  const auto target = dir_ / "f.bin";
  std::ofstream(target) << "old";
  ASSERT_OK_AND_ASSIGN(auto w, AtomicFileWriter::Open(target));
  ASSERT_OK(w->Write("new ", 4));
  ASSERT_OK(w->Write("data", 4));
  EXPECT_EQ(Read(target), "old");  // untouched until Commit
  EXPECT_EQ(Files(), 2u);
  ASSERT_OK(w->Commit());
  EXPECT_EQ(Read(target), "new data");
  EXPECT_EQ(w->bytes_written(), 8);
  w.reset();
  EXPECT_EQ(Files(), 1u);
}

TEST_F(AtomicFileTest, AbandonedWriterLeavesNothing) {
  const auto target = dir_ / "f.bin";
  {
    ASSERT_OK_AND_ASSIGN(auto w, AtomicFileWriter::Open(target));
    ASSERT_OK(w->Write("partial", 7));
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(Files(), 0u);
}

TEST_F(AtomicFileTest, MissingDirectoryIsAnError) {
  EXPECT_STATUS(IOError, "cannot create", AtomicFileWriter::Open(dir_ / "no" / "f.bin"));
}

}  // namespace
}  // namespace foc
