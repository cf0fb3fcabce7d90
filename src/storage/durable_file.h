// POSIX file operations with the durability and error mapping the disk engine needs.
//
// Every failure names the path and the operation. ENOSPC and EDQUOT become
// CapacityError(StorageFullKind::kDevice) (see storage_full.h); ENOENT becomes IOError
// with errno detail so callers can test IsNotFound(); anything else is IOError.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "base/mutex.h"

namespace foc {

/// The Status of a failed file operation `op` on `path` with `errno` value `err`.
arrow::Status FileError(int err, std::string_view op, const std::string& path);

/// True when `st` came from FileError(ENOENT, ...).
bool IsNotFound(const arrow::Status& st);

/// Creates `path` exclusively (O_CREAT|O_EXCL, mode 0644), lets `write` fill it through
/// an unbuffered OutputStream, fsyncs and closes it. Returns the file's size. On failure
/// the partial file is left in place (the caller owns the name and removes it).
arrow::Result<int64_t> WriteFileSynced(
    const std::string& path,
    const std::function<arrow::Status(arrow::io::OutputStream*)>& write);

/// pwrite(2) of all `size` bytes of `data` at `offset` of the open file `fd` (`path`
/// names it in errors), retrying short writes and EINTR.
arrow::Status PwriteAll(int fd, const void* data, int64_t size, int64_t offset,
                        const std::string& path);

/// pread(2) of exactly `size` bytes at `offset` into `out`; IOError at an early end.
arrow::Status PreadAll(int fd, void* out, int64_t size, int64_t offset,
                       const std::string& path);

/// fsync of a directory, making its entries (creates, renames, unlinks) durable.
arrow::Status SyncDir(const std::string& dir);

/// Group commit of directory fsyncs. Sync(dir) returns once an fsync of `dir` that
/// *started after Sync was called* has completed — so every entry change (create,
/// rename, unlink) made in `dir` before the call is durable, exactly as if the caller had
/// fsynced `dir` itself — but concurrent callers share fsyncs: while one fsync of `dir`
/// runs, every caller that arrives waits, and when it ends one of them fsyncs `dir`
/// once on behalf of all of them (an fsync already running when a caller arrived may have
/// started before that caller's rename, so it never counts for it). Per directory: a
/// generation counter of fsyncs started and finished, one running at a time. A failed
/// fsync fails every caller it was to cover (and, conservatively, callers of earlier
/// generations that had not yet woken). Thread-safe; distinct directories never wait for
/// each other.
class DirSyncer {
 public:
  /// The fsync of one directory (SyncDir; tests inject a counting or gated one).
  using FsyncDir = std::function<arrow::Status(const std::string& dir)>;

  explicit DirSyncer(FsyncDir fsync_dir = SyncDir);
  DirSyncer(const DirSyncer&) = delete;
  DirSyncer& operator=(const DirSyncer&) = delete;
  ~DirSyncer();

  /// Makes the entries of `dir` durable as of this call (see the class comment).
  arrow::Status Sync(const std::string& dir);

  /// Calls of Sync so far.
  uint64_t requests() const { return requests_.load(); }
  /// fsyncs issued so far (requests() minus the shared ones).
  uint64_t fsyncs() const { return fsyncs_.load(); }
  /// Callers of Sync(dir) now waiting for another caller's fsync (for tests).
  int waiting(const std::string& dir) const;

 private:
  struct Dir;

  const FsyncDir fsync_dir_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> fsyncs_{0};
  mutable Mutex mu_;
  // Directories with callers in Sync; an entry is erased when its last caller leaves.
  std::unordered_map<std::string, std::shared_ptr<Dir>> dirs_ FOC_GUARDED_BY(mu_);
};

/// rename(2): atomically replaces `to`.
arrow::Status RenameFile(const std::string& from, const std::string& to);

/// unlink(2); a missing file is OK when `missing_ok`.
arrow::Status RemoveFile(const std::string& path, bool missing_ok = true);

/// rmdir(2) when empty; returns whether it was removed (false when not empty or missing).
bool RemoveDirIfEmpty(const std::string& dir);

/// Creates directory `dir` below the existing directory `parent` when missing, fsyncing
/// `parent` after a creation. Returns true if it was created.
arrow::Result<bool> MakeDir(const std::string& parent, const std::string& dir);

/// Removes a directory tree (files, then directories). Missing is OK.
arrow::Status RemoveTree(const std::string& path);

/// Size of a regular file; IOError (IsNotFound) when missing.
arrow::Result<int64_t> FileSize(const std::string& path);

/// Whether `path` exists (any type).
bool PathExists(const std::string& path);

/// Whether `path` is a directory.
bool IsDirectory(const std::string& path);

/// One entry of a directory listing.
struct DirEntry {
  std::string name;
  bool is_dir = false;
  bool is_file = false;  ///< regular file
};

/// The entries of `dir` (without `.` and `..`), unsorted. IOError (IsNotFound) when
/// missing.
arrow::Result<std::vector<DirEntry>> ListDir(const std::string& dir);

/// Random lowercase hex of `n` characters, for temporary names.
std::string RandomHex(size_t n);

}  // namespace foc
