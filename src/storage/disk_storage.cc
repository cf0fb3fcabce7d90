#include "storage/disk_storage.h"

namespace foc {

// Placeholder until the disk engine lands (issue 4).
arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(DiskStorageOptions options) {
  return arrow::Status::NotImplemented("disk storage at ", options.root, " is not built yet");
}

}  // namespace foc
