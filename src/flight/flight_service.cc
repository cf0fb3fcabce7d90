#include "flight/flight_service.h"

#include <malloc.h>

#include <algorithm>
#include <limits>

#include <arrow/array.h>
#include <arrow/buffer_builder.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/align_util.h>
#include <arrow/util/key_value_metadata.h>
#include <spdlog/spdlog.h>

#include "flight/auth.h"
#include "flight/call_guard.h"
#include "flight/map.h"
#include "flight/status.h"
#include "flight/upload_limits.h"
#include "flight/watch.h"
#include "key/key.h"
#include "protocol/protocol.h"
#include "store/change_feed.h"
#include "store/store.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

// Locates the opaque upload columns: by name (`version`, `data`) when present, else by
// position 0/1 as upstream; `data` may be binary or large_binary.
arrow::Result<int> OpaqueDataColumn(const arrow::Schema& schema) {
  int data = schema.GetFieldIndex("data");
  int version = schema.GetFieldIndex("version");
  if (data < 0 || version < 0) {
    if (schema.num_fields() < 2) {
      return arrow::Status::Invalid(
          "upload schema must have columns 'version: uint64' and 'data: binary'; got ",
          schema.ToString(/*truncate_metadata=*/true));
    }
    version = 0;
    data = 1;
  }
  const auto& vt = schema.field(version)->type();
  const auto& dt = schema.field(data)->type();
  if (vt->id() != arrow::Type::UINT64) {
    return arrow::Status::Invalid("upload column '", schema.field(version)->name(),
                                  "' must be uint64, got ", vt->ToString());
  }
  if (dt->id() != arrow::Type::BINARY && dt->id() != arrow::Type::LARGE_BINARY) {
    return arrow::Status::Invalid("upload column '", schema.field(data)->name(),
                                  "' must be binary or large_binary, got ",
                                  dt->ToString());
  }
  return data;
}

// A stream the IPC reader cannot decode is the client's mistake (INVALID_ARGUMENT), never
// INTERNAL/UNKNOWN; cancellation and limits keep their codes.
arrow::Status MalformedStream(const arrow::Status& st) {
  if (st.IsCancelled() || st.IsCapacityError() || st.IsInvalid()) return st;
  return arrow::Status::Invalid("malformed upload stream: ", st.message());
}

// Batches arrive zero-copy from gRPC slices, so a buffer may be misaligned for its type
// (an int32 offsets buffer at an odd address). Realign only such buffers (offsets, never
// the payload bytes, whose type needs no alignment) before anything reads them. The IPC
// reader checks buffer sizes only, not their contents: offsets (and dictionary indices)
// come from the client and could point outside the buffers they index, so every batch is
// fully validated before a cell is sliced or a table stored (for binary data this reads
// the offsets, not the payload).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextBatch(
    fl::FlightMessageReader* reader) {
  auto next = reader->Next();
  if (!next.ok()) return MalformedStream(next.status());
  auto chunk = *std::move(next);
  if (!chunk.data) return nullptr;
  ARROW_ASSIGN_OR_RAISE(
      auto batch,
      arrow::util::EnsureAlignment(std::move(chunk.data), arrow::util::kValueAlignment,
                                   arrow::default_memory_pool()));
  if (arrow::Status st = batch->ValidateFull(); !st.ok()) {
    return arrow::Status::Invalid("malformed upload batch: ", st.message());
  }
  return batch;
}

// Largest base or delta payload: what one cell of the `binary` response column can hold.
constexpr int64_t kMaxPayloadBytes = std::numeric_limits<int32_t>::max();
// An upload that received at least this much trims the allocator when it ends
// (DoPutImpl).
constexpr int64_t kTrimAfterBytes = int64_t{256} << 20;

// What one upload may hold while it arrives (flight/upload_limits.h).
struct UploadAdmission {
  int64_t max_payload_bytes;          // per upload: what the store could keep
  bool memory_limited;                // max_payload_bytes is the memory limit
  UploadBudget::Reservation* budget;  // across uploads
  CallRecord* call;                   // the call's guard record (may be null)
  std::string_view limit_name;        // what max_payload_bytes is, for messages
};

