#include "flight/upload_limits.h"

#include <algorithm>
#include <unordered_set>
#include <vector>

#include <arrow/array/data.h>
#include <arrow/device.h>
#include <arrow/memory_pool.h>

namespace foc {
namespace {

const arrow::Buffer* Root(const arrow::Buffer* b) {
  while (b->parent()) b = b->parent().get();
  return b;
}

bool Wasteful(int64_t retained, int64_t used) {
  return retained - used > kRetainSlack && retained - used > used / 16;
}

}  // namespace

int64_t RetainedBytes(const std::shared_ptr<arrow::Buffer>& buffer) {
  if (!buffer) return 0;
  const arrow::Buffer* root = Root(buffer.get());
  return std::max({root->size(), root->capacity(), buffer->size()});
}

arrow::Result<std::shared_ptr<arrow::Buffer>> CompactCell(
    std::shared_ptr<arrow::Buffer> cell) {
  if (!cell || !Wasteful(RetainedBytes(cell), cell->size())) return cell;
  ARROW_ASSIGN_OR_RAISE(auto copy, arrow::AllocateBuffer(cell->size()));
  if (cell->size() > 0) std::memcpy(copy->mutable_data(), cell->data(), cell->size());
  return std::shared_ptr<arrow::Buffer>(std::move(copy));
}

namespace {

void VisitBuffers(const arrow::RecordBatch& batch, int64_t* used,
                  std::unordered_set<const arrow::Buffer*>* roots, int64_t* retained) {
  std::vector<const arrow::ArrayData*> stack;
  for (const auto& column : batch.column_data()) stack.push_back(column.get());
  while (!stack.empty()) {
    const arrow::ArrayData* d = stack.back();
    stack.pop_back();
    for (const auto& b : d->buffers) {
      if (!b) continue;
      *used += b->size();
      const arrow::Buffer* root = Root(b.get());
      if (roots->insert(root).second) {
        *retained += std::max({root->size(), root->capacity(), b->size()});
      }
    }
    for (const auto& c : d->child_data) stack.push_back(c.get());
    if (d->dictionary) stack.push_back(d->dictionary.get());
  }
}

}  // namespace

int64_t RetainedBytes(const arrow::RecordBatch& batch) {
  int64_t used = 0, retained = 0;
  std::unordered_set<const arrow::Buffer*> roots;
  VisitBuffers(batch, &used, &roots, &retained);
  return retained;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> CompactBatch(
    std::shared_ptr<arrow::RecordBatch> batch) {
  int64_t used = 0, retained = 0;
  std::unordered_set<const arrow::Buffer*> roots;
  VisitBuffers(*batch, &used, &roots, &retained);
  if (!Wasteful(retained, used)) return batch;
  // CopyTo copies every buffer (only the bytes each slice covers) into new memory.
  return batch->CopyTo(arrow::default_cpu_memory_manager());
}

UploadBudget::UploadBudget(int64_t limit_bytes) : limit_(limit_bytes) {}

UploadBudget::Reservation::Reservation(std::shared_ptr<UploadBudget> budget)
    : budget_(std::move(budget)) {}

UploadBudget::Reservation::~Reservation() {
  if (budget_ && bytes_ != 0) budget_->in_flight_ -= bytes_;
}

arrow::Status UploadBudget::Reservation::Resize(int64_t bytes) {
  if (!budget_) {
    if (bytes > bytes_) admitted_ += bytes - bytes_;
    bytes_ = bytes;
    return arrow::Status::OK();
  }
  const int64_t delta = bytes - bytes_;
  const int64_t total = budget_->in_flight_ += delta;
  if (delta > 0 && budget_->limit_ > 0 && total > budget_->limit_) {
    budget_->in_flight_ -= delta;
    budget_->refused_++;
    return arrow::Status::CapacityError(
        "uploads in flight would hold ", total, " bytes, more than the limit of ",
        budget_->limit_,
        " bytes (cache.limits.upload_memory); nothing was stored, retry later");
  }
  if (delta > 0) admitted_ += delta;
  bytes_ = bytes;
  int64_t peak = budget_->peak_.load();
  while (total > peak && !budget_->peak_.compare_exchange_weak(peak, total)) {
  }
  return arrow::Status::OK();
}

void UploadBudget::Render(std::string* out) const {
  *out += "# HELP foc_upload_bytes_in_flight Bytes held by uploads being received.\n";
  *out += "# TYPE foc_upload_bytes_in_flight gauge\n";
  *out += "foc_upload_bytes_in_flight " + std::to_string(in_flight()) + "\n";
  *out +=
      "# HELP foc_upload_memory_limit_bytes Limit on foc_upload_bytes_in_flight "
      "(0 = none).\n";
  *out += "# TYPE foc_upload_memory_limit_bytes gauge\n";
  *out += "foc_upload_memory_limit_bytes " + std::to_string(limit_) + "\n";
  *out += "# HELP foc_upload_refused_total Uploads refused while arriving for memory.\n";
  *out += "# TYPE foc_upload_refused_total counter\n";
  *out += "foc_upload_refused_total " + std::to_string(refused()) + "\n";
}

}  // namespace foc
