#include "flame_object_cache/cache_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include <arrow/array.h>
#include <arrow/flight/client.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/key_value_metadata.h>

#include "client/atomic_file.h"
#include "key/key.h"
#include "protocol/endpoint.h"
#include "protocol/metadata_keys.h"
#include "protocol/protocol.h"
#include "protocol/routing.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

// The endpoint of a routing client's calls and cache entries (not dialable: Route()
// replaces it with the members of the key's order).
constexpr char kRouted[] = "<cluster>";
// How long a member that failed with UNAVAILABLE is tried only after the others.
constexpr auto kDownFor = std::chrono::seconds(5);

std::vector<std::string> SplitEndpoints(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string part = text.substr(start, comma - start);
    const size_t b = part.find_first_not_of(" \t");
    const size_t e = part.find_last_not_of(" \t");
    part = b == std::string::npos ? std::string() : part.substr(b, e - b + 1);
    if (!part.empty() && std::find(out.begin(), out.end(), part) == out.end())
      out.push_back(std::move(part));
    start = comma + 1;
  }
  return out;
}

bool IsUnavailable(const arrow::Status& st) {
  auto detail = fl::FlightStatusDetail::UnwrapStatus(st);
  return detail && detail->code() == fl::FlightStatusCode::Unavailable;
}

// The call cannot have reached the server: the connection was never made.
bool NeverSent(const arrow::Status& st) {
  std::string m = st.message();
  std::transform(m.begin(), m.end(), m.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return m.find("failed to connect") != std::string::npos ||
         m.find("connection refused") != std::string::npos;
}

// Prefixes an error with the operation and the key, keeping its code and detail (so a
// caller can still tell NOT_FOUND and the Flight status code).
arrow::Status Annotate(const arrow::Status& st, std::string_view op,
                       std::string_view key) {
  if (st.ok()) return st;
  return st.WithMessage(op, " ", key, ": ", st.message());
}

// The `flame.cache.epoch` of a reply schema ("" when the server sends none, as upstream).
std::string EpochOf(const arrow::Schema& schema) {
  const auto& md = schema.metadata();
  if (!md) return {};
  const int i = md->FindKey(kEpochMetadataKey);
  return i < 0 ? std::string() : md->value(i);
}

// `schema` without the `flame.cache.*` metadata keys (what flamepy hands its users).
std::shared_ptr<arrow::Schema> StripFlameMetadata(
    const std::shared_ptr<arrow::Schema>& schema) {
  const auto& md = schema->metadata();
  if (!md) return schema;
  std::vector<std::string> keys, values;
  for (int64_t i = 0; i < md->size(); ++i) {
    if (md->key(i).starts_with(kFlameMetadataPrefix)) continue;
    keys.push_back(md->key(i));
    values.push_back(md->value(i));
  }
  if (keys.empty()) return schema->RemoveMetadata();
  return schema->WithMetadata(
      arrow::key_value_metadata(std::move(keys), std::move(values)));
}

// Reads the `version`, `kind` and `data` cells of row `i` of a response batch; columns
// are found by name (as flamepy), any integer type for `version`, binary or large_binary
// for `data`.
struct RowView {
  uint64_t version;
  bool is_base;
  std::shared_ptr<arrow::Buffer> data;
};

arrow::Result<uint64_t> IntegerCell(const arrow::Array& array, int64_t i) {
  switch (array.type_id()) {
    case arrow::Type::UINT64:
      return static_cast<const arrow::UInt64Array&>(array).Value(i);
    case arrow::Type::INT64: {
      const int64_t v = static_cast<const arrow::Int64Array&>(array).Value(i);
      if (v < 0) return arrow::Status::Invalid("negative version ", v);
      return static_cast<uint64_t>(v);
    }
    case arrow::Type::UINT32:
      return static_cast<const arrow::UInt32Array&>(array).Value(i);
    case arrow::Type::INT32: {
      const int32_t v = static_cast<const arrow::Int32Array&>(array).Value(i);
      if (v < 0) return arrow::Status::Invalid("negative version ", v);
      return static_cast<uint64_t>(v);
    }
    default:
      return arrow::Status::Invalid("response column 'version' has type ",
                                    array.type()->ToString());
  }
}

arrow::Result<RowView> ReadRow(const arrow::RecordBatch& batch, int64_t i) {
  const auto version = batch.GetColumnByName("version");
  const auto kind = batch.GetColumnByName("kind");
  const auto data = batch.GetColumnByName("data");
  if (!version || !kind || !data) {
    return arrow::Status::Invalid("response lacks the columns version, kind, data: ",
                                  batch.schema()->ToString());
  }
  RowView row;
  ARROW_ASSIGN_OR_RAISE(row.version, IntegerCell(*version, i));
  std::string_view k;
  if (kind->type_id() == arrow::Type::STRING) {
    k = static_cast<const arrow::StringArray&>(*kind).GetView(i);
  } else if (kind->type_id() == arrow::Type::LARGE_STRING) {
    k = static_cast<const arrow::LargeStringArray&>(*kind).GetView(i);
  } else {
    return arrow::Status::Invalid("response column 'kind' has type ",
                                  kind->type()->ToString());
  }
  if (k != kKindBase && k != kKindPatch) {
    return arrow::Status::Invalid("response row has kind '", k,
                                  "'; expected base or patch");
  }
  row.is_base = k == kKindBase;
  // The cell is a slice of the received body: no copy.
  if (data->IsNull(i)) {
    row.data = std::make_shared<arrow::Buffer>(nullptr, 0);
  } else if (data->type_id() == arrow::Type::BINARY ||
             data->type_id() == arrow::Type::LARGE_BINARY) {
    row.data = BinaryCell(*data, i);
  } else {
    return arrow::Status::Invalid("response column 'data' has type ",
                                  data->type()->ToString());
  }
  return row;
}

}  // namespace