// Refuses an upload whose payload so far (`payload`) is already more than it may be, and
// charges what it holds (`held`) to the budget: checked after every batch, so a refused
// upload is never buffered whole.
arrow::Status Admit(const UploadAdmission& admission, int64_t payload, int64_t held) {
  if (payload > kMaxPayloadBytes) {
    // DoGet answers with a `binary` column (int32 offsets, as upstream and flamepy
    // expect), so a larger payload could be stored but never read back: refuse it up
    // front.
    return arrow::Status::Invalid("payload of at least ", payload,
                                  " bytes exceeds the limit of ", kMaxPayloadBytes,
                                  " bytes (2 GiB - 1) per base or delta");
  }
  if (admission.memory_limited && payload > admission.max_payload_bytes) {
    return arrow::Status::CapacityError(
        "upload of at least ", payload, " bytes exceeds ", admission.limit_name, " (",
        admission.max_payload_bytes, " bytes); nothing was stored");
  }
  return admission.budget->Resize(held);
}

// Uploads whose payload reaches this size are written to storage as they arrive (when
// the store spools: disk storage), instead of being concatenated in memory: an upload
// then holds one received batch at a time, whatever its size. Smaller ones keep the
// in-memory path, which leaves the new object resident in the memory tier for the GETs
// that usually follow (the cache's point for the many small objects flamepy moves);
// each holds at most this much plus one batch while it arrives (docs/storage.md, "Large
// uploads").
constexpr int64_t kSpoolThresholdBytes = int64_t{16} << 20;

// An opaque upload as read: in memory, or written to storage as it arrived.
struct OpaqueUpload {
  std::shared_ptr<arrow::Buffer> data;
  std::shared_ptr<UploadSpool> spooled;
};

// Reads an opaque upload: the `data` cells of every row of every batch, concatenated in
// order (chunked uploads). One row in one batch is taken without copying unless it is a
// small part of the received message (CompactCell), so what is kept is what is charged.
// With `spool_to` (a PUT to a store that spools), an upload whose payload reaches
// kSpoolThresholdBytes continues into a spool from there on: what was concatenated so
// far goes first, then each cell as it arrives.
arrow::Result<OpaqueUpload> ReadOpaque(fl::FlightMessageReader* reader,
                                       const arrow::Schema& schema,
                                       const UploadAdmission& admission,
                                       Store* spool_to) {
  ARROW_ASSIGN_OR_RAISE(const int column, OpaqueDataColumn(schema));
  std::shared_ptr<arrow::Buffer> single;  // the only non-empty cell so far, zero-copy
  arrow::BufferBuilder builder;           // used once there is more than one cell
  std::unique_ptr<UploadSpool> spool;     // once the payload reached the threshold
  int64_t cells = 0;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto batch, NextBatch(reader));
    if (admission.call) admission.call->Touch();
    if (!batch) break;
    const auto& array = batch->column(column);
    for (int64_t i = 0; i < array->length(); ++i) {
      if (array->IsNull(i)) continue;
      auto cell = BinaryCell(*array, i);  // OpaqueDataColumn checked the type
      if (cell->size() == 0) continue;
      if (spool) {
        // Only the received message is held: charged, written, dropped.
        ARROW_RETURN_NOT_OK(
            Admit(admission, spool->payload_bytes() + cell->size(), RetainedBytes(cell)));
        ARROW_RETURN_NOT_OK(spool->Append(*cell));
        ++cells;
        continue;
      }
      const int64_t payload = (cells == 0   ? 0
                               : cells == 1 ? single->size()
                                            : builder.length()) +
                              cell->size();
      if (spool_to != nullptr && payload >= kSpoolThresholdBytes) {
        auto begun = spool_to->BeginUpload();
        if (begun.ok()) {
          spool = *std::move(begun);
          ARROW_RETURN_NOT_OK(
              Admit(admission, payload,
                    RetainedBytes(single) + builder.capacity() + RetainedBytes(cell)));
          if (cells == 1) ARROW_RETURN_NOT_OK(spool->Append(*single));
          if (cells > 1) {
            ARROW_RETURN_NOT_OK(
                spool->Append(arrow::Buffer(builder.data(), builder.length())));
          }
          single.reset();
          builder.Reset();
          ARROW_RETURN_NOT_OK(spool->Append(*cell));
          ++cells;
          continue;
        }
        if (!begun.status().IsNotImplemented()) return begun.status();
        spool_to = nullptr;  // this store takes uploads whole
      }
      // Grow the concatenation ourselves (by half, not BufferBuilder's doubling) and
      // admit the growth before it happens: while the buffer moves, old and new are held.
      int64_t capacity = builder.capacity();
      if (cells >= 1 && payload > capacity) {
        capacity = std::min(std::max(payload, capacity + capacity / 2),
                            std::max(payload, admission.max_payload_bytes));
        // A store that spools never needs more than the threshold in memory.
        if (spool_to != nullptr) capacity = std::min(capacity, kSpoolThresholdBytes);
      }
      ARROW_RETURN_NOT_OK(Admit(
          admission, payload,
          RetainedBytes(single) + builder.capacity() + capacity + RetainedBytes(cell)));
      if (capacity > builder.capacity()) {
        ARROW_RETURN_NOT_OK(builder.Resize(capacity, /*shrink_to_fit=*/false));
      }
      if (cells == 0) {
        single = std::move(cell);
      } else {
        if (cells == 1) {
          ARROW_RETURN_NOT_OK(builder.Append(single->data(), single->size()));
          single.reset();
        }
        ARROW_RETURN_NOT_OK(builder.Append(cell->data(), cell->size()));
      }
      ++cells;
    }
    if (single) {
      ARROW_ASSIGN_OR_RAISE(single, CompactCell(std::move(single)));
    }
    // What stays held once this batch is dropped (nothing of a spooled upload).
    ARROW_RETURN_NOT_OK(
        admission.budget->Resize(RetainedBytes(single) + builder.capacity()));
  }
  if (spool) return OpaqueUpload{nullptr, std::move(spool)};
  if (cells == 0) {
    ARROW_ASSIGN_OR_RAISE(auto empty, arrow::AllocateBuffer(0));
    return OpaqueUpload{std::move(empty), nullptr};  // an empty object (e.g. a file)
  }
  if (cells == 1) return OpaqueUpload{std::move(single), nullptr};
  ARROW_ASSIGN_OR_RAISE(auto data, builder.Finish());
  return OpaqueUpload{std::move(data), nullptr};
}

