#include "client/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace foc {
namespace {

arrow::Status Errno(const char* what, const std::filesystem::path& path) {
  return arrow::Status::IOError(what, " ", path.string(), ": ", std::strerror(errno));
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(12, '0');
  for (auto& c : s) c = kHex[rng() % 16];
  return s;
}

}  // namespace

arrow::Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Open(
    std::filesystem::path path) {
  if (path.filename().empty()) {
    return arrow::Status::Invalid("not a file path: '", path.string(), "'");
  }
  const auto dir = path.parent_path();
  const auto temp = dir / ("." + path.filename().string() + ".tmp-" + RandomSuffix());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", temp);
  return std::unique_ptr<AtomicFileWriter>(
      new AtomicFileWriter(std::move(path), temp, fd));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) Abandon();
}

void AtomicFileWriter::Abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

arrow::Status AtomicFileWriter::Write(const void* data, int64_t size) {
  if (fd_ < 0) return arrow::Status::Invalid("file already committed or abandoned");
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, static_cast<size_t>(size));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", temp_);
    }
    p += n;
    size -= n;
    written_ += n;
  }
  return arrow::Status::OK();
}

arrow::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return arrow::Status::Invalid("file already committed or abandoned");
  arrow::Status st;
  if (::fsync(fd_) != 0) st = Errno("cannot fsync", temp_);
  if (st.ok() && ::close(fd_) != 0) st = Errno("cannot close", temp_);
  if (st.ok()) fd_ = -1;
  if (st.ok() && ::rename(temp_.c_str(), path_.c_str()) != 0)
    st = Errno("cannot rename to", path_);
  if (!st.ok()) {
    Abandon();
    return st;
  }
  committed_ = true;
  // Make the rename durable; a failure here does not undo it, so it is not reported.
  const auto dir =
      path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path();
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return arrow::Status::OK();
}

}  // namespace foc
