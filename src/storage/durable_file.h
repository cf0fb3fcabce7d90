// POSIX file operations with the durability and error mapping the disk engine needs.
//
// Every failure names the path and the operation. ENOSPC and EDQUOT become
// CapacityError(StorageFullKind::kDevice) (see storage_full.h); ENOENT becomes IOError
// with errno detail so callers can test IsNotFound(); anything else is IOError.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/status.h>

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