arrow::Result<NativeTable> ReadNative(fl::FlightMessageReader* reader,
                                      std::shared_ptr<arrow::Schema> schema,
                                      const UploadAdmission& admission) {
  NativeTable table{std::move(schema), {}};
  int64_t held = 0;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto batch, NextBatch(reader));
    if (admission.call) admission.call->Touch();
    if (!batch) break;
    ARROW_RETURN_NOT_OK(Admit(admission, 0, held + RetainedBytes(*batch)));
    ARROW_ASSIGN_OR_RAISE(batch, CompactBatch(std::move(batch)));
    held += RetainedBytes(*batch);
    // A native table is charged by its buffers (Object), which is what it retains now.
    if (admission.memory_limited && held > admission.max_payload_bytes) {
      return arrow::Status::CapacityError("native table upload of at least ", held,
                                          " bytes exceeds ", admission.limit_name, " (",
                                          admission.max_payload_bytes,
                                          " bytes); nothing was stored");
    }
    ARROW_RETURN_NOT_OK(admission.budget->Resize(held));
    table.batches.push_back(std::move(batch));
  }
  return table;
}

// Streams a DoGet reply one batch at a time from the (pinned, immutable) object: nothing
// is materialised up front and no payload byte is copied.
class ReplyReader : public arrow::RecordBatchReader {
 public:
  // `response_schema`: the opaque reply schema (with the epoch); native tables get their
  // own schema with `epoch` added.
  ReplyReader(ReadResult read, std::shared_ptr<arrow::Schema> response_schema,
              const std::string& epoch, std::shared_ptr<CallRecord> call)
      : read_(std::move(read)),
        schema_(std::move(response_schema)),
        call_(std::move(call)) {
    const Object& obj = *read_.object;
    if (read_.plan.kind == GetReplyKind::kNative) {
      schema_ = obj.table()->schema;
      auto md = schema_->metadata() ? schema_->metadata()->Copy()
                                    : std::make_shared<arrow::KeyValueMetadata>();
      md->Append(kEpochMetadataKey, epoch);
      schema_ = schema_->WithMetadata(md);
    }
    switch (read_.plan.kind) {
      case GetReplyKind::kNotModified:
        next_ = end_ = 0;
        break;
      case GetReplyKind::kNative:
        next_ = 0;
        end_ = obj.table()->batches.size();
        break;
      case GetReplyKind::kFull:  // row 0 is the base, row i>0 is delta i-1
        next_ = 0;
        end_ = obj.deltas().size() + 1;
        break;
      case GetReplyKind::kPatches:
        next_ = read_.plan.first_delta + 1;
        end_ = obj.deltas().size() + 1;
        break;
    }
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    if (call_) call_->Touch();  // the previous batch has been handed to gRPC
    if (next_ >= end_) {
      *batch = nullptr;
      return arrow::Status::OK();
    }
    const Object& obj = *read_.object;
    const size_t i = next_++;
    if (read_.plan.kind == GetReplyKind::kNative) {
      *batch = obj.table()->batches[i];
      return arrow::Status::OK();
    }
    if (i == 0) {
      ARROW_ASSIGN_OR_RAISE(*batch,
                            ReplyRow(schema_, obj.base_version(), kKindBase, obj.data()));
    } else {
      const Delta& d = obj.deltas()[i - 1];
      ARROW_ASSIGN_OR_RAISE(*batch, ReplyRow(schema_, d.version, kKindPatch, d.data));
    }
    return arrow::Status::OK();
  }

