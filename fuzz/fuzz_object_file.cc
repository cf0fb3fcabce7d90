// The object-file reader (src/storage/object_file.h) on arbitrary bytes: what a damaged
// disk, or anyone with write access to the storage directory, can put there. It must
// return an error or an object, never crash, and an object it returns must be consistent
// with the header the startup scan reads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include <arrow/buffer.h>
#include <arrow/io/memory.h>

#include "storage/object_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto buffer = std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size));
  auto file = [&] { return std::make_shared<arrow::io::BufferReader>(buffer); };
  auto base = foc::ReadBaseFile(file());
  (void)foc::ReadDeltaFile(file());
  (void)foc::ReadFileSchema(file());
  auto header = foc::ReadFileHeader(file(), /*verify_checksum=*/true);
  if (base.ok() && header.ok() && (*base)->is_native() != header->native) std::abort();
  return 0;
}