// One request round of the single flight of a (force, endpoint, key). See Get(). Every
// field is read and written under the client's mu_, which `cv` is bound to.
struct CacheClient::Flight {
  explicit Flight(Mutex* client_mu) : cv(client_mu) {}

  bool dispatched =
      false;          // the leader has started the request: nobody may join any more
  bool done = false;  // `result` is set
  bool invalidated =
      false;  // an update/patch/delete raced the request: do not cache its answer
  std::optional<arrow::Result<std::shared_ptr<const ObjectValue>>> result;
  std::shared_ptr<Flight> prev;  // the round the leader waits for before sending
  CondVar cv;
  std::string endpoint;
  std::string key;
};

// What one DoGet brought back.
struct CacheClient::Reply {
  enum class Kind { kEmpty, kRows, kTable };
  Kind kind = Kind::kEmpty;
  std::string epoch;
  std::vector<RowView> rows;
  std::shared_ptr<arrow::Table> table;
  uint64_t table_version = 0;
  int64_t rows_received = 0;
  int64_t bytes_received = 0;
};

bool IsObjectNotFound(const arrow::Status& status) { return status.IsKeyError(); }

CacheClient::CacheClient(ClientOptions options)
    : options_(std::move(options)),
      seeds_(SplitEndpoints(options_.endpoint)),
      routing_(seeds_.size() > 1 || options_.discover),
      default_endpoint_(routing_ ? std::string(kRouted) : options_.endpoint),
      cache_(options_.cache_max_bytes, options_.cache_max_entries),
      members_(seeds_),
      members_known_(!options_.discover) {}

CacheClient::~CacheClient() {
  UnsubscribeCache();  // its thread makes calls through the pools below
  for (auto& [endpoint, pool] : pools_) {
    for (auto& client : pool.clients) {
      if (client.use_count() != 1) continue;  // still used by a call in another thread
      if (auto st = client->Close(); !st.ok()) st.Warn();
    }
  }
}

arrow::Result<std::unique_ptr<CacheClient>> CacheClient::Connect(ClientOptions options) {
  if (options.endpoint.empty()) return arrow::Status::Invalid("empty cache endpoint");
  if (options.connections_per_endpoint < 1) {
    return arrow::Status::Invalid("connections_per_endpoint must be at least 1");
  }
  if (options.upload_chunk_bytes < 1 ||
      options.upload_chunk_bytes > std::numeric_limits<int32_t>::max()) {
    return arrow::Status::Invalid("upload_chunk_bytes must be in 1 .. 2^31-1");
  }
  if (options.cert_chain.empty() != options.private_key.empty()) {
    return arrow::Status::Invalid(
        "mutual TLS needs both a client certificate and its key");
  }
  auto client = std::unique_ptr<CacheClient>(new CacheClient(std::move(options)));
  if (client->seeds_.empty()) return arrow::Status::Invalid("empty cache endpoint");
  if (!client->routing_) {
    ARROW_RETURN_NOT_OK(client->ClientFor(client->options_.endpoint).status());
  }
  for (const auto& seed : client->seeds_) {
    ARROW_RETURN_NOT_OK(client->ClientFor(seed).status());
  }
  return client;
}

ObjectRef CacheClient::RefFor(std::string_view key, uint64_t version) const {
  return ObjectRef{routing_ ? seeds_.front() : options_.endpoint, std::string(key),
                   version};
}

const std::string& CacheClient::EndpointOf(const ObjectRef& ref) const {
  if (routing_) return default_endpoint_;  // routed by key, whatever the ref says
  if (!options_.follow_ref_endpoint || ref.endpoint.empty()) return options_.endpoint;
  return ref.endpoint;
}

std::vector<std::string> CacheClient::Members() {
  if (!routing_) return {options_.endpoint};
  bool known;
  {
    MutexLock lock(&mu_);
    known = members_known_;
  }
  if (!known) (void)RefreshMembers();
  MutexLock lock(&mu_);
  return members_;
}

arrow::Result<std::vector<std::string>> CacheClient::ClusterMembers(
    std::string_view endpoint) {
  ARROW_ASSIGN_OR_RAISE(
      auto client, ClientFor(endpoint.empty() ? seeds_.front() : std::string(endpoint)));
  ARROW_ASSIGN_OR_RAISE(
      auto results,
      client->DoAction(CallOptions(), fl::Action{std::string(kMembersAction), nullptr}));
  std::vector<std::string> out;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto r, results->Next());
    if (!r) break;
    out.push_back(r->body ? r->body->ToString() : std::string());
  }
  ARROW_RETURN_NOT_OK(results->Drain());
  return out;
}

arrow::Result<std::vector<std::string>> CacheClient::RefreshMembers() {
  std::vector<std::string> candidates;
  {
    MutexLock lock(&mu_);
    candidates = members_;
  }
  for (const auto& seed : seeds_) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end())
      candidates.push_back(seed);
  }
  arrow::Status last = arrow::Status::Invalid("no endpoint to ask for MEMBERS");
  for (const auto& candidate : candidates) {
    auto found = ClusterMembers(candidate);
    if (found.ok() && !found->empty()) {
      MutexLock lock(&mu_);
      members_ = *found;
      members_known_ = true;
      return *found;
    }
    last = found.ok() ? arrow::Status::IOError(candidate, " listed no members")
                      : found.status();
  }
  return Annotate(last, "MEMBERS", candidates.empty() ? "" : candidates.front());
}