 private:
  ReadResult read_;  // keeps the object pinned until the reply has been sent
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<CallRecord> call_;  // the stall watchdog's record of this DoGet
  size_t next_ = 0;
  size_t end_ = 0;
};

// The FlightData stream of an opaque reply: the same messages as Arrow's
// RecordBatchStream with default options (tests/wire's golden samples check the bytes),
// but the schema message is the one encoded once per epoch (ResponseSchemaNow), not
// encoded again for every call.
class OpaqueReplyStream : public fl::FlightDataStream {
 public:
  OpaqueReplyStream(std::shared_ptr<ReplyReader> reader,
                    std::shared_ptr<const arrow::ipc::IpcPayload> schema_payload)
      : reader_(std::move(reader)), schema_payload_(std::move(schema_payload)) {}

  std::shared_ptr<arrow::Schema> schema() override { return reader_->schema(); }

  arrow::Result<fl::FlightPayload> GetSchemaPayload() override {
    fl::FlightPayload out;
    if (schema_payload_) {
      out.ipc_message = *schema_payload_;
    } else {
      arrow::ipc::DictionaryFieldMapper mapper(*reader_->schema());
      ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(*reader_->schema(), options_,
                                                       mapper, &out.ipc_message));
    }
    return out;
  }

  arrow::Result<fl::FlightPayload> Next() override {
    fl::FlightPayload out;
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader_->ReadNext(&batch));
    if (!batch) return out;  // null metadata: the end of the stream
    ARROW_RETURN_NOT_OK(
        arrow::ipc::GetRecordBatchPayload(*batch, options_, &out.ipc_message));
    return out;
  }

 private:
  std::shared_ptr<ReplyReader> reader_;
  std::shared_ptr<const arrow::ipc::IpcPayload> schema_payload_;
  arrow::ipc::IpcWriteOptions options_ = arrow::ipc::IpcWriteOptions::Defaults();
};

class SingleResultStream : public fl::ResultStream {
 public:
  explicit SingleResultStream(std::shared_ptr<arrow::Buffer> body)
      : body_(std::move(body)) {}
  arrow::Result<std::unique_ptr<fl::Result>> Next() override {
    if (!body_) return nullptr;
    auto r = std::make_unique<fl::Result>();
    r->body = std::move(body_);
    body_ = nullptr;
    return r;
  }

 private:
  std::shared_ptr<arrow::Buffer> body_;
};

}  // namespace

