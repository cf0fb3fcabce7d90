// Objects: a base (opaque bytes or a native Arrow table) plus ordered deltas, each with a
// server-assigned version; and the get-decision table that picks what a DoGet returns.
//
// Objects are immutable values shared through std::shared_ptr<const Object>. A PATCH
// makes a new Object that shares every buffer of the old one and adds one delta, so the
// memory cache, in-flight responses and the storage engine all point at the same Arrow
// buffers: the read path never copies payload bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type.h>

#include "protocol/metadata_keys.h"  // the flame.cache.* keys of native tables

namespace foc {

/// One delta (patch) of an object: opaque bytes at a version above the base's.
struct Delta {
  uint64_t version = 0;
  std::shared_ptr<arrow::Buffer> data;
};

/// A native Arrow table base: its schema (with all metadata) and batches exactly as
/// uploaded.
struct NativeTable {
  std::shared_ptr<arrow::Schema> schema;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
};

/// True when `schema` carries `flame.cache.format=arrow-table-v1`.
bool IsNativeTableSchema(const arrow::Schema& schema);

/// The version recorded in a native schema's `flame.cache.version` (0 if
/// absent/unparsable).
uint64_t NativeSchemaVersion(const arrow::Schema& schema);

/// `schema` with `flame.cache.version` set to `version` (other metadata kept).
std::shared_ptr<arrow::Schema> WithNativeVersion(
    const std::shared_ptr<arrow::Schema>& schema, uint64_t version);

/// An immutable object value.
class Object {
 public:
  using Ptr = std::shared_ptr<const Object>;

  /// An opaque object (no deltas) at `version`.
  static Ptr MakeOpaque(uint64_t version, std::shared_ptr<arrow::Buffer> data);
  /// A native-table object (no deltas) at `version`; the schema's `flame.cache.version`
  /// metadata is set to `version`.
  static Ptr MakeNative(uint64_t version, NativeTable table);
  /// An object with deltas, as read back from storage. Fails unless delta versions
  /// strictly increase above the base version.
  static arrow::Result<Ptr> Make(const Ptr& base, std::vector<Delta> deltas);

  /// A new object sharing every buffer of this one, plus `delta` (version must be >
  /// version()).
  arrow::Result<Ptr> WithDelta(Delta delta) const;

  bool is_native() const { return native_ != nullptr; }
  uint64_t base_version() const { return base_version_; }
  /// Current version: the highest of the base and delta versions.
  uint64_t version() const {
    return deltas_.empty() ? base_version_ : deltas_.back().version;
  }
  /// Opaque payload (null for native objects).
  const std::shared_ptr<arrow::Buffer>& data() const { return data_; }
  /// Native table (null for opaque objects).
  const std::shared_ptr<const NativeTable>& table() const { return native_; }
  const std::vector<Delta>& deltas() const { return deltas_; }

  /// Payload bytes: opaque base length (or the native batches' buffer sizes) plus deltas.
  int64_t payload_bytes() const { return payload_bytes_; }
  /// What holding this object in memory costs, for the memory cache: payload buffers'
  /// capacities plus bookkeeping.
  int64_t memory_charge() const { return memory_charge_; }

 private:
  Object() = default;
  void ComputeSizes();

  uint64_t base_version_ = 0;
  std::shared_ptr<arrow::Buffer> data_;
  std::shared_ptr<const NativeTable> native_;
  std::vector<Delta> deltas_;
  int64_t payload_bytes_ = 0;
  int64_t memory_charge_ = 0;
};

/// What a DoGet answers (upstream-server.md §4.2, evaluated top to bottom).
enum class GetReplyKind {
  kNotModified,  ///< client version == current: schema only, zero rows
  kPatches,      ///< only the deltas after the client's version
  kFull,         ///< base row then every delta
  kNative,       ///< the native table's schema and batches
};

struct GetPlan {
  GetReplyKind kind;
  /// For kPatches: index into deltas() of the first delta to send.
  size_t first_delta = 0;
};

/// The get-decision table. `client_version` 0 means "send everything".
GetPlan PlanGet(const Object& object, uint64_t client_version);

}  // namespace foc
