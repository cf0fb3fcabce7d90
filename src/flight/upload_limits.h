// What an upload may hold in memory while it arrives (docs/security.md, "Resource
// limits"): every retained byte is charged at its real size, and uploads are admitted
// batch by batch against two limits:
//
//   * per upload: the largest payload the store could keep (memory-only storage: the
//     memory limit; always: 2 GiB - 1, the `binary` reply column's limit);
//   * across uploads: an UploadBudget of bytes in flight (`cache.limits.upload_memory`),
//     shared by all concurrent DoPuts, with disk storage too.
//
// An upload that crosses either limit is refused at the batch that crossed it, not after
// it has been buffered whole.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace foc {

/// Bytes that an upload may hold beyond its payload before a retained slice is copied
/// out of the received message (see CompactCell).
inline constexpr int64_t kRetainSlack = int64_t{64} * 1024;

/// The size of the allocation `buffer` keeps alive: the size of the outermost parent of
/// a chain of slices (a cell sliced from a received gRPC message keeps the whole
/// message).
int64_t RetainedBytes(const std::shared_ptr<arrow::Buffer>& buffer);

/// `cell` itself when it retains at most its own size plus kRetainSlack (or 1/16 more),
/// else a copy of its bytes, so that a 1-byte cell never pins a 50 MiB message.
arrow::Result<std::shared_ptr<arrow::Buffer>> CompactCell(
    std::shared_ptr<arrow::Buffer> cell);

/// The bytes `batch` keeps alive: the outermost allocations of all its buffers, each
/// counted once.
int64_t RetainedBytes(const arrow::RecordBatch& batch);

/// `batch` itself when what it retains is close to the size of its buffers, else a deep
/// copy holding only the bytes the batch references.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> CompactBatch(
    std::shared_ptr<arrow::RecordBatch> batch);

/// A limit on the bytes held by all uploads in flight. Thread-safe.
class UploadBudget {
 public:
  /// `limit_bytes` 0 = unlimited.
  explicit UploadBudget(int64_t limit_bytes);

  /// One upload's share; released when destroyed.
  class Reservation {
   public:
    explicit Reservation(std::shared_ptr<UploadBudget> budget);
    ~Reservation();
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    /// Sets this upload's holding to `bytes`. CapacityError (nothing changed) when the
    /// total across uploads would exceed the limit.
    arrow::Status Resize(int64_t bytes);
    int64_t bytes() const { return bytes_; }
    /// The sum of this upload's increases: about the bytes it received, also when each
    /// batch was released (spooled) before the next arrived.
    int64_t admitted() const { return admitted_; }

   private:
    std::shared_ptr<UploadBudget> budget_;
    int64_t bytes_ = 0;
    int64_t admitted_ = 0;
  };

  int64_t limit() const { return limit_; }
  int64_t in_flight() const { return in_flight_.load(); }
  int64_t peak() const { return peak_.load(); }
  int64_t refused() const { return refused_.load(); }
  /// Counts an upload refused by a per-upload limit (also in refused()).
  void CountRefusal() { refused_++; }

  /// Prometheus text: foc_upload_bytes_in_flight, foc_upload_memory_limit_bytes,
  /// foc_upload_refused_total.
  void Render(std::string* out) const;

 private:
  const int64_t limit_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> refused_{0};
};

}  // namespace foc
