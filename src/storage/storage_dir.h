// Ownership of a storage directory: who may use it, and only one server at a time.
//
// * Marker: `<root>/.flame-cache/` marks a directory as a flame-object-cache store. A
//   directory without it is used only when it is empty or has the shape of a store
//   written by upstream or by flamepy's local mode (`<app>/<session>/<object>.arrow` and
//   `<object>.deltas/`, nothing else; names are not validated here: an invalid one is
//   quarantined by the scan as in any store); any other non-empty directory is refused,
//   and nothing in it is touched (no quarantine, no clean-up).
// * Lock: an exclusive flock(2) on `<root>/.flame-cache/lock`, held for the engine's
//   lifetime; the holder's pid is written into the file so that a second server can name
//   it. The kernel releases the lock when the process dies, also on SIGKILL, so a stale
//   lock file never blocks a restart.
#pragma once

#include <string>

#include <arrow/result.h>
#include <arrow/status.h>

namespace foc {

/// Name of the engine's own directory below the storage root (the marker).
inline constexpr char kStorageInternalDir[] = ".flame-cache";

/// OK when `root` (an existing directory) may be used as a store: it has the marker, or
/// is empty, or holds only an upstream/flamepy-shaped store (dot-entries in the root and
/// `lost+found` are ignored). Otherwise Invalid naming the directory and the first
/// foreign entry found.
arrow::Status CheckStorageDirOwnership(const std::string& root);

/// Holds the exclusive lock on a storage directory; released on destruction.
class StorageDirLock {
 public:
  /// Takes the lock on `<internal_dir>/lock` (the directory must exist). IOError naming
  /// `root` and, when it can be read, the holder's pid, if another process holds it.
  static arrow::Result<std::unique_ptr<StorageDirLock>> Acquire(
      const std::string& root, const std::string& internal_dir);
  ~StorageDirLock();
  StorageDirLock(const StorageDirLock&) = delete;
  StorageDirLock& operator=(const StorageDirLock&) = delete;

 private:
  explicit StorageDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace foc