std::vector<std::string> CacheClient::Order(std::string_view key) {
  std::vector<std::string> order = RendezvousOrder(key, Members());
  const auto now = std::chrono::steady_clock::now();
  // Members that failed recently go last, each group in rendezvous order.
  std::vector<std::string> up;
  std::vector<std::string> recently_down;
  MutexLock lock(&mu_);
  for (auto& m : order) {
    auto it = down_.find(m);
    const bool is_up = it == down_.end() || now - it->second > kDownFor;
    (is_up ? up : recently_down).push_back(std::move(m));
  }
  up.insert(up.end(), std::make_move_iterator(recently_down.begin()),
            std::make_move_iterator(recently_down.end()));
  return up;
}

arrow::Status CacheClient::Route(
    const std::string& endpoint, std::string_view key, bool resend,
    const std::function<arrow::Status(const std::string&)>& call) {
  if (endpoint != kRouted) return call(endpoint);
  arrow::Status last = arrow::Status::IOError("no cluster member to call");
  for (int round = 0; round < 2; ++round) {
    for (const std::string& member : Order(key)) {
      arrow::Status st = call(member);
      if (st.ok() || !IsUnavailable(st)) return st;
      {
        MutexLock lock(&mu_);
        down_[member] = std::chrono::steady_clock::now();
        if (options_.discover) members_known_ = false;  // ask MEMBERS again
      }
      if (!resend && !NeverSent(st)) return st;
      last = st;
    }
    if (!options_.discover) break;  // static members: all were tried
  }
  return last;
}

std::string CacheClient::DialTarget(const std::string& endpoint, std::string_view key) {
  if (endpoint != kRouted) return endpoint;
  auto order = Order(key);
  return order.empty() ? seeds_.front() : order.front();
}

fl::FlightCallOptions CacheClient::CallOptions() const {
  fl::FlightCallOptions call;
  if (options_.timeout.count() > 0) call.timeout = options_.timeout;
  if (!options_.token.empty()) {
    call.headers.emplace_back("authorization", "Bearer " + options_.token);
  }
  // Received batches are zero-copy views of gRPC slices, so a buffer may sit at an
  // address misaligned for its type (an int32 offsets buffer at an odd address). Realign
  // just those buffers; payload bytes (binary data) need no alignment and stay uncopied.
  call.read_options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
  return call;
}

arrow::Result<std::shared_ptr<fl::FlightClient>> CacheClient::ClientFor(
    const std::string& endpoint) {
  MutexLock lock(&mu_);
  if (auto it = pools_.find(endpoint); it != pools_.end()) {
    Pool& pool = it->second;
    return pool.clients[pool.next++ % pool.clients.size()];
  }
  // Every accepted spelling (grpcs://, https://, http://, ...) becomes the grpc:// or
  // grpc+tls:// location Arrow dials (protocol/endpoint.h).
  auto uri = ClientLocation(endpoint);
  if (!uri.ok()) {
    return arrow::Status::Invalid("invalid cache endpoint '", endpoint,
                                  "': ", uri.status().message());
  }
  auto location = fl::Location::Parse(*uri);
  if (!location.ok()) {
    return arrow::Status::Invalid("invalid cache endpoint '", endpoint,
                                  "': ", location.status().message());
  }
  fl::FlightClientOptions fo = fl::FlightClientOptions::Defaults();
  const std::string scheme = location->scheme();
  if (scheme == "grpc+tls") {
    fo.tls_root_certs = options_.tls_root_certs;
    fo.cert_chain = options_.cert_chain;
    fo.private_key = options_.private_key;
    fo.override_hostname = options_.override_hostname;
  }
  // One object is one message: no size limit either way (as flamepy).
  fo.generic_options.emplace_back("grpc.max_send_message_length", -1);
  fo.generic_options.emplace_back("grpc.max_receive_message_length", -1);
  if (options_.connections_per_endpoint > 1) {
    // Without this gRPC shares one subchannel (one TCP connection) between equal
    // channels.
    fo.generic_options.emplace_back("grpc.use_local_subchannel_pool", 1);
  }
  Pool pool;
  for (int i = 0; i < options_.connections_per_endpoint; ++i) {
    auto client = fl::FlightClient::Connect(*location, fo);
    if (!client.ok()) return Annotate(client.status(), "connect", endpoint);
    pool.clients.push_back(std::shared_ptr<fl::FlightClient>(*std::move(client)));
  }
  auto first = pool.clients[0];
  pool.next = 1;
  pools_.emplace(endpoint, std::move(pool));
  return first;
}

// ---------------------------------------------------------------------------------------------
// Writes

arrow::Result<ObjectRef> CacheClient::DoPutBatches(
    const std::string& endpoint, bool patch, std::string_view path,
    const std::shared_ptr<arrow::Schema>& schema,
    const std::function<arrow::Status(
        const std::function<arrow::Status(const arrow::RecordBatch&)>&)>& produce) {
  // Replacing a full key's content may be sent again to another member (at most a spare
  // version); a delta or a new object only if the failed member never received it.
  const bool resend = !patch && ObjectKey::Parse(path).ok();
  std::shared_ptr<arrow::Buffer> meta;
  ARROW_RETURN_NOT_OK(Route(endpoint, path, resend, [&](const std::string& target) {
    ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
    return PutOnce(client.get(), patch, path, schema, produce, &meta);
  }));
  if (!meta) return arrow::Status::IOError("the server sent no PutResult");
  ARROW_ASSIGN_OR_RAISE(auto doc, DecodePutResult(meta->ToString()));
  if (doc.version <= 0) {
    return arrow::Status::IOError("the server acknowledged version ", doc.version);
  }
  if (!doc.epoch.empty()) {
    NoteEpoch(endpoint, doc.epoch);
    if (!routing_ && doc.endpoint != endpoint) NoteEpoch(doc.endpoint, doc.epoch);
  }
  return ObjectRef{std::move(doc.endpoint), std::move(doc.key),
                   static_cast<uint64_t>(doc.version)};
}

