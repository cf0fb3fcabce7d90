// Wire-format pieces of the flame-object-cache protocol shared by the server
// (src/flight/) and the C++ client (src/client/): schemas, descriptors' command prefix,
// the BSON PutResult. Pure functions, no I/O. The protocol itself is specified in
// docs/protocol.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace foc {

/// DoPut command descriptor prefix that appends a delta:
/// `PATCH:<app>/<session>/<object>`.
inline constexpr std::string_view kPatchCommandPrefix = "PATCH:";
/// DoAction type that deletes by key pattern (upstream's only action).
inline constexpr std::string_view kDeleteAction = "DELETE";
/// DoAction type: the advertised endpoints of the cluster's live servers (one Result
/// each, UTF-8; a single server answers with itself). docs/protocol.md, "MEMBERS".
inline constexpr std::string_view kMembersAction = "MEMBERS";
/// DoAction type that returns the server's status as one JSON document (our addition;
/// docs/protocol.md).
inline constexpr std::string_view kInfoAction = "INFO";
/// One action ListActions lists.
struct ListedAction {
  std::string_view type;
  std::string_view description;
};
/// What ListActions answers, in this order: DELETE (upstream's only action), then ours.
/// MAP and WATCH (same-machine and streaming extensions) are not listed. The tests
/// compare against this list (Python: LISTED_ACTIONS in tests/python/conftest.py).
inline constexpr ListedAction kListedActions[] = {
    {kDeleteAction, "Delete objects by key prefix"},
    {kMembersAction, "Endpoints of the cluster's live servers, one result each"},
    {kInfoAction,
     "Server status as JSON: objects, memory and disk use vs limits, hit ratio, "
     "evictions, requests, uptime, version"},
};
/// Response column values of `kind`.
inline constexpr std::string_view kKindBase = "base";
inline constexpr std::string_view kKindPatch = "patch";

/// Upload schema of opaque objects and deltas: `version: uint64, data: binary`.
std::shared_ptr<arrow::Schema> UploadSchema();

/// DoGet response schema for opaque objects: `version: uint64, kind: utf8, data: binary`
/// (non-nullable, as upstream), with `flame.cache.epoch` metadata when `epoch` is not
/// empty.
std::shared_ptr<arrow::Schema> ResponseSchema(std::string_view epoch = {});

/// One row of a DoGet reply for opaque objects: `version`, `kind` (kKindBase or
/// kKindPatch) and `data`, under `schema` (ResponseSchema). The payload buffer is shared,
/// not copied. CapacityError beyond the `binary` column's 2 GiB. The bytes of each reply
/// shape are pinned by the golden samples in tests/wire/.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> ReplyRow(
    const std::shared_ptr<arrow::Schema>& schema, uint64_t version, std::string_view kind,
    const std::shared_ptr<arrow::Buffer>& data);

/// One row of an upload (DoPut of an opaque object or delta) around `data`, under
/// UploadSchema(), `version` 0 (the server assigns versions). Built by the same function
/// as ReplyRow: the payload buffer is shared, not copied; CapacityError beyond the
/// `binary` column's 2 GiB.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> UploadRow(
    const std::shared_ptr<arrow::Buffer>& data);

/// Descriptor path elements joined with '/': pyarrow sends one element "a/s/o", a client
/// sending ["a", "s", "o"] means the same key.
std::string JoinDescriptorPath(const std::vector<std::string>& path);

/// Cell `i` of a `binary` or `large_binary` array (the caller has checked the type),
/// sliced from the array's data without copying.
std::shared_ptr<arrow::Buffer> BinaryCell(const arrow::Array& array, int64_t i);

/// The reference to a stored object that each DoPut answers with (PutResult
/// app_metadata).
struct PutResultDoc {
  std::string endpoint;
  std::string key;
  int64_t version = 0;
  std::string epoch;  ///< our addition; flamepy ignores unknown fields
};

/// BSON `{endpoint: string, key: string, version: int64, epoch: string}`, field order as
/// upstream (epoch last, omitted when empty).
arrow::Result<std::shared_ptr<arrow::Buffer>> EncodePutResult(const PutResultDoc& doc);
/// Decodes a PutResult; `version` may be int64 or int32; `epoch` is optional.
arrow::Result<PutResultDoc> DecodePutResult(std::string_view data);

}  // namespace foc
