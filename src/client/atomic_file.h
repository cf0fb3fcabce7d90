// Writing a file so that it appears whole or not at all: a temporary file beside the
// target, fsync, rename over the target, fsync of the directory. Until Commit() the
// target is untouched; an uncommitted writer removes its temporary file when destroyed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include <arrow/result.h>
#include <arrow/status.h>

namespace foc {

/// A file written through a temporary sibling and renamed into place by Commit().
class AtomicFileWriter {
 public:
  /// Creates the temporary file `.<name>.tmp-<random>` in `path`'s directory.
  static arrow::Result<std::unique_ptr<AtomicFileWriter>> Open(
      std::filesystem::path path);
  /// Removes the temporary file unless Commit() succeeded.
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  /// Appends `size` bytes.
  arrow::Status Write(const void* data, int64_t size);
  /// fsync, rename over the target, fsync the directory. After a failure the temporary
  /// file is removed and the target is as before.
  arrow::Status Commit();
  /// Bytes written so far.
  int64_t bytes_written() const { return written_; }

 private:
  AtomicFileWriter(std::filesystem::path path, std::filesystem::path temp, int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  void Abandon();

  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
  int64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace foc