FlightService::FlightService(std::shared_ptr<Store> store, FlightServiceOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      watch_(std::make_unique<WatchService>(options_.watch)) {}

FlightService::~FlightService() = default;

FlightService::ResponseSchemaInfo FlightService::ResponseSchemaNow() {
  std::string epoch = store_->epoch();
  MutexLock lock(&schema_mu_);
  if (!response_schema_.schema || epoch != schema_epoch_) {
    auto schema = ResponseSchema(epoch);
    auto payload = std::make_shared<arrow::ipc::IpcPayload>();
    arrow::ipc::DictionaryFieldMapper mapper(*schema);  // the reply has no dictionaries
    const auto encoded = arrow::ipc::GetSchemaPayload(
        *schema, arrow::ipc::IpcWriteOptions::Defaults(), mapper, payload.get());
    // Encoding a three-field schema fails only without memory; the stream then encodes
    // it per call, as Arrow's RecordBatchStream would.
    if (!encoded.ok()) payload.reset();
    response_schema_ = {std::move(schema), std::move(payload)};
    schema_epoch_ = std::move(epoch);
  }
  return response_schema_;
}

std::string FlightService::advertised_endpoint() const {
  if (!options_.advertised_endpoint.empty()) return options_.advertised_endpoint;
  // A TLS server must advertise a TLS address: clients dial the advertised endpoint for
  // reads.
  const bool tls = location().scheme() == "grpc+tls";
  return (tls ? "grpc+tls://127.0.0.1:" : "grpc://127.0.0.1:") + std::to_string(port());
}

arrow::Status FlightService::ListActions(const fl::ServerCallContext&,
                                         std::vector<fl::ActionType>* actions) {
  actions->clear();
  for (const ListedAction& a : kListedActions) {
    actions->push_back({std::string(a.type), std::string(a.description)});
  }
  return arrow::Status::OK();
}

arrow::Status FlightService::DoAction(const fl::ServerCallContext& context,
                                      const fl::Action& action,
                                      std::unique_ptr<fl::ResultStream>* result) {
  const std::string body = action.body ? action.body->ToString() : std::string();
  if (action.type == kMapAction && options_.zero_copy) {
    auto reply = ServeMap(context, *store_, body);
    if (!reply.ok()) return ToRpcStatus(reply.status());
    *result = std::make_unique<SingleResultStream>(
        arrow::Buffer::FromString(*std::move(reply)));
    return arrow::Status::OK();
  }
  if (action.type == kMembersAction) {
    // Endpoints are what every client dials anyway: any caller the server admitted (the
    // auth middleware has identified it) may ask; no per-app right is involved.
    std::vector<std::string> endpoints;
    if (options_.members) endpoints = options_.members();
    if (endpoints.empty()) endpoints.push_back(advertised_endpoint());
    std::vector<fl::Result> results;
    results.reserve(endpoints.size());
    for (auto& e : endpoints) results.push_back(fl::Result{arrow::Buffer::FromString(e)});
    *result = std::make_unique<fl::SimpleResultStream>(std::move(results));
    return arrow::Status::OK();
  }
  if (action.type == kInfoAction) {
    // Aggregates over every app (object counts, memory, traffic): read on every app is
    // needed, i.e. a grant `apps: "*"` (an operator's or a monitor's identity); a tenant
    // limited to its own apps gets PERMISSION_DENIED (docs/security.md).
    ARROW_RETURN_NOT_OK(Authorize(context, "*", Right::kRead, "INFO"));
    if (!options_.info) {
      return ToRpcStatus(arrow::Status::NotImplemented("INFO is not offered here"));
    }
    *result =
        std::make_unique<SingleResultStream>(arrow::Buffer::FromString(options_.info()));
    return arrow::Status::OK();
  }
  if (action.type != kDeleteAction) {
    return ToRpcStatus(arrow::Status::Invalid("Unknown action type: ", action.type,
                                              ". Supported: DELETE, MEMBERS, INFO."));
  }
  auto pattern = KeyPattern::Parse(body);
  if (!pattern.ok()) return ToRpcStatus(pattern.status());
  {
    // One object: write on its app; a session or the whole app: admin.
    const std::string& prefix = pattern->key_prefix();
    const std::string_view app = std::string_view(prefix).substr(0, prefix.find('/'));
    const Right needed =
        pattern->kind() == KeyPattern::Kind::kObject ? Right::kWrite : Right::kAdmin;
    ARROW_RETURN_NOT_OK(Authorize(context, app, needed, "DELETE " + pattern->str()));
  }
  auto removed = store_->Delete(*pattern);
  if (!removed.ok()) return ToRpcStatus(removed.status());
  spdlog::debug("DELETE {}: {} objects", body, *removed);
  *result = std::make_unique<SingleResultStream>(arrow::Buffer::FromString("OK"));
  return arrow::Status::OK();
}

arrow::Status FlightService::DoPut(const fl::ServerCallContext& context,
                                   std::unique_ptr<fl::FlightMessageReader> reader,
                                   std::unique_ptr<fl::FlightMetadataWriter> writer) {
  return ToRpcStatus(DoPutImpl(context, reader.get(), writer.get()));
}

// When gRPC cancels a DoPut (client gone, shutdown deadline passed), the reader reports a
// normal end of stream: only the call context tells a cut-off upload from a complete one.
// Checked after the whole upload has been read and before anything is stored.
static arrow::Status CheckNotCancelled(const fl::ServerCallContext& context) {
  if (context.is_cancelled()) {
    return arrow::Status::Cancelled(
        "upload cancelled before it completed; nothing was stored");
  }
  return arrow::Status::OK();
}

arrow::Status FlightService::DoPutImpl(const fl::ServerCallContext& context,
                                       fl::FlightMessageReader* reader,
                                       fl::FlightMetadataWriter* writer) {
  const fl::FlightDescriptor& descriptor = reader->descriptor();
  auto got_schema = reader->GetSchema();
  if (!got_schema.ok()) return MalformedStream(got_schema.status());
  auto schema = *std::move(got_schema);
  UploadBudget::Reservation reservation(options_.upload_budget);
  // After a large upload, hand the allocator's free memory back to the system: gRPC's
  // receive buffers and the messages of a 1 GiB upload are freed into glibc's arenas,
  // which kept 300-800 MiB resident for good (docs/benchmarks.md, "Memory after a large
  // upload"). malloc_trim costs a few milliseconds, nothing next to receiving
  // kTrimAfterBytes.
  struct TrimAfterLargeUpload {
    const UploadBudget::Reservation& upload;
    ~TrimAfterLargeUpload() {
      if (upload.admitted() >= kTrimAfterBytes) ::malloc_trim(0);
    }
  } trim{reservation};
  const auto call = CallGuardFactory::RecordOf(context);
  const UploadAdmission admission{
      options_.max_upload_bytes > 0 ? options_.max_upload_bytes : kMaxPayloadBytes,
      options_.max_upload_bytes > 0, &reservation, call.get(), options_.max_upload_name};
  // Reads the whole upload, then stores it: a PATCH (command descriptor) or a PUT (path).
  auto read_and_store = [&]() -> arrow::Result<WriteResult> {
    if (descriptor.type == fl::FlightDescriptor::CMD) {
      if (!std::string_view(descriptor.cmd).starts_with(kPatchCommandPrefix)) {
        return arrow::Status::Invalid("Unknown DoPut command '",
                                      descriptor.cmd.substr(0, 64),
                                      "': expected 'PATCH:<app>/<session>/<object>'");
      }
      auto key = ObjectKey::Parse(descriptor.cmd.substr(kPatchCommandPrefix.size()));
      if (!key.ok()) {
        return key.status().WithMessage("Invalid PATCH key: ", key.status().message());
      }
      ARROW_RETURN_NOT_OK(Authorize(context, key->app(), Right::kWrite, key->str()));
      if (IsNativeTableSchema(*schema)) {
        return arrow::Status::Invalid(
            "PATCH takes an opaque delta (version: uint64, data: binary), not a native "
            "table");
      }
      // Deltas are kept in memory (a delta file is written from the buffer in Append).
      ARROW_ASSIGN_OR_RAISE(auto delta,
                            ReadOpaque(reader, *schema, admission, /*spool_to=*/nullptr));
      ARROW_RETURN_NOT_OK(CheckNotCancelled(context));
      return store_->Patch(*key, std::move(delta.data));
    }
    if (descriptor.path.empty()) {
      return arrow::Status::Invalid("key must be provided in descriptor path or command");
    }
    ARROW_ASSIGN_OR_RAISE(auto target, ParsePutPath(JoinDescriptorPath(descriptor.path)));
    ARROW_RETURN_NOT_OK(Authorize(context, target.app, Right::kWrite,
                                  JoinDescriptorPath(descriptor.path)));
    Payload payload;
    if (IsNativeTableSchema(*schema)) {
      ARROW_ASSIGN_OR_RAISE(payload.table, ReadNative(reader, schema, admission));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto upload,
                            ReadOpaque(reader, *schema, admission, store_.get()));
      payload.data = std::move(upload.data);
      payload.spooled = std::move(upload.spooled);
    }
    ARROW_RETURN_NOT_OK(CheckNotCancelled(context));
    return store_->Put(target, std::move(payload));
  };
  ARROW_ASSIGN_OR_RAISE(const WriteResult written, read_and_store());
  ARROW_ASSIGN_OR_RAISE(
      auto meta,
      EncodePutResult({advertised_endpoint(), written.key.str(),
                       static_cast<int64_t>(written.version), store_->epoch()}));
  return writer->WriteMetadata(*meta);
}

