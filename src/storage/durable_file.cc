#include "storage/durable_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "storage/storage_full.h"

namespace foc {
namespace {

// Errno carried in a StatusDetail so callers can tell "missing" from other I/O failures.
class ErrnoDetail final : public arrow::StatusDetail {
 public:
  explicit ErrnoDetail(int err) : err_(err) {}
  static constexpr char kTypeId[] = "foc::ErrnoDetail";
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override { return std::strerror(err_); }
  int err() const { return err_; }

 private:
  int err_;
};

// An OutputStream over a file descriptor it does not own; write(2) errors keep their
// errno so ENOSPC is reported as such. Writes smaller than kStageBytes are gathered and
// written together: Arrow's IPC writer issues ~16 small writes for a 1 KiB object
// (header, padding, schema, footer…), one syscall each without this (docs/benchmarks.md,
// "Durable small writes"). Larger writes go straight to the file after what is staged,
// so payloads are never copied. Flush() (and WriteFileSynced before its fsync) writes
// what is staged.
class FdOutputStream final : public arrow::io::OutputStream {
 public:
  static constexpr int64_t kStageBytes = int64_t{64} * 1024;

  FdOutputStream(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    stage_.reserve(static_cast<size_t>(kStageBytes));
  }

  arrow::Status Close() override {
    ARROW_RETURN_NOT_OK(Flush());
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override {
    return position_ + static_cast<int64_t>(stage_.size());
  }

  arrow::Status Write(const void* data, int64_t nbytes) override {
    const auto* p = static_cast<const uint8_t*>(data);
    if (static_cast<int64_t>(stage_.size()) + nbytes > kStageBytes) {
      ARROW_RETURN_NOT_OK(Flush());
    }
    if (nbytes < kStageBytes) {
      stage_.insert(stage_.end(), p, p + nbytes);
      return arrow::Status::OK();
    }
    return WriteAll(p, nbytes);
  }
  using arrow::io::OutputStream::Write;

  arrow::Status Flush() override {
    if (stage_.empty()) return arrow::Status::OK();
    arrow::Status st = WriteAll(stage_.data(), static_cast<int64_t>(stage_.size()));
    stage_.clear();
    return st;
  }

 private:
  arrow::Status WriteAll(const uint8_t* p, int64_t nbytes) {
    while (nbytes > 0) {
      // Linux writes at most ~2 GiB per call.
      const size_t chunk =
          static_cast<size_t>(std::min<int64_t>(nbytes, int64_t{1} << 30));
      const ssize_t n = ::write(fd_, p, chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        return FileError(errno, "write", path_);
      }
      p += n;
      nbytes -= n;
      position_ += n;
    }
    return arrow::Status::OK();
  }

  int fd_;
  std::string path_;
  int64_t position_ = 0;  // bytes written to the file
  std::vector<uint8_t> stage_;
  bool closed_ = false;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

arrow::Status FileError(int err, std::string_view op, const std::string& path) {
  if (err == ENOSPC || err == EDQUOT) {
    return StorageFullError(
        StorageFullKind::kDevice, "storage device full (", std::strerror(err), "): ", op,
        " ", path, " failed; the write was abandoned and the stored data is intact");
  }
  return arrow::Status::IOError(op, " ", path, ": ", std::strerror(err))
      .WithDetail(std::make_shared<ErrnoDetail>(err));
}

bool IsNotFound(const arrow::Status& st) {
  if (!st.IsIOError() || !st.detail()) return false;
  if (std::string(st.detail()->type_id()) != ErrnoDetail::kTypeId) return false;
  return static_cast<const ErrnoDetail&>(*st.detail()).err() == ENOENT;
}

arrow::Result<int64_t> WriteFileSynced(
    const std::string& path,
    const std::function<arrow::Status(arrow::io::OutputStream*)>& write) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return FileError(errno, "create", path);
  FdOutputStream out(fd.get(), path);
  ARROW_RETURN_NOT_OK(write(&out));
  ARROW_RETURN_NOT_OK(out.Flush());
  ARROW_ASSIGN_OR_RAISE(int64_t size, out.Tell());
  if (::fsync(fd.get()) != 0) return FileError(errno, "fsync", path);
  if (::close(fd.Release()) != 0) return FileError(errno, "close", path);
  return size;
}

arrow::Status PwriteAll(int fd, const void* data, int64_t size, int64_t offset,
                        const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    // Linux writes at most ~2 GiB per call.
    const auto chunk = static_cast<size_t>(std::min<int64_t>(size, int64_t{1} << 30));
    const ssize_t n = ::pwrite(fd, p, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "write", path);
    }
    p += n;
    size -= n;
    offset += n;
  }
  return arrow::Status::OK();
}

arrow::Status PreadAll(int fd, void* out, int64_t size, int64_t offset,
                       const std::string& path) {
  auto* p = static_cast<uint8_t*>(out);
  while (size > 0) {
    const auto chunk = static_cast<size_t>(std::min<int64_t>(size, int64_t{1} << 30));
    const ssize_t n = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "read", path);
    }
    if (n == 0) {
      return arrow::Status::IOError("read ", path, ": unexpected end of file at ",
                                    offset);
    }
    p += n;
    size -= n;
    offset += n;
  }
  return arrow::Status::OK();
}