arrow::Status CacheClient::PutOnce(
    fl::FlightClient* client, bool patch, std::string_view path,
    const std::shared_ptr<arrow::Schema>& schema,
    const std::function<arrow::Status(
        const std::function<arrow::Status(const arrow::RecordBatch&)>&)>& produce,
    std::shared_ptr<arrow::Buffer>* meta) {
  const auto descriptor = patch
                              ? fl::FlightDescriptor::Command(
                                    std::string(kPatchCommandPrefix) + std::string(path))
                              : fl::FlightDescriptor::Path({std::string(path)});
  ARROW_ASSIGN_OR_RAISE(auto put, client->DoPut(CallOptions(), descriptor, schema));
  arrow::Status st = produce([&](const arrow::RecordBatch& batch) {
    return put.writer->WriteRecordBatch(batch);
  });
  if (st.ok()) st = put.writer->DoneWriting();
  if (st.ok()) st = put.reader->ReadMetadata(meta);
  // When the server rejects the call, writes fail with a generic error and Close()
  // carries the server's status: prefer it.
  arrow::Status closed = put.writer->Close();
  if (!closed.ok()) return closed;
  return st;
}

arrow::Result<ObjectRef> CacheClient::PutOpaque(const std::string& endpoint, bool patch,
                                                std::string_view path,
                                                std::shared_ptr<arrow::Buffer> data) {
  if (!data) data = std::make_shared<arrow::Buffer>(nullptr, 0);
  return DoPutBatches(endpoint, patch, path, UploadSchema(), [&](const auto& write) {
    // One row, zero-copy; a buffer beyond the binary column limit goes as several rows,
    // which the server concatenates.
    constexpr int64_t kMaxRow = int64_t{1} << 30;
    if (data->size() <= std::numeric_limits<int32_t>::max()) {
      ARROW_ASSIGN_OR_RAISE(auto row, UploadRow(data));
      return write(*row);
    }
    for (int64_t off = 0; off < data->size(); off += kMaxRow) {
      ARROW_ASSIGN_OR_RAISE(
          auto row, UploadRow(arrow::SliceBuffer(data, off,
                                                 std::min(kMaxRow, data->size() - off))));
      ARROW_RETURN_NOT_OK(write(*row));
    }
    return arrow::Status::OK();
  });
}

arrow::Result<ObjectRef> CacheClient::Put(std::string_view prefix_or_key,
                                          std::shared_ptr<arrow::Buffer> data) {
  ARROW_RETURN_NOT_OK(
      Annotate(ParsePutPath(prefix_or_key).status(), "put", prefix_or_key));
  auto ref = PutOpaque(default_endpoint_, false, prefix_or_key, std::move(data));
  InvalidateWrittenKey(prefix_or_key);
  if (!ref.ok()) return Annotate(ref.status(), "put", prefix_or_key);
  return ref;
}

arrow::Result<ObjectRef> CacheClient::Update(const ObjectRef& ref,
                                             std::shared_ptr<arrow::Buffer> data) {
  ARROW_RETURN_NOT_OK(Annotate(ObjectKey::Parse(ref.key).status(), "update", ref.key));
  const std::string& endpoint = EndpointOf(ref);
  auto out = PutOpaque(endpoint, false, ref.key, std::move(data));
  {
    MutexLock lock(&mu_);
    InvalidateLocked(endpoint, ref.key);
  }
  if (!out.ok()) return Annotate(out.status(), "update", ref.key);
  return out;
}

arrow::Result<ObjectRef> CacheClient::Patch(const ObjectRef& ref,
                                            std::shared_ptr<arrow::Buffer> data) {
  ARROW_RETURN_NOT_OK(Annotate(ObjectKey::Parse(ref.key).status(), "patch", ref.key));
  const std::string& endpoint = EndpointOf(ref);
  auto out = PutOpaque(endpoint, true, ref.key, std::move(data));
  {
    MutexLock lock(&mu_);
    InvalidateLocked(endpoint, ref.key);
  }
  if (!out.ok()) return Annotate(out.status(), "patch", ref.key);
  return out;
}

arrow::Status CacheClient::Delete(std::string_view pattern_text) {
  auto parsed = KeyPattern::Parse(pattern_text);
  if (!parsed.ok()) return Annotate(parsed.status(), "delete", pattern_text);
  const KeyPattern& pattern = *parsed;
  arrow::Status st = [&]() -> arrow::Status {
    // Any member deletes cluster-wide; routed like the pattern's session.
    return Route(default_endpoint_, pattern.str(), true, [&](const std::string& target) {
      ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
      fl::Action action{std::string(kDeleteAction),
                        arrow::Buffer::FromString(pattern.str())};
      ARROW_ASSIGN_OR_RAISE(auto results, client->DoAction(CallOptions(), action));
      int n = 0;
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto r, results->Next());
        if (!r) break;
        ++n;
      }
      ARROW_RETURN_NOT_OK(results->Drain());
      if (n == 0) return arrow::Status::IOError("the server sent no DELETE result");
      return arrow::Status::OK();
    });
  }();
  {
    // Dropped whatever the outcome: after an error the server may or may not have
    // deleted.
    MutexLock lock(&mu_);
    InvalidatePatternLocked(pattern);
  }
  return Annotate(st, "delete", pattern_text);
}

// A request sent before a write was acknowledged may carry the old value: it must not be
// cached afterwards. A request not yet sent will see the write, so it stays cacheable.
// The newest round of a key and the round it waits for are the only ones that can be in
// flight.
void CacheClient::MarkFlightsLocked(const std::function<bool(const Flight&)>& matches) {
  for (auto& [id, flight] : flights_) {
    for (Flight* f : {flight.get(), flight->prev.get()}) {
      if (f && f->dispatched && matches(*f)) f->invalidated = true;
    }
  }
}

