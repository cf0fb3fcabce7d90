#include "storage/scan_prefetch.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "storage/test_files.h"

namespace foc {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void WriteFile(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits (bounded) until the prefetcher has read `want` files.
bool WaitForFiles(const ScanPrefetcher& p, size_t want) {
  for (int i = 0; i < 500 && p.files_read() < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p.files_read() == want;
}

TEST(ScanPrefetcherTest, ReadsEveryObjectFileAndChangesNothing) {
  TempDir dir;
  const fs::path root = dir.path();
  // 2 apps × 3 sessions × 4 objects, one with 2 deltas; plus what the scan skips.
  size_t files = 0;
  for (int a = 0; a < 2; ++a) {
    for (int s = 0; s < 3; ++s) {
      for (int o = 0; o < 4; ++o) {
        const fs::path session =
            root / ("app" + std::to_string(a)) / ("s" + std::to_string(s));
        WriteFile(session / ("o" + std::to_string(o) + ".arrow"),
                  std::string(100 + o, 'x'));
        ++files;
      }
    }
  }
  WriteFile(root / "app0/s0/o0.deltas/1.arrow", "d1");
  WriteFile(root / "app0/s0/o0.deltas/2.arrow", "d2");
  files += 2;
  WriteFile(root / "app0/s0/.tmp-write", "temporary");      // skipped
  WriteFile(root / ".flame-cache/version-floors", "ours");  // skipped
  const auto before = fs::last_write_time(root / "app1/s2/o3.arrow");
  {
    ScanPrefetcher prefetch(root.string(), 4);
    EXPECT_TRUE(WaitForFiles(prefetch, files))
        << prefetch.files_read() << " of " << files;
  }
  EXPECT_EQ(ReadFile(root / "app1/s2/o3.arrow"), std::string(103, 'x'));
  EXPECT_EQ(fs::last_write_time(root / "app1/s2/o3.arrow"), before);
  EXPECT_EQ(ReadFile(root / "app0/s0/.tmp-write"), "temporary");
  EXPECT_EQ(ReadFile(root / "app0/s0/o0.deltas/2.arrow"), "d2");
}

TEST(ScanPrefetcherTest, StopsWhenDestroyedEarlyAndToleratesAMissingRoot) {
  TempDir dir;
  for (int s = 0; s < 200; ++s) {
    for (int o = 0; o < 20; ++o) {
      WriteFile(fs::path(dir.path()) / "app" / ("s" + std::to_string(s)) /
                    ("o" + std::to_string(o) + ".arrow"),
                "x");
    }
  }
  { ScanPrefetcher prefetch(dir.path(), 8); }  // joined at once, whatever it had read
  ScanPrefetcher missing(dir.path() + "/no-such-dir", 2);
  EXPECT_TRUE(WaitForFiles(missing, 0));
}

}  // namespace
}  // namespace foc
