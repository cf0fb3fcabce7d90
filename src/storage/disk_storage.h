// The disk storage engine: upstream's layout and Arrow IPC file format, crash-safe
// writes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "storage/storage_engine.h"

namespace foc {

class DirSyncer;

struct DiskStorageOptions {
  std::string root;            ///< created if missing
  int64_t capacity_bytes = 0;  ///< 0 = unlimited
  /// Test hook called between the steps of every write ("put:tmp-written", ...); a non-OK
  /// status aborts the write right there, as a crash would.
  std::function<arrow::Status(std::string_view step)> fault_hook;
  /// Take the exclusive lock on the directory (storage/storage_dir.h). False only in
  /// tests that open a second engine on one directory to play a restarted or a foreign
  /// process.
  bool lock_directory = true;
};

arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(DiskStorageOptions options);

/// OpenDiskStorage with the given group commit of directory fsyncs
/// (storage/durable_file.h) instead of an engine's own: tests pass one with a counting or
/// gated fsync.
arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(
    DiskStorageOptions options, std::shared_ptr<DirSyncer> dir_syncer);

/// The compaction of the version-floor log at startup: drops floors made redundant by a
/// wider floor with at least their version (`a/*` over `a/s` and `a/s/o`, `a/s` over
/// `a/s/o`) and replaces the floors of an app that has more than 256 of them by one
/// `app/*` floor at their maximum (raising floors is always safe). Order is kept.
std::vector<VersionFloor> CompactFloors(std::vector<VersionFloor> floors);

}  // namespace foc