void CacheClient::InvalidateLocked(const std::string& endpoint, const std::string& key) {
  if (cache_.Erase(endpoint, key)) ++stats_.invalidations;
  MarkFlightsLocked(
      [&](const Flight& f) { return f.endpoint == endpoint && f.key == key; });
}

void CacheClient::InvalidatePatternLocked(const KeyPattern& pattern) {
  stats_.invalidations += cache_.ErasePattern(pattern);
  MarkFlightsLocked([&](const Flight& f) {
    auto key = ObjectKey::Parse(f.key);
    return key.ok() && pattern.Matches(*key);
  });
}

void CacheClient::InvalidateWrittenKey(std::string_view prefix_or_key) {
  // Only a full key names an existing object; the configured endpoint and the advertised
  // one may be different strings for one server, so every endpoint's entry goes (as
  // flamepy's delete_objects does).
  auto pattern = KeyPattern::Parse(prefix_or_key);
  if (!pattern.ok() || pattern->kind() != KeyPattern::Kind::kObject) return;
  MutexLock lock(&mu_);
  InvalidatePatternLocked(*pattern);
}

std::string CacheClient::epoch(std::string_view endpoint) const {
  MutexLock lock(&mu_);
  auto it =
      epochs_.find(endpoint.empty() ? std::string_view(default_endpoint_) : endpoint);
  return it == epochs_.end() ? std::string() : it->second;
}

void CacheClient::NoteEpoch(const std::string& endpoint, const std::string& epoch) {
  MutexLock lock(&mu_);
  NoteEpochLocked(endpoint, epoch);
}

void CacheClient::NoteEpochLocked(const std::string& endpoint, const std::string& epoch) {
  auto it = epochs_.find(endpoint);
  if (it == epochs_.end()) {
    epochs_.emplace(endpoint, epoch);
  } else if (it->second != epoch) {
    it->second = epoch;
    ++stats_.epoch_changes;
  } else {
    return;
  }
  stats_.invalidations += cache_.EraseOtherEpochs(endpoint, epoch);
}

// ---------------------------------------------------------------------------------------------
// Reads

arrow::Result<CacheClient::Reply> CacheClient::FetchReply(const std::string& endpoint,
                                                          const std::string& key,
                                                          uint64_t version,
                                                          bool linearizable) {
  Reply reply;
  ARROW_RETURN_NOT_OK(Route(endpoint, key, true, [&](const std::string& target) {
    reply = Reply{};
    return FetchOnce(target, key, version, linearizable, &reply);
  }));
  return reply;
}

arrow::Status CacheClient::FetchOnce(const std::string& endpoint, const std::string& key,
                                     uint64_t version, bool linearizable, Reply* out) {
  Reply& reply = *out;
  ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(endpoint));
  // `<key>:L<version>`: the server reads the record from the version authority first.
  ARROW_ASSIGN_OR_RAISE(
      auto stream,
      client->DoGet(CallOptions(), fl::Ticket{key + (linearizable ? ":L" : ":") +
                                              std::to_string(version)}));
  ARROW_ASSIGN_OR_RAISE(auto schema, stream->GetSchema());
  reply.epoch = EpochOf(*schema);
  if (IsNativeTableSchema(*schema)) {
    reply.kind = Reply::Kind::kTable;
    reply.table_version = NativeSchemaVersion(*schema);
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, stream->Next());
      if (!chunk.data) break;
      ++reply.rows_received;
      reply.bytes_received += arrow::util::TotalBufferSize(*chunk.data);
      batches.push_back(std::move(chunk.data));
    }
    ARROW_ASSIGN_OR_RAISE(
        reply.table,
        arrow::Table::FromRecordBatches(
            options_.keep_flame_metadata ? schema : StripFlameMetadata(schema), batches));
    return arrow::Status::OK();
  }
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto chunk, stream->Next());
    if (!chunk.data) break;
    for (int64_t i = 0; i < chunk.data->num_rows(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto row, ReadRow(*chunk.data, i));
      ++reply.rows_received;
      reply.bytes_received += row.data->size();
      reply.rows.push_back(std::move(row));
    }
  }
  reply.kind = reply.rows.empty() ? Reply::Kind::kEmpty : Reply::Kind::kRows;
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<const ObjectValue>> CacheClient::FetchAndInstall(
    const std::string& endpoint, const std::string& key, bool force, Flight* flight) {
  bool force_full = force;
  bool linearizable = options_.linearizable;
  // At most three requests: conditional, then full after an epoch change or an
  // inconsistent patch reply, and one more if the data set changes again in between.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::shared_ptr<const ObjectValue> cached;
    {
      MutexLock lock(&mu_);
      if (!force_full) cached = cache_.Lookup(endpoint, key);
      if (attempt == 0) ++(cached ? stats_.hits : stats_.misses);
      ++stats_.requests;
    }
    ARROW_ASSIGN_OR_RAISE(
        auto reply,
        FetchReply(endpoint, key, cached ? cached->version : 0, linearizable));

    MutexLock lock(&mu_);
    stats_.rows_received += reply.rows_received;
    stats_.bytes_received += reply.bytes_received;
    NoteEpochLocked(endpoint, reply.epoch);
    const bool whole = reply.kind == Reply::Kind::kTable ||
                       (reply.kind == Reply::Kind::kRows && reply.rows.front().is_base);
    if (routing_ && cached && whole && cached->epoch == reply.epoch && !linearizable) {
      const uint64_t replied = reply.kind == Reply::Kind::kTable
                                   ? reply.table_version
                                   : reply.rows.back().version;
      if (replied < cached->version) {
        // A member whose index lags the cluster (failover, watch lag) answered with an
        // older version than we hold: never go backwards; make it catch up.
        linearizable = true;
        continue;
      }
    }
    if (cached && cached->epoch != reply.epoch && !whole) {
      // "Not modified" or deltas relative to a version of a data set the server no longer
      // has.
      force_full = true;
      continue;
    }

    auto value = std::make_shared<ObjectValue>();
    value->endpoint = endpoint;
    value->key = key;
    value->epoch = reply.epoch;
    switch (reply.kind) {
      case Reply::Kind::kEmpty:
        if (!cached) {
          // Only "not modified" is empty, and nothing is not modified relative to version
          // 0.
          return arrow::Status::KeyError("Object not found");
        }
        ++stats_.not_modified;
        return cached;
      case Reply::Kind::kTable:
        value->version = value->base_version = reply.table_version;
        value->table = std::move(reply.table);
        ++stats_.full;
        break;
      case Reply::Kind::kRows: {
        const bool has_base = reply.rows.front().is_base;
        uint64_t previous = 0;
        if (has_base) {
          value->base_version = value->version = previous = reply.rows.front().version;
          value->base = std::move(reply.rows.front().data);
        } else {
          if (!cached || cached->is_table()) {  // deltas without a base to apply them to
            force_full = true;
            continue;
          }
          value->base_version = cached->base_version;
          value->base = cached->base;
          value->deltas = cached->deltas;
          previous = cached->version;
        }
        bool consistent = true;
        for (size_t i = has_base ? 1 : 0; i < reply.rows.size(); ++i) {
          auto& row = reply.rows[i];
          if (row.is_base || row.version <= previous) {
            consistent = false;
            break;
          }
          previous = row.version;
          value->deltas.push_back(Delta{row.version, std::move(row.data)});
        }
        if (!consistent) {
          if (has_base) {
            return arrow::Status::IOError(
                "the server sent an inconsistent reply (base row not "
                "first, or versions not increasing)");
          }
          force_full = true;
          continue;
        }
        value->version = previous;
        ++(has_base ? stats_.full : stats_.patch_only);
        break;
      }
    }
    const auto known = epochs_.find(endpoint);
    if (!flight->invalidated && known != epochs_.end() && known->second == value->epoch) {
      cache_.Insert(value);
    }
    return value;
  }
  return arrow::Status::IOError("the server's data set kept changing during the read");
}

