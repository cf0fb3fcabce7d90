#include "storage/storage_dir.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "storage/durable_file.h"

namespace foc {
namespace {

constexpr char kLockFile[] = "lock";

arrow::Status Foreign(const std::string& root, const std::string& rel,
                      std::string_view why) {
  return arrow::Status::Invalid(
      "storage directory ", root,
      " is not empty and is not a flame-object-cache store (no ", kStorageInternalDir,
      "/ marker, and ", rel, " ", why,
      "); refusing to use it so that nothing in it is moved or removed: point the "
      "storage "
      "at an empty or dedicated directory");
}

bool IsDeltasDir(std::string_view name) {
  return name.size() > 7 && name.ends_with(".deltas");
}

}  // namespace

arrow::Status CheckStorageDirOwnership(const std::string& root) {
  if (PathExists(root + "/" + kStorageInternalDir)) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto apps, ListDir(root));
  for (const auto& app : apps) {
    // Dot-entries in the root are never touched by the engine; lost+found is the file
    // system's own (a dedicated volume mounted at the root).
    if (app.name.starts_with(".") || app.name == "lost+found") continue;
    if (!app.is_dir)
      return Foreign(root, app.name, "is a file where an app directory belongs");
    const std::string app_dir = root + "/" + app.name;
    ARROW_ASSIGN_OR_RAISE(auto sessions, ListDir(app_dir));
    for (const auto& session : sessions) {
      const std::string rel = app.name + "/" + session.name;
      if (!session.is_dir || session.name.starts_with("."))
        return Foreign(root, rel, "is not a session directory");
      ARROW_ASSIGN_OR_RAISE(auto objects, ListDir(app_dir + "/" + session.name));
      for (const auto& object : objects) {
        const std::string orel = rel + "/" + object.name;
        const bool base = object.is_file && object.name.ends_with(".arrow") &&
                          object.name.size() > 6 && !object.name.starts_with(".");
        const bool deltas =
            object.is_dir && IsDeltasDir(object.name) && !object.name.starts_with(".");
        if (!base && !deltas)
          return Foreign(root, orel,
                         "is neither an <object>.arrow file nor a .deltas directory");
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<StorageDirLock>> StorageDirLock::Acquire(
    const std::string& root, const std::string& internal_dir) {
  const std::string path = internal_dir + "/" + kLockFile;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return FileError(errno, "open lock file", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
      holder = std::string(buf, static_cast<size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
        holder.pop_back();
    }
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return arrow::Status::IOError(
          "storage directory ", root, " is in use by another flame-object-cache process",
          holder.empty() ? std::string() : " (pid " + holder + ")", ", which holds ",
          path, "; two servers must never share a storage directory");
    }
    return FileError(err, "lock", path);
  }
  // The holder's pid, for the message of a second server (not needed for correctness:
  // the lock itself is the flock, released by the kernel when this process ends).
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // Best effort: a full disk must not stop the server from starting.
  }
  return std::unique_ptr<StorageDirLock>(new StorageDirLock(fd));
}

StorageDirLock::~StorageDirLock() { ::close(fd_); }

}  // namespace foc