arrow::Status FlightService::DoGet(const fl::ServerCallContext& context,
                                   const fl::Ticket& request,
                                   std::unique_ptr<fl::FlightDataStream>* stream) {
  auto ticket = ParseTicket(request.ticket);
  if (!ticket.ok()) return ToRpcStatus(ticket.status());
  ARROW_RETURN_NOT_OK(
      Authorize(context, ticket->key.app(), Right::kRead, ticket->key.str()));
  if (ticket->linearizable && options_.linearize) {
    if (auto st = options_.linearize(ticket->key); !st.ok()) return ToRpcStatus(st);
  }
  auto read = store_->Get(ticket->key, ticket->version);
  if (!read.ok()) return ToRpcStatus(read.status());
  const bool native = read->plan.kind == GetReplyKind::kNative;
  auto response = ResponseSchemaNow();
  auto reader =
      std::make_shared<ReplyReader>(*std::move(read), response.schema, store_->epoch(),
                                    CallGuardFactory::RecordOf(context));
  if (native) {  // the stored schema, possibly with dictionaries: Arrow's own stream
    *stream = std::make_unique<fl::RecordBatchStream>(std::move(reader));
  } else {
    *stream = std::make_unique<OpaqueReplyStream>(std::move(reader),
                                                  std::move(response.payload));
  }
  return arrow::Status::OK();
}

