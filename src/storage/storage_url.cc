#include "storage/storage_url.h"

#include "storage/disk_storage.h"
#include "storage/s3_storage.h"

namespace foc {

arrow::Result<StorageLocation> ParseStorageUrl(std::string_view url,
                                               std::string_view flame_home) {
  if (url.empty() || url == "none") return StorageLocation{true, {}, {}};
  if (url.starts_with("s3://")) {
    std::string_view bucket = url.substr(5);
    bucket = bucket.substr(0, bucket.find_first_of("/?"));
    if (const size_t at = bucket.rfind('@'); at != std::string_view::npos) {
      bucket.remove_prefix(at + 1);  // user info (credentials)
    }
    if (bucket.empty()) {
      return arrow::Status::Invalid("Invalid storage URL '",
                                    RedactS3Uri(std::string(url)),
                                    "': no bucket (s3://<bucket>/<prefix>)");
    }
    return StorageLocation{false, {}, std::string(url)};
  }
  for (std::string_view scheme : {"fs://", "file://"}) {
    if (url.starts_with(scheme)) {
      std::string_view rest = url.substr(scheme.size());
      if (rest.empty()) {
        return arrow::Status::Invalid("Invalid storage URL '", url, "': no path");
      }
      if (rest.front() == '/') return StorageLocation{false, std::string(rest), {}};
      std::string home(flame_home.empty() ? "/var/lib/flame" : flame_home);
      if (home.back() != '/') home.push_back('/');
      return StorageLocation{false, home + std::string(rest), {}};
    }
  }
  if (url.find("://") != std::string_view::npos) {
    return arrow::Status::Invalid(
        "Invalid storage URL '", url,
        "': supported forms are none, fs://<path>, file://<path>, "
        "s3://<bucket>/<prefix>[?endpoint_override=HOST:PORT&scheme=http] or a plain "
        "path");
  }
  return StorageLocation{false, std::string(url), {}};
}

arrow::Result<std::unique_ptr<StorageEngine>> OpenStorage(std::string_view url,
                                                          std::string_view flame_home,
                                                          int64_t capacity_bytes) {
  ARROW_ASSIGN_OR_RAISE(auto location, ParseStorageUrl(url, flame_home));
  if (location.memory_only) return std::unique_ptr<StorageEngine>();  // no durable tier
  if (!location.s3_uri.empty()) {
    return OpenS3Storage(S3StorageOptions{location.s3_uri, capacity_bytes});
  }
  DiskStorageOptions options;
  options.root = location.path;
  options.capacity_bytes = capacity_bytes;
  return OpenDiskStorage(std::move(options));
}

}  // namespace foc
