#include "object/object.h"

#include <charconv>

#include <arrow/array/data.h>
#include <arrow/util/key_value_metadata.h>

namespace foc {
namespace {

// Fixed per-object and per-delta bookkeeping added to memory charges, so that an object
// of many tiny deltas is not charged as almost free.
constexpr int64_t kObjectOverhead = 256;
constexpr int64_t kDeltaOverhead = 64;

int64_t BufferCapacity(const std::shared_ptr<arrow::Buffer>& b) {
  return b ? std::max(b->capacity(), b->size()) : 0;
}

int64_t BatchBytes(const arrow::RecordBatch& batch) {
  int64_t total = 0;
  for (const auto& column : batch.column_data()) {
    std::vector<const arrow::ArrayData*> stack{column.get()};
    while (!stack.empty()) {
      const arrow::ArrayData* d = stack.back();
      stack.pop_back();
      for (const auto& b : d->buffers) total += b ? b->size() : 0;
      for (const auto& c : d->child_data) stack.push_back(c.get());
      if (d->dictionary) stack.push_back(d->dictionary.get());
    }
  }
  return total;
}

}  // namespace

bool IsNativeTableSchema(const arrow::Schema& schema) {
  const auto& md = schema.metadata();
  if (!md) return false;
  const int i = md->FindKey(kFormatMetadataKey);
  return i >= 0 && md->value(i) == kNativeTableFormat;
}

uint64_t NativeSchemaVersion(const arrow::Schema& schema) {
  const auto& md = schema.metadata();
  if (!md) return 0;
  const int i = md->FindKey(kVersionMetadataKey);
  if (i < 0) return 0;
  const std::string& s = md->value(i);
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return (ec == std::errc() && ptr == s.data() + s.size()) ? v : 0;
}

std::shared_ptr<arrow::Schema> WithNativeVersion(
    const std::shared_ptr<arrow::Schema>& schema, uint64_t version) {
  auto md = schema->metadata() ? schema->metadata()->Copy()
                               : std::make_shared<arrow::KeyValueMetadata>();
  // Absent is fine. (Not Status::Warn(): it prints even an OK status, which was the stray
  // "status.cc:179: OK" line on every native-table put.)
  if (const int i = md->FindKey(kVersionMetadataKey); i >= 0) {
    static_cast<void>(md->Delete(i));  // an existing index: cannot fail
  }
  md->Append(kVersionMetadataKey, std::to_string(version));
  return schema->WithMetadata(md);
}

Object::Ptr Object::MakeOpaque(uint64_t version, std::shared_ptr<arrow::Buffer> data) {
  auto obj = std::shared_ptr<Object>(new Object());
  obj->base_version_ = version;
  obj->data_ = data ? std::move(data) : std::make_shared<arrow::Buffer>(nullptr, 0);
  obj->ComputeSizes();
  return obj;
}

Object::Ptr Object::MakeNative(uint64_t version, NativeTable table) {
  auto obj = std::shared_ptr<Object>(new Object());
  obj->base_version_ = version;
  table.schema = WithNativeVersion(table.schema, version);
  obj->native_ = std::make_shared<const NativeTable>(std::move(table));
  obj->ComputeSizes();
  return obj;
}

arrow::Result<Object::Ptr> Object::Make(const Ptr& base, std::vector<Delta> deltas) {
  uint64_t previous = base->base_version_;
  for (const auto& d : deltas) {
    if (d.version <= previous) {
      return arrow::Status::Invalid(
          "Patch versions must be strictly increasing after base version ",
          base->base_version_, "; found ", d.version, " after ", previous);
    }
    previous = d.version;
  }
  // NOLINTNEXTLINE(modernize-make-shared): the copy constructor is private.
  auto obj = std::shared_ptr<Object>(new Object(*base));
  obj->deltas_ = std::move(deltas);
  obj->ComputeSizes();
  return obj;
}

arrow::Result<Object::Ptr> Object::WithDelta(Delta delta) const {
  if (delta.version <= version()) {
    return arrow::Status::Invalid("delta version ", delta.version,
                                  " is not above the object's version ", version());
  }
  // NOLINTNEXTLINE(modernize-make-shared): the copy constructor is private.
  auto obj = std::shared_ptr<Object>(new Object(*this));
  obj->payload_bytes_ += delta.data ? delta.data->size() : 0;
  obj->memory_charge_ += BufferCapacity(delta.data) + kDeltaOverhead;
  obj->deltas_.push_back(std::move(delta));
  return obj;
}

void Object::ComputeSizes() {
  int64_t payload = 0;
  int64_t charge = kObjectOverhead;
  if (native_) {
    for (const auto& batch : native_->batches) {
      const int64_t n = BatchBytes(*batch);
      payload += n;
      charge += n;
    }
  } else {
    payload += data_->size();
    charge += BufferCapacity(data_);
  }
  for (const auto& d : deltas_) {
    payload += d.data ? d.data->size() : 0;
    charge += BufferCapacity(d.data) + kDeltaOverhead;
  }
  payload_bytes_ = payload;
  memory_charge_ = charge;
}

GetPlan PlanGet(const Object& object, uint64_t client_version) {
  const uint64_t current = object.version();
  if (client_version != 0 && client_version == current)
    return {GetReplyKind::kNotModified};
  if (object.is_native()) return {GetReplyKind::kNative};
  if (client_version != 0 && client_version < current &&
      object.base_version() <= client_version) {
    // Deltas are strictly increasing; patch-only requires exactly C+1..S with no gap.
    const auto& deltas = object.deltas();
    size_t first = 0;
    while (first < deltas.size() && deltas[first].version <= client_version) ++first;
    const size_t needed = deltas.size() - first;
    if (needed == current - client_version &&
        deltas[first].version == client_version + 1) {
      return {GetReplyKind::kPatches, first};
    }
  }
  return {GetReplyKind::kFull};
}

}  // namespace foc