// `version=<N>[;kind=opaque|table][;deltas=<D>]`: the app_metadata of a listed object
// (ListFlights, GetFlightInfo). Parts the store does not know are left out.
static std::string ListingMetadata(const ObjectListing& entry) {
  std::string out = "version=" + std::to_string(entry.version);
  if (entry.native) out += *entry.native ? ";kind=table" : ";kind=opaque";
  if (entry.delta_count >= 0) out += ";deltas=" + std::to_string(entry.delta_count);
  return out;
}

arrow::Status FlightService::GetFlightInfo(const fl::ServerCallContext& context,
                                           const fl::FlightDescriptor& request,
                                           std::unique_ptr<fl::FlightInfo>* info) {
  if (request.path.empty())
    return ToRpcStatus(arrow::Status::Invalid("Empty descriptor path"));
  auto key = ObjectKey::Parse(JoinDescriptorPath(request.path));
  if (!key.ok()) return ToRpcStatus(key.status());
  ARROW_RETURN_NOT_OK(Authorize(context, key->app(), Right::kRead, key->str()));
  // Like upstream, existence is not required: flamepy's local-storage mode asks for the
  // endpoint of an object it is about to place in the storage directory itself.
  // An existing object also gets its size and `version=…` metadata from the store's
  // index (no payload is read): clients' `stat` (docs/protocol.md).
  auto listed = store_->Lookup(*key);
  std::shared_ptr<arrow::Schema> schema;
  if (!listed.ok() || listed->native.value_or(true)) {
    if (auto native = store_->NativeSchema(*key); native.ok() && *native)
      schema = *native;
  }
  if (!schema) schema = ResponseSchemaNow().schema;
  ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::Parse(advertised_endpoint()));
  fl::FlightEndpoint endpoint{
      fl::Ticket{FormatTicket(*key, 0)}, {location}, std::nullopt, ""};
  auto made =
      listed.ok()
          ? fl::FlightInfo::Make(*schema, request, {endpoint}, -1, listed->payload_bytes,
                                 false, ListingMetadata(*listed))
          : fl::FlightInfo::Make(*schema, request, {endpoint}, -1, -1, false);
  if (!made.ok()) return ToRpcStatus(made.status());
  *info = std::make_unique<fl::FlightInfo>(*std::move(made));
  return arrow::Status::OK();
}

