#include "storage/durable_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

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

// Waits (no deadline assertion: a stuck test is stopped by ctest's timeout) until
// `ready`.
template <class F>
void AwaitCondition(F ready) {
  while (!ready()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(DirSyncerTest, SequentialCallsEachFsyncAndDistinctDirectoriesNeverShare) {
  TempDir dir;
  std::atomic<int> calls{0};
  DirSyncer syncer([&](const std::string& d) {
    ++calls;
    return SyncDir(d);
  });
  ASSERT_OK(MakeDir(dir.path(), dir.path() + "/a").status());
  ASSERT_OK(MakeDir(dir.path(), dir.path() + "/b").status());
  for (int i = 0; i < 3; ++i) ASSERT_OK(syncer.Sync(dir.path() + "/a"));
  ASSERT_OK(syncer.Sync(dir.path() + "/b"));
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(syncer.requests(), 4u);
  EXPECT_EQ(syncer.fsyncs(), 4u);
  EXPECT_EQ(syncer.waiting(dir.path() + "/a"), 0);
  // The default fsync is SyncDir's, errors included.
  DirSyncer real;
  ASSERT_OK(real.Sync(dir.path()));
  EXPECT_TRUE(IsNotFound(real.Sync(dir.path() + "/missing")));
}

// N callers of one directory: the first one's fsync is held until the other N-1 are all
// waiting. They arrived while it ran, so it may have started before their renames: it
// must not count for them, and exactly one more fsync must cover all of them. Without
// group commit this is N fsyncs; with a combiner that let waiters piggy-back on the
// running fsync, 1.
TEST(DirSyncerTest, ConcurrentCallersShareTheNextFsyncNotTheRunningOne) {
  TempDir dir;
  constexpr int kCallers = 8;
  std::atomic<int> calls{0};
  std::atomic<int> done{0};  // callers after the first that returned
  DirSyncer* self = nullptr;
  DirSyncer syncer([&](const std::string& d) {
    // (Also released if the others return without waiting: then the test fails below
    // instead of hanging.)
    if (++calls == 1) {
      AwaitCondition(
          [&] { return self->waiting(d) == kCallers - 1 || done == kCallers - 1; });
    }
    return SyncDir(d);
  });
  self = &syncer;
  std::vector<arrow::Status> results(kCallers);
  std::vector<std::jthread> threads;
  threads.emplace_back([&] { results[0] = syncer.Sync(dir.path()); });
  AwaitCondition([&] { return calls.load() == 1; });  // the first fsync is running
  for (int i = 1; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      results[i] = syncer.Sync(dir.path());
      // Returned only after an fsync that started after this call.
      EXPECT_EQ(calls.load(), 2);
      ++done;
    });
  }
  threads.clear();  // joined
  for (const auto& st : results) EXPECT_OK(st);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(syncer.requests(), static_cast<uint64_t>(kCallers));
  EXPECT_EQ(syncer.fsyncs(), 2u);
}

// The guarantee itself, under free-running concurrency: every call returns only after an
// fsync that started after the call began and finished before it returned. Events are
// ordered by one atomic counter (no clocks).
TEST(DirSyncerTest, EveryCallIsCoveredByAnFsyncThatStartedAfterIt) {
  TempDir dir;
  constexpr int kThreads = 8;
  constexpr int kCalls = 200;
  std::atomic<uint64_t> clock{0};
  Mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> fsyncs;  // (start, end)
  DirSyncer syncer([&](const std::string&) {
    const uint64_t start = ++clock;
    std::this_thread::yield();
    const uint64_t end = ++clock;
    MutexLock lock(&mu);
    fsyncs.emplace_back(start, end);
    return arrow::Status::OK();
  });
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> calls(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kCalls; ++i) {
          const uint64_t begin = ++clock;
          EXPECT_OK(syncer.Sync(dir.path()));
          calls[t].emplace_back(begin, ++clock);
        }
      });
    }
  }
  MutexLock lock(&mu);
  for (const auto& per_thread : calls) {
    for (const auto& [begin, end] : per_thread) {
      const bool covered = std::any_of(fsyncs.begin(), fsyncs.end(), [&](const auto& f) {
        return f.first > begin && f.second < end;
      });
      EXPECT_TRUE(covered) << "call [" << begin << ", " << end << "]";
    }
  }
  EXPECT_EQ(syncer.requests(), static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_EQ(syncer.fsyncs(), fsyncs.size());
}

TEST(DirSyncerTest, AFailedFsyncFailsEveryCallerItCovered) {
  TempDir dir;
  constexpr int kCallers = 4;
  std::atomic<int> calls{0};
  std::atomic<bool> fail{true};
  DirSyncer* self = nullptr;
  DirSyncer syncer([&](const std::string& d) -> arrow::Status {
    if (++calls == 1) AwaitCondition([&] { return self->waiting(d) == kCallers - 1; });
    if (fail) return FileError(EIO, "fsync directory", d);
    return SyncDir(d);
  });
  self = &syncer;
  std::vector<arrow::Status> results(kCallers);
  std::vector<std::jthread> threads;
  threads.emplace_back([&] { results[0] = syncer.Sync(dir.path()); });
  AwaitCondition([&] { return calls.load() == 1; });
  for (int i = 1; i < kCallers; ++i)
    threads.emplace_back([&, i] { results[i] = syncer.Sync(dir.path()); });
  threads.clear();
  for (const auto& st : results) EXPECT_STATUS(IOError, "fsync directory", st);
  // A later caller gets a later fsync's own result.
  fail = false;
  EXPECT_OK(syncer.Sync(dir.path()));
}

}  // namespace
}  // namespace foc
