// Upload batch validation: an Arrow IPC stream (schema + record batches, what a DoPut
// carries) decoded and checked the way flight_service.cc's NextBatch does (realign, then
// ValidateFull), then every `data` cell sliced with protocol's BinaryCell. Offsets and
// lengths come from the client; nothing may read outside the received buffers.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/util/align_util.h>

#include "protocol/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto buffer = std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size));
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(
      std::make_shared<arrow::io::BufferReader>(buffer));
  if (!reader.ok()) return 0;
  const auto schema = (*reader)->schema();
  for (int n = 0; n < 64; ++n) {
    std::shared_ptr<arrow::RecordBatch> batch;
    if (!(*reader)->ReadNext(&batch).ok() || !batch) break;
    auto aligned = arrow::util::EnsureAlignment(batch, arrow::util::kValueAlignment,
                                                arrow::default_memory_pool());
    if (!aligned.ok() || !(*aligned)->ValidateFull().ok()) continue;
    for (int c = 0; c < (*aligned)->num_columns(); ++c) {
      const auto& column = *(*aligned)->column(c);
      const auto id = column.type_id();
      if (id != arrow::Type::BINARY && id != arrow::Type::LARGE_BINARY) continue;
      for (int64_t i = 0; i < column.length(); ++i) {
        if (column.IsNull(i)) continue;
        auto cell = foc::BinaryCell(column, i);
        if (cell && cell->size() > 0) {
          volatile uint8_t sink = cell->data()[cell->size() - 1];
          (void)sink;
        }
      }
    }
  }
  return 0;
}