arrow::Status FlightService::ListFlights(const fl::ServerCallContext& context,
                                         const fl::Criteria*,
                                         std::unique_ptr<fl::FlightListing>* listings) {
  ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::Parse(advertised_endpoint()));
  const auto schema = ResponseSchemaNow().schema;
  std::vector<fl::FlightInfo> infos;
  auto listing = store_->List();
  if (!listing.ok()) return ToRpcStatus(listing.status());
  for (const auto& entry : *listing) {
    if (!MayRead(context, entry.key.app())) continue;  // only what the caller may read
    fl::FlightEndpoint endpoint{
        fl::Ticket{FormatTicket(entry.key, 0)}, {location}, std::nullopt, ""};
    ARROW_ASSIGN_OR_RAISE(
        auto info, fl::FlightInfo::Make(
                       *schema, fl::FlightDescriptor::Path({entry.key.str()}), {endpoint},
                       -1, entry.payload_bytes, false,
                       // Version, kind and deltas, so listings show them (protocol.md).
                       ListingMetadata(entry)));
    infos.push_back(std::move(info));
  }
  *listings = std::make_unique<fl::SimpleFlightListing>(std::move(infos));
  return arrow::Status::OK();
}

arrow::Status FlightService::GetSchema(const fl::ServerCallContext& context,
                                       const fl::FlightDescriptor& request,
                                       std::unique_ptr<fl::SchemaResult>* schema) {
  std::shared_ptr<arrow::Schema> result = ResponseSchemaNow().schema;
  if (!request.path.empty()) {
    auto key = ObjectKey::Parse(JoinDescriptorPath(request.path));
    if (!key.ok()) return ToRpcStatus(key.status());
    ARROW_RETURN_NOT_OK(Authorize(context, key->app(), Right::kRead, key->str()));
    auto native = store_->NativeSchema(*key);
    if (!native.ok()) return ToRpcStatus(native.status());
    if (*native) result = *native;
  }
  auto made = fl::SchemaResult::Make(*result);
  if (!made.ok()) return ToRpcStatus(made.status());
  *schema = *std::move(made);
  return arrow::Status::OK();
}

arrow::Status FlightService::DoExchange(const fl::ServerCallContext& context,
                                        std::unique_ptr<fl::FlightMessageReader> reader,
                                        std::unique_ptr<fl::FlightMessageWriter> writer) {
  const fl::FlightDescriptor& descriptor = reader->descriptor();
  if (descriptor.type != fl::FlightDescriptor::CMD ||
      !std::string_view(descriptor.cmd).starts_with(kWatchCommandPrefix)) {
    // As upstream (which implements no DoExchange): UNIMPLEMENTED for anything else.
    return ToRpcStatus(arrow::Status::NotImplemented(
        "DoExchange serves only WATCH: expected a command descriptor 'WATCH:<bson>'"));
  }
  arrow::Status st = watch_->Serve(context, *store_, descriptor.cmd, writer.get());
  if (fl::FlightStatusDetail::UnwrapStatus(st)) return st;  // already an RPC status
  return ToRpcStatus(st);
}

void FlightService::StopWatches() {
  if (ChangeFeed* feed = store_->change_feed()) feed->Close();
}

}  // namespace foc