arrow::Result<std::shared_ptr<const ObjectValue>> CacheClient::Get(const ObjectRef& ref) {
  ARROW_RETURN_NOT_OK(Annotate(ObjectKey::Parse(ref.key).status(), "get", ref.key));
  const std::string& endpoint = EndpointOf(ref);
  const bool force = ref.version == 0;
  const std::string id = (force ? "F" : "C") + endpoint + '\n' + ref.key;

  // Single flight. flights_[id] is the newest round for the key. A get joins it while it
  // has not been sent (its answer is then at least as new as the get); otherwise the get
  // starts a new round that is sent once the current one has finished (so the new round
  // carries the freshest cached version, and every get arriving meanwhile joins it).
  // Hence at most one request per key is on the wire and at most one more waits.
  std::optional<arrow::Result<std::shared_ptr<const ObjectValue>>> answer;
  std::shared_ptr<Flight> mine;
  {
    MutexLock lock(&mu_);
    mine = LeadOrJoinLocked(id, endpoint, ref, force, &answer);
  }
  if (!mine) return *std::move(answer);
  auto result = FetchAndInstall(endpoint, ref.key, force, mine.get());
  if (!result.ok()) result = Annotate(result.status(), "get", ref.key);
  MutexLock lock(&mu_);
  mine->result = result;
  mine->done = true;
  if (auto cur = flights_.find(id); cur != flights_.end() && cur->second == mine) {
    flights_.erase(cur);
  }
  mine->cv.SignalAll();
  return result;
}

std::shared_ptr<CacheClient::Flight> CacheClient::LeadOrJoinLocked(
    const std::string& id, const std::string& endpoint, const ObjectRef& ref, bool force,
    std::optional<arrow::Result<std::shared_ptr<const ObjectValue>>>* answer) {
  if (!force && cache_watch_) {  // kept current by WATCH (watch_stream.cc): no round trip
    auto cached = cache_.Lookup(endpoint, ref.key);
    if (cached && cached->version >= ref.version &&
        cache_watch_->Vouches(endpoint, ref.key, cached->version, cached->epoch)) {
      ++stats_.watch_hits;
      *answer = std::move(cached);
      return nullptr;
    }
  }
  auto it = flights_.find(id);
  if (it != flights_.end() && !it->second->dispatched) {
    // Joins the round not yet sent: its answer is at least as new as this get.
    std::shared_ptr<Flight> joined = it->second;
    ++stats_.coalesced;
    while (!joined->done) joined->cv.Wait();
    *answer = *joined->result;
    return nullptr;
  }
  auto mine = std::make_shared<Flight>(&mu_);
  mine->endpoint = endpoint;
  mine->key = ref.key;
  if (it != flights_.end()) {
    mine->prev = it->second;
    it->second = mine;
  } else {
    flights_.emplace(id, mine);
  }
  if (mine->prev) {
    auto prev = std::move(mine->prev);
    mine->prev = nullptr;
    while (!prev->done) prev->cv.Wait();
  }
  mine->dispatched = true;
  return mine;
}

// ---------------------------------------------------------------------------------------------
// Files

