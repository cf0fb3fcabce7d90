// Storage selection as upstream (upstream-server.md §6.1): `none`/empty → memory only;
// `fs://<p>` and `file://<p>` → disk at <p> if absolute, else $FLAME_HOME/<p>; anything
// else → disk at that path verbatim (relative to the working directory).
// `s3://<bucket>/...` → the S3 engine (storage/s3_storage.h), the URI passed on whole.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "storage/storage_engine.h"

namespace foc {

struct StorageLocation {
  bool memory_only = true;  ///< `none`
  std::string path;         ///< disk root when !memory_only and s3_uri is empty
  std::string s3_uri;       ///< the whole s3:// URI for S3 storage
};

/// Resolves a storage URL. `flame_home` is $FLAME_HOME (default /var/lib/flame).
arrow::Result<StorageLocation> ParseStorageUrl(std::string_view url,
                                               std::string_view flame_home);

/// Opens the engine a storage URL names. `capacity_bytes` (0 = unlimited) limits the disk
/// or S3 store. `none` opens no engine: the result is a null pointer, and a store given
/// it keeps objects in its memory tier only (ObjectStore::Open).
arrow::Result<std::unique_ptr<StorageEngine>> OpenStorage(std::string_view url,
                                                          std::string_view flame_home,
                                                          int64_t capacity_bytes);

}  // namespace foc
