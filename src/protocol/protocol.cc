#include "protocol/protocol.h"

#include <cstring>
#include <limits>
#include <optional>

#include <bson/bson.h>

#include <arrow/array.h>
#include <arrow/type.h>
#include <arrow/util/key_value_metadata.h>

#include "object/object.h"

namespace foc {

std::shared_ptr<arrow::Schema> UploadSchema() {
  static const auto schema = arrow::schema(
      {arrow::field("version", arrow::uint64()), arrow::field("data", arrow::binary())});
  return schema;
}

std::shared_ptr<arrow::Schema> ResponseSchema(std::string_view epoch) {
  arrow::FieldVector fields{arrow::field("version", arrow::uint64(), /*nullable=*/false),
                            arrow::field("kind", arrow::utf8(), false),
                            arrow::field("data", arrow::binary(), false)};
  if (epoch.empty()) return arrow::schema(std::move(fields));
  return arrow::schema(std::move(fields), arrow::key_value_metadata(
                                              {kEpochMetadataKey}, {std::string(epoch)}));
}

namespace {

// The one builder of a one-row opaque batch, for both directions: `version`, then `kind`
// when `kind` is given (the reply schema), then `data`, under `schema`. The payload
// buffer itself goes into the batch (no copy): a reply shares the cached object's
// memory, an upload the caller's buffer. CapacityError beyond the `binary` column's
// 2 GiB.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> OneRow(
    const std::shared_ptr<arrow::Schema>& schema, uint64_t version,
    std::optional<std::string_view> kind, const std::shared_ptr<arrow::Buffer>& data) {
  const int64_t size = data ? data->size() : 0;
  if (size > std::numeric_limits<int32_t>::max()) {
    return arrow::Status::CapacityError("payload of ", size,
                                        " bytes exceeds the binary column limit (2 GiB)");
  }
  ARROW_ASSIGN_OR_RAISE(auto version_buf, arrow::AllocateBuffer(sizeof(uint64_t)));
  std::memcpy(version_buf->mutable_data(), &version, sizeof(version));
  arrow::ArrayVector columns{
      std::make_shared<arrow::UInt64Array>(1, std::move(version_buf))};
  if (kind) {
    ARROW_ASSIGN_OR_RAISE(auto kind_offsets, arrow::AllocateBuffer(2 * sizeof(int32_t)));
    const int32_t ko[2] = {0, static_cast<int32_t>(kind->size())};
    std::memcpy(kind_offsets->mutable_data(), ko, sizeof(ko));
    columns.push_back(std::make_shared<arrow::StringArray>(
        1, std::move(kind_offsets), arrow::Buffer::FromString(std::string(*kind))));
  }
  ARROW_ASSIGN_OR_RAISE(auto data_offsets, arrow::AllocateBuffer(2 * sizeof(int32_t)));
  const int32_t dof[2] = {0, static_cast<int32_t>(size)};
  std::memcpy(data_offsets->mutable_data(), dof, sizeof(dof));
  columns.push_back(std::make_shared<arrow::BinaryArray>(
      1, std::move(data_offsets),
      data ? data : std::make_shared<arrow::Buffer>(nullptr, 0)));
  return arrow::RecordBatch::Make(schema, 1, std::move(columns));
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ReplyRow(
    const std::shared_ptr<arrow::Schema>& schema, uint64_t version, std::string_view kind,
    const std::shared_ptr<arrow::Buffer>& data) {
  return OneRow(schema, version, kind, data);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> UploadRow(
    const std::shared_ptr<arrow::Buffer>& data) {
  // The client leaves `version` 0: the server assigns versions.
  return OneRow(UploadSchema(), 0, std::nullopt, data);
}

std::string JoinDescriptorPath(const std::vector<std::string>& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) out.push_back('/');
    out += path[i];
  }
  return out;
}

std::shared_ptr<arrow::Buffer> BinaryCell(const arrow::Array& array, int64_t i) {
  if (array.type_id() == arrow::Type::LARGE_BINARY) {
    const auto& bin = static_cast<const arrow::LargeBinaryArray&>(array);
    return arrow::SliceBuffer(bin.value_data(), bin.value_offset(i), bin.value_length(i));
  }
  const auto& bin = static_cast<const arrow::BinaryArray&>(array);
  return arrow::SliceBuffer(bin.value_data(), bin.value_offset(i), bin.value_length(i));
}

arrow::Result<std::shared_ptr<arrow::Buffer>> EncodePutResult(const PutResultDoc& doc) {
  bson_t b;
  bson_init(&b);
  const bool ok =
      bson_append_utf8(&b, "endpoint", -1, doc.endpoint.data(),
                       static_cast<int>(doc.endpoint.size())) &&
      bson_append_utf8(&b, "key", -1, doc.key.data(), static_cast<int>(doc.key.size())) &&
      bson_append_int64(&b, "version", -1, doc.version) &&
      (doc.epoch.empty() || bson_append_utf8(&b, "epoch", -1, doc.epoch.data(),
                                             static_cast<int>(doc.epoch.size())));
  if (!ok) {
    bson_destroy(&b);
    return arrow::Status::Invalid("PutResult does not fit in a BSON document");
  }
  auto out = arrow::Buffer::FromString(
      std::string(reinterpret_cast<const char*>(bson_get_data(&b)), b.len));
  bson_destroy(&b);
  return out;
}

arrow::Result<PutResultDoc> DecodePutResult(std::string_view data) {
  bson_t b;
  if (!bson_init_static(&b, reinterpret_cast<const uint8_t*>(data.data()), data.size()) ||
      !bson_validate(&b, BSON_VALIDATE_NONE, nullptr)) {
    return arrow::Status::Invalid("PutResult is not a valid BSON document");
  }
  PutResultDoc doc;
  bool has_endpoint = false, has_key = false;
  bson_iter_t it;
  if (!bson_iter_init(&it, &b)) return arrow::Status::Invalid("PutResult: bad BSON");
  while (bson_iter_next(&it)) {
    const std::string_view name = bson_iter_key(&it);
    uint32_t len = 0;
    if (name == "endpoint" && BSON_ITER_HOLDS_UTF8(&it)) {
      const char* s = bson_iter_utf8(&it, &len);
      doc.endpoint.assign(s, len);
      has_endpoint = true;
    } else if (name == "key" && BSON_ITER_HOLDS_UTF8(&it)) {
      const char* s = bson_iter_utf8(&it, &len);
      doc.key.assign(s, len);
      has_key = true;
    } else if (name == "version" && BSON_ITER_HOLDS_INT64(&it)) {
      doc.version = bson_iter_int64(&it);
    } else if (name == "version" && BSON_ITER_HOLDS_INT32(&it)) {
      doc.version = bson_iter_int32(&it);
    } else if (name == "epoch" && BSON_ITER_HOLDS_UTF8(&it)) {
      const char* s = bson_iter_utf8(&it, &len);
      doc.epoch.assign(s, len);
    }
  }
  if (!has_endpoint || !has_key) {
    return arrow::Status::Invalid("PutResult lacks ", has_endpoint ? "key" : "endpoint");
  }
  return doc;
}

}  // namespace foc