arrow::Result<ObjectRef> CacheClient::Upload(std::string_view key_or_prefix,
                                             const std::filesystem::path& path) {
  ARROW_RETURN_NOT_OK(
      Annotate(ParsePutPath(key_or_prefix).status(), "upload", key_or_prefix));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return arrow::Status::IOError("upload ", key_or_prefix, ": cannot open ",
                                  path.string(), ": ", std::strerror(errno));
  }
  const int64_t chunk = options_.upload_chunk_bytes;
  int64_t sent = 0;
  auto ref = DoPutBatches(
      default_endpoint_, false, key_or_prefix, UploadSchema(),
      [&](const auto& write) -> arrow::Status {
        // From the start on every attempt (a routing client may send it to another
        // member after a failure).
        if (::lseek(fd, 0, SEEK_SET) != 0) {
          return arrow::Status::IOError("cannot rewind ", path.string(), ": ",
                                        std::strerror(errno));
        }
        sent = 0;
        while (true) {
          // A fresh buffer per row: gRPC may still reference the previous one while
          // sending it.
          ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> buf,
                                arrow::AllocateResizableBuffer(chunk));
          int64_t filled = 0;
          while (filled < chunk) {
            const ssize_t n = ::read(fd, buf->mutable_data() + filled,
                                     static_cast<size_t>(chunk - filled));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
              return arrow::Status::IOError("cannot read ", path.string(), ": ",
                                            std::strerror(errno));
            }
            if (n == 0) break;
            filled += n;
          }
          if (filled == 0)
            return arrow::Status::OK();  // an empty file sends no batches (as flamepy)
          ARROW_RETURN_NOT_OK(buf->Resize(filled, /*shrink_to_fit=*/false));
          ARROW_ASSIGN_OR_RAISE(auto row, UploadRow(buf));
          ARROW_RETURN_NOT_OK(write(*row));
          sent += filled;
          if (options_.transfer_progress) options_.transfer_progress(sent);
          if (filled < chunk) return arrow::Status::OK();
        }
      });
  ::close(fd);
  InvalidateWrittenKey(key_or_prefix);
  if (!ref.ok()) return Annotate(ref.status(), "upload", key_or_prefix);
  return ref;
}

arrow::Status CacheClient::Download(const ObjectRef& ref,
                                    const std::filesystem::path& path) {
  ARROW_RETURN_NOT_OK(Annotate(ObjectKey::Parse(ref.key).status(), "download", ref.key));
  auto st = Route(EndpointOf(ref), ref.key, true, [&](const std::string& target) {
    ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
    ARROW_ASSIGN_OR_RAISE(auto stream,
                          client->DoGet(CallOptions(), fl::Ticket{ref.key + ":0"}));
    ARROW_ASSIGN_OR_RAISE(auto schema, stream->GetSchema());
    if (IsNativeTableSchema(*schema)) {
      return arrow::Status::Invalid("is a native Arrow table; use GetTable");
    }
    // The file is created only once the server has answered: a missing object leaves
    // nothing.
    ARROW_ASSIGN_OR_RAISE(auto file, AtomicFileWriter::Open(path));
    int64_t written = 0;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, stream->Next());
      if (!chunk.data) break;
      for (int64_t i = 0; i < chunk.data->num_rows(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto row, ReadRow(*chunk.data, i));
        if (!row.is_base) {
          return arrow::Status::Invalid("has deltas (version ", row.version,
                                        "); a download writes a base only: use Get");
        }
        ARROW_RETURN_NOT_OK(file->Write(row.data->data(), row.data->size()));
        written += row.data->size();
        if (options_.transfer_progress) options_.transfer_progress(written);
      }
    }
    return file->Commit();
  });
  return Annotate(st, "download", ref.key);
}

// ---------------------------------------------------------------------------------------------
// Native tables

arrow::Result<ObjectRef> CacheClient::PutTable(
    std::string_view prefix_or_key, const std::shared_ptr<arrow::Table>& table) {
  ARROW_RETURN_NOT_OK(
      Annotate(ParsePutPath(prefix_or_key).status(), "put", prefix_or_key));
  if (!table) return arrow::Status::Invalid("put ", prefix_or_key, ": null table");
  auto md = table->schema()->metadata() ? table->schema()->metadata()->Copy()
                                        : std::make_shared<arrow::KeyValueMetadata>();
  for (const char* k : {kFormatMetadataKey, kVersionMetadataKey, kEpochMetadataKey}) {
    if (const int i = md->FindKey(k); i >= 0) ARROW_RETURN_NOT_OK(md->Delete(i));
  }
  md->Append(kFormatMetadataKey, kNativeTableFormat);
  md->Append(kVersionMetadataKey, "0");
  if (md->FindKey(kLogicalTypeMetadataKey) < 0)
    md->Append(kLogicalTypeMetadataKey, "pyarrow.table");
  const auto schema = table->schema()->WithMetadata(md);
  auto ref = DoPutBatches(
      default_endpoint_, false, prefix_or_key, schema,
      [&](const auto& write) -> arrow::Status {
        arrow::TableBatchReader reader(*table);
        int batches = 0;
        while (true) {
          std::shared_ptr<arrow::RecordBatch> batch;
          ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
          if (!batch) break;
          ARROW_RETURN_NOT_OK(write(*batch));
          ++batches;
        }
        if (batches == 0) {  // an empty table still sends one (empty) batch, as flamepy
          ARROW_ASSIGN_OR_RAISE(auto empty, arrow::RecordBatch::MakeEmpty(schema));
          ARROW_RETURN_NOT_OK(write(*empty));
        }
        return arrow::Status::OK();
      });
  InvalidateWrittenKey(prefix_or_key);
  if (!ref.ok()) return Annotate(ref.status(), "put", prefix_or_key);
  return ref;
}

arrow::Result<std::shared_ptr<arrow::Table>> CacheClient::GetTable(const ObjectRef& ref) {
  ARROW_ASSIGN_OR_RAISE(auto value, Get(ref));
  if (!value->is_table()) {
    return arrow::Status::Invalid("get ", ref.key,
                                  ": holds opaque bytes, not a native table");
  }
  return value->table;
}

// ---------------------------------------------------------------------------------------------
// Listing