arrow::Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return FileError(errno, "open directory", dir);
  if (::fsync(fd.get()) != 0) return FileError(errno, "fsync directory", dir);
  return arrow::Status::OK();
}

// One directory's group commit: fsyncs are numbered 1, 2, ... in the order they start;
// at most one runs at a time, so they also finish in that order.
struct DirSyncer::Dir {
  Mutex mu;
  CondVar finished_cv{&mu};
  uint64_t started FOC_GUARDED_BY(mu) = 0;   // fsyncs started
  uint64_t finished FOC_GUARDED_BY(mu) = 0;  // fsyncs finished
  bool running FOC_GUARDED_BY(mu) = false;
  int waiting FOC_GUARDED_BY(mu) = 0;
  // The last failed fsync's number and error (0: none failed).
  uint64_t failed FOC_GUARDED_BY(mu) = 0;
  arrow::Status failure FOC_GUARDED_BY(mu);
  int users = 0;  // callers in Sync; guarded by DirSyncer::mu_
};

DirSyncer::DirSyncer(FsyncDir fsync_dir) : fsync_dir_(std::move(fsync_dir)) {}
DirSyncer::~DirSyncer() = default;

int DirSyncer::waiting(const std::string& dir) const {
  std::shared_ptr<Dir> d;
  {
    MutexLock lock(&mu_);
    auto it = dirs_.find(dir);
    if (it == dirs_.end()) return 0;
    d = it->second;
  }
  MutexLock lock(&d->mu);
  return d->waiting;
}

arrow::Status DirSyncer::Sync(const std::string& dir) {
  ++requests_;
  std::shared_ptr<Dir> d;
  {
    MutexLock lock(&mu_);
    auto& slot = dirs_[dir];
    if (!slot) slot = std::make_shared<Dir>();
    d = slot;
    ++d->users;
  }
  arrow::Status result;
  {
    d->mu.Lock();
    // The caller's changes to `dir` are complete now, so the first fsync to start from
    // here on covers them; the one running (if any) may have started before them.
    const uint64_t target = d->started + 1;
    while (d->finished < target) {
      if (d->running) {
        ++d->waiting;
        d->finished_cv.Wait();
        --d->waiting;
        continue;
      }
      // Leader: one fsync for this caller and for everyone waiting now.
      d->running = true;
      const uint64_t number = ++d->started;
      d->mu.Unlock();
      arrow::Status st = fsync_dir_(dir);
      ++fsyncs_;
      d->mu.Lock();
      d->running = false;
      d->finished = number;
      if (!st.ok()) {
        d->failed = number;
        d->failure = std::move(st);
      }
      d->finished_cv.SignalAll();
    }
    // Conservative: a failure of a later fsync than ours also fails this caller (it may
    // have slept through its own); an unacknowledged write may be durable, never the
    // reverse.
    if (d->failed >= target) result = d->failure;
    d->mu.Unlock();
  }
  MutexLock lock(&mu_);
  if (--d->users == 0) dirs_.erase(dir);
  return result;
}

arrow::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return FileError(errno, "rename to " + to, from);
  return arrow::Status::OK();
}

arrow::Status RemoveFile(const std::string& path, bool missing_ok) {
  if (::unlink(path.c_str()) != 0 && !(missing_ok && errno == ENOENT)) {
    return FileError(errno, "remove", path);
  }
  return arrow::Status::OK();
}

bool RemoveDirIfEmpty(const std::string& dir) { return ::rmdir(dir.c_str()) == 0; }

arrow::Result<bool> MakeDir(const std::string& parent, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) {
    ARROW_RETURN_NOT_OK(SyncDir(parent));
    return true;
  }
  if (errno == EEXIST && IsDirectory(dir)) return false;
  return FileError(errno == EEXIST ? ENOTDIR : errno, "create directory", dir);
}

arrow::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return arrow::Status::OK();
    return FileError(errno, "stat", path);
  }
  if (!S_ISDIR(st.st_mode)) return RemoveFile(path);
  ARROW_ASSIGN_OR_RAISE(auto entries, ListDir(path));
  for (const auto& e : entries) ARROW_RETURN_NOT_OK(RemoveTree(path + "/" + e.name));
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT)
    return FileError(errno, "remove", path);
  return arrow::Status::OK();
}

arrow::Result<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileError(errno, "stat", path);
  return static_cast<int64_t>(st.st_size);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

arrow::Result<std::vector<DirEntry>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return FileError(errno, "list", dir);
  std::vector<DirEntry> out;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    DirEntry entry{std::string(name), false, false};
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st;
      if (::lstat((dir + "/" + entry.name).c_str(), &st) == 0) {
        entry.is_dir = S_ISDIR(st.st_mode);
        entry.is_file = S_ISREG(st.st_mode);
      }
    } else {
      entry.is_dir = type == DT_DIR;
      entry.is_file = type == DT_REG;
    }
    out.push_back(std::move(entry));
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return FileError(err, "list", dir);
  return out;
}

std::string RandomHex(size_t n) {
  static Mutex mu;  // guards rng
  static std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  MutexLock lock(&mu);
  for (auto& c : out) c = kHex[rng() & 15];
  return out;
}

}  // namespace foc
