#include "node/local_map.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

#include <arrow/io/file.h>
#include <spdlog/spdlog.h>

#include "storage/object_file.h"

namespace foc {

namespace {

constexpr std::string_view kDirPrefix = "flame-object-cache-map-";
constexpr char kLockName[] = ".lock";

std::string DefaultParent() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  return std::filesystem::temp_directory_path(ec).string();
}

// Removes the map directories of tiers that are gone: their lock is free.
void RemoveAbandoned(const std::string& parent) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kDirPrefix) || !entry.is_directory(ec)) continue;
    const std::string lock = entry.path().string() + "/" + kLockName;
    const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;  // not ours to judge (or not readable by us)
    const bool abandoned = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    if (!abandoned) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (!ec) spdlog::info("node tier: removed {} left by a tier that is gone", name);
  }
}

arrow::Status WriteFile(
    const std::string& dir, const std::string& name,
    const std::function<arrow::Status(arrow::io::OutputStream*)>& fill) {
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string final_path = dir + "/" + name;
  {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(tmp));
    arrow::Status st = fill(out.get());
    if (st.ok()) st = out->Close();
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return arrow::Status::IOError("rename ", tmp, ": ", std::strerror(err));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::unique_ptr<LocalMapDir>> LocalMapDir::Open(std::string parent,
                                                              int64_t max_bytes) {
  if (parent.empty()) parent = DefaultParent();
  RemoveAbandoned(parent);
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "%d-%08x", static_cast<int>(::getpid()), rd());
  const std::string path = parent + "/" + std::string(kDirPrefix) + suffix;
  if (::mkdir(path.c_str(), 0700) != 0) {
    return arrow::Status::IOError("cannot create ", path, ": ", std::strerror(errno));
  }
  const std::string lock = path + "/" + kLockName;
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    return arrow::Status::IOError("cannot lock ", lock, ": ", std::strerror(err));
  }
  return std::unique_ptr<LocalMapDir>(new LocalMapDir(path, fd, max_bytes));
}

LocalMapDir::LocalMapDir(std::string path, int lock_fd, int64_t max_bytes)
    : path_(std::move(path)), lock_fd_(lock_fd), max_bytes_(max_bytes) {}

LocalMapDir::~LocalMapDir() {
  // Readers that still map files keep their pages (POSIX); the names go.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  ::close(lock_fd_);
}

int64_t LocalMapDir::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

void LocalMapDir::DropFilesLocked(Entry* e) {
  for (const auto& f : e->files) ::unlink(f.path.c_str());
  bytes_ -= e->bytes;
  e->files.clear();
  e->bytes = 0;
  e->base_version = 0;
}

void LocalMapDir::EvictLocked(const std::string& keep) {
  if (max_bytes_ <= 0) return;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    const std::string victim = lru_.back();
    if (victim == keep) break;  // only the object being mapped is left
    auto it = entries_.find(victim);
    lru_.pop_back();
    if (it == entries_.end()) continue;
    DropFilesLocked(&it->second);
    std::error_code ec;
    std::filesystem::remove(it->second.dir, ec);
    entries_.erase(it);
  }
}

arrow::Result<LocalObject> LocalMapDir::Materialize(const ObjectKey& key,
                                                    const Object& object,
                                                    const std::string& epoch) {
  MutexLock lock(&mu_);
  if (epoch != epoch_) {
    // Another data set: versions may repeat, so no file of the old one is kept.
    for (auto& [k, e] : entries_) {
      DropFilesLocked(&e);
      std::error_code ec;
      std::filesystem::remove(e.dir, ec);
    }
    entries_.clear();
    lru_.clear();
    epoch_ = epoch;
  }
  auto [it, created] = entries_.try_emplace(key.str());
  Entry& e = it->second;
  if (created) {
    e.dir = path_ + "/" + std::to_string(next_dir_++);
    if (::mkdir(e.dir.c_str(), 0700) != 0 && errno != EEXIST) {
      const int err = errno;
      entries_.erase(it);
      return arrow::Status::IOError("cannot create ", e.dir, ": ", std::strerror(err));
    }
    lru_.push_front(key.str());
    e.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, e.lru);
  }
  // Keep the base (and the deltas) already written when this version extends them.
  bool reusable = e.base_version == object.base_version() && !e.files.empty() &&
                  e.files.size() - 1 <= object.deltas().size();
  for (size_t i = 1; reusable && i < e.files.size(); ++i)
    reusable = e.files[i].version == object.deltas()[i - 1].version;
  if (!reusable) DropFilesLocked(&e);

  auto add = [&](const std::string& name,
                 const std::function<arrow::Status(arrow::io::OutputStream*)>& fill)
      -> arrow::Status {
    ARROW_RETURN_NOT_OK(WriteFile(e.dir, name, fill));
    ARROW_ASSIGN_OR_RAISE(auto described, DescribeObjectFile(e.dir + "/" + name));
    e.bytes += described.bytes;
    bytes_ += described.bytes;
    e.files.push_back(std::move(described));
    return arrow::Status::OK();
  };
  arrow::Status st;
  if (e.files.empty()) {
    e.base_version = object.base_version();
    const std::string name = "base-" + std::to_string(object.base_version()) + ".arrow";
    if (object.is_native()) {
      st = add(name, [&](arrow::io::OutputStream* out) {
        return WriteNativeFile(out, *object.table());
      });
    } else {
      st = add(name, [&](arrow::io::OutputStream* out) {
        return WriteOpaqueFile(out, object.base_version(), object.data());
      });
    }
  }
  for (size_t i = e.files.empty() ? 0 : e.files.size() - 1;
       st.ok() && i < object.deltas().size(); ++i) {
    const Delta& d = object.deltas()[i];
    st = add("delta-" + std::to_string(d.version) + ".arrow",
             [&](arrow::io::OutputStream* out) {
               return WriteOpaqueFile(out, d.version, d.data);
             });
  }
  if (!st.ok()) {
    DropFilesLocked(&e);  // never leave a partial set behind
    return st;
  }
  EvictLocked(key.str());
  return LocalObject{key, object.version(), object.is_native(), e.files};
}

}  // namespace foc