namespace {

// `version=<N>[;kind=opaque|table][;deltas=<D>]` (flight_service.cc ListingMetadata);
// false when there is no `version=` (upstream's server).
bool ParseListingMetadata(std::string_view md, ListedObject* obj) {
  if (!md.starts_with("version=")) return false;
  while (!md.empty()) {
    const size_t end = std::min(md.find(';'), md.size());
    const std::string_view part = md.substr(0, end);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos) {
      const std::string_view name = part.substr(0, eq);
      const std::string value(part.substr(eq + 1));
      if (name == "version") {
        obj->version = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name == "kind") {
        obj->kind = value;
      } else if (name == "deltas") {
        obj->delta_count = std::strtoll(value.c_str(), nullptr, 10);
      }
    }
    md.remove_prefix(std::min(md.size(), end + 1));
  }
  return true;
}

}  // namespace

arrow::Result<std::vector<ListedObject>> CacheClient::List() {
  std::vector<ListedObject> out;
  // Every member lists the whole cluster's namespace.
  ARROW_RETURN_NOT_OK(Route(default_endpoint_, "", true, [&](const std::string& target) {
    out.clear();
    return ListOnce(target, &out);
  }));
  return out;
}

arrow::Status CacheClient::ListOnce(const std::string& endpoint,
                                    std::vector<ListedObject>* out_list) {
  std::vector<ListedObject>& out = *out_list;
  ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(endpoint));
  ARROW_ASSIGN_OR_RAISE(auto listing, client->ListFlights(CallOptions(), fl::Criteria{}));
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto info, listing->Next());
    if (!info) break;
    ListedObject obj;
    obj.key = JoinDescriptorPath(info->descriptor().path);
    obj.bytes = info->total_bytes();
    // Our server puts `version=<N>;kind=…;deltas=<D>` in app_metadata
    // (docs/protocol.md); upstream sends none.
    ParseListingMetadata(info->app_metadata(), &obj);
    if (!info->endpoints().empty() && !info->endpoints()[0].locations.empty()) {
      obj.endpoint = info->endpoints()[0].locations[0].ToString();
    }
    out.push_back(std::move(obj));
  }
  return arrow::Status::OK();
}

arrow::Result<ObjectStat> CacheClient::Stat(const ObjectRef& ref) {
  ARROW_RETURN_NOT_OK(Annotate(ObjectKey::Parse(ref.key).status(), "stat", ref.key));
  ObjectStat stat;
  auto st = Route(EndpointOf(ref), ref.key, true, [&](const std::string& target) {
    stat = ObjectStat{};
    stat.key = ref.key;
    ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
    // Our server answers GetFlightInfo of an existing object with its size and
    // `version=…` metadata from its index (docs/protocol.md): nothing is transferred.
    ARROW_ASSIGN_OR_RAISE(
        auto info,
        client->GetFlightInfo(CallOptions(), fl::FlightDescriptor::Path({ref.key})));
    ListedObject listed;
    if (ParseListingMetadata(info->app_metadata(), &listed)) {
      stat.version = listed.version;
      stat.total_bytes = info->total_bytes();
      stat.delta_count = listed.delta_count;
      if (!listed.kind.empty()) {
        stat.is_table = listed.kind == "table";
      } else {
        arrow::ipc::DictionaryMemo memo;
        ARROW_ASSIGN_OR_RAISE(auto schema, info->GetSchema(&memo));
        stat.is_table = IsNativeTableSchema(*schema);
      }
      return arrow::Status::OK();
    }
    // No metadata: an absent object on our server, a node tier or cluster member, or
    // upstream's server. One read tells; its payloads are counted and dropped.
    stat.from_metadata = false;
    stat.delta_count = 0;
    ARROW_ASSIGN_OR_RAISE(auto stream,
                          client->DoGet(CallOptions(), fl::Ticket{ref.key + ":0"}));
    ARROW_ASSIGN_OR_RAISE(auto schema, stream->GetSchema());
    stat.is_table = IsNativeTableSchema(*schema);
    if (stat.is_table) stat.version = NativeSchemaVersion(*schema);
    bool seen = false;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, stream->Next());
      if (!chunk.data) break;
      seen = true;
      if (stat.is_table) {
        stat.total_bytes += arrow::util::TotalBufferSize(*chunk.data);
        continue;
      }
      for (int64_t i = 0; i < chunk.data->num_rows(); ++i) {
        ARROW_ASSIGN_OR_RAISE(auto row, ReadRow(*chunk.data, i));
        if (!row.is_base) ++stat.delta_count;
        stat.total_bytes += row.data->size();
        stat.version = std::max(stat.version, row.version);
      }
    }
    if (!seen && !stat.is_table) return arrow::Status::KeyError("Object not found");
    return arrow::Status::OK();
  });
  if (!st.ok()) return Annotate(st, "stat", ref.key);
  return stat;
}

arrow::Result<std::string> CacheClient::Info() {
  std::string body;
  // The server this client talks to (with routing: the first live member; INFO describes
  // that one server).
  auto st = Route(default_endpoint_, "", true, [&](const std::string& target) {
    ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
    ARROW_ASSIGN_OR_RAISE(
        auto results,
        client->DoAction(CallOptions(), fl::Action{std::string(kInfoAction), nullptr}));
    ARROW_ASSIGN_OR_RAISE(auto first, results->Next());
    if (!first || !first->body) {
      return arrow::Status::IOError("the server sent no INFO document");
    }
    body = first->body->ToString();
    return results->Drain();
  });
  if (!st.ok()) return Annotate(st, "info", options_.endpoint);
  return body;
}

CacheStats CacheClient::stats() const {
  MutexLock lock(&mu_);
  CacheStats s = stats_;
  s.bytes = cache_.bytes();
  s.entries = cache_.entries();
  s.evictions = cache_.evictions();
  return s;
}

}  // namespace foc
