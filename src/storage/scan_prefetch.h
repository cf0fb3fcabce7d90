// Read-ahead for the startup scan of a disk store (docs/storage.md, "Recovery").
//
// The scan (DiskStorage::Scan) visits every object one at a time: list a session
// directory, open each base, read its header, stat it. With a cold page cache each of
// those waits for one disk read, so 100,000 objects cost ~16 s of queue-depth-one I/O
// (docs/benchmarks.md, "Start-up on a disk store"). A ScanPrefetcher walks the same tree
// ahead of the scan with several threads that only read: directory listings, and the
// first kPrefetchBytes of every file up to that size (all the scan reads of a small
// file), so that the kernel has many reads in flight and the scan then finds them in the
// page cache.
//
// Guarantees: it never writes, renames or removes anything, and it reads nothing the scan
// depends on for correctness (the scan reads every file itself; a file that changes or
// disappears under the prefetcher is simply skipped). Sessions are taken in the scan's
// order (readdir order of apps, then of sessions), so the threads stay ahead of it.
// Destroying the prefetcher stops and joins its threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"

namespace foc {

class ScanPrefetcher {
 public:
  /// Bytes read of each small file: the size the scan reads whole (kWholeReadBytes).
  static constexpr size_t kPrefetchBytes = size_t{64} * 1024;

  /// Starts `threads` readers over the app/session tree below `root`.
  ScanPrefetcher(std::string root, int threads);
  ~ScanPrefetcher();
  ScanPrefetcher(const ScanPrefetcher&) = delete;
  ScanPrefetcher& operator=(const ScanPrefetcher&) = delete;

  /// Files read so far (for tests and logs).
  size_t files_read() const { return files_read_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Reads the listing and the small files of one directory; recurses once into `.deltas`
  // directories (a session's objects' deltas).
  void WarmDir(const std::string& dir, bool recurse, std::vector<char>* buffer);

  const std::string root_;
  Mutex mu_;
  bool listed_ FOC_GUARDED_BY(mu_) = false;  // every session has been queued
  std::vector<std::string> sessions_ FOC_GUARDED_BY(mu_);  // directories to warm
  size_t next_ FOC_GUARDED_BY(mu_) = 0;
  CondVar more_{&mu_};  // a session was queued, or the listing ended
  std::atomic<bool> stop_{false};
  std::atomic<size_t> files_read_{0};
  std::vector<std::thread> threads_;
};

}  // namespace foc
