#include "storage/scan_prefetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include "storage/durable_file.h"

namespace foc {

ScanPrefetcher::ScanPrefetcher(std::string root, int threads) : root_(std::move(root)) {
  threads_.emplace_back([this] {  // the lister: apps, then their sessions, in scan order
    if (auto apps = ListDir(root_); apps.ok()) {
      for (const auto& app : *apps) {
        if (stop_.load(std::memory_order_relaxed)) break;
        if (!app.is_dir || app.name.starts_with(".")) continue;
        auto sessions = ListDir(root_ + "/" + app.name);
        if (!sessions.ok()) continue;
        MutexLock lock(&mu_);
        for (const auto& s : *sessions) {
          if (s.is_dir && !s.name.starts_with(".")) {
            sessions_.push_back(root_ + "/" + app.name + "/" + s.name);
          }
        }
        more_.SignalAll();
      }
    }
    MutexLock lock(&mu_);
    listed_ = true;
    more_.SignalAll();
  });
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

ScanPrefetcher::~ScanPrefetcher() {
  stop_.store(true, std::memory_order_relaxed);
  {
    MutexLock lock(&mu_);
    more_.SignalAll();
  }
  for (auto& t : threads_) t.join();
}

void ScanPrefetcher::Run() {
  std::vector<char> buffer(kPrefetchBytes);
  while (!stop_.load(std::memory_order_relaxed)) {
    std::string dir;
    {
      MutexLock lock(&mu_);
      while (next_ >= sessions_.size() && !listed_ &&
             !stop_.load(std::memory_order_relaxed)) {
        more_.WaitFor(std::chrono::milliseconds(100));
      }
      if (next_ >= sessions_.size()) return;  // listed and all taken, or stopping
      dir = sessions_[next_++];
    }
    WarmDir(dir, /*recurse=*/true, &buffer);
  }
}

void ScanPrefetcher::WarmDir(const std::string& dir, bool recurse,
                             std::vector<char>* buffer) {
  auto entries = ListDir(dir);
  if (!entries.ok()) return;  // gone or unreadable: the scan reports it
  for (const auto& e : *entries) {
    if (stop_.load(std::memory_order_relaxed)) return;
    if (e.name.starts_with(".")) continue;  // temporaries: the scan removes them
    const std::string path = dir + "/" + e.name;
    if (e.is_dir) {
      if (recurse) WarmDir(path, /*recurse=*/false, buffer);
      continue;
    }
    if (!e.is_file) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // The bytes are thrown away: the point is that the kernel now caches them.
    [[maybe_unused]] const ssize_t n = ::pread(fd, buffer->data(), buffer->size(), 0);
    ::close(fd);
    files_read_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace foc
