// The disk storage engine: upstream's layout and Arrow IPC file format, crash-safe
// writes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/status.h>

#include "storage/storage_engine.h"

namespace foc {

struct DiskStorageOptions {
  std::string root;            ///< created if missing
  int64_t capacity_bytes = 0;  ///< 0 = unlimited
  /// Test hook called between the steps of every write ("put:tmp-written", ...); a non-OK
  /// status aborts the write right there, as a crash would.
  std::function<arrow::Status(std::string_view step)> fault_hook;
};

arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(DiskStorageOptions options);

}  // namespace foc
