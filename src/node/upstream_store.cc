#include "node/upstream_store.h"

#include <utility>

#include <arrow/table.h>
#include <arrow/util/byte_size.h>
#include <spdlog/spdlog.h>

namespace foc {

namespace {

// WATCH accepts at most 64 patterns per call (flight/watch.h): the tier follows that
// many apps; beyond, gets of other apps make their conditional round trip.
constexpr size_t kMaxFollowedApps = 64;

// The tier's Object for a value the client cache holds: shares every buffer.
arrow::Result<Object::Ptr> ToObject(const ObjectValue& value) {
  if (value.is_table()) {
    NativeTable native;
    native.schema = value.table->schema();
    arrow::TableBatchReader reader(*value.table);
    ARROW_ASSIGN_OR_RAISE(arrow::RecordBatchVector batches, reader.ToRecordBatches());
    native.batches = std::move(batches);
    return Object::MakeNative(value.version, std::move(native));
  }
  Object::Ptr base = Object::MakeOpaque(value.base_version, value.base);
  if (value.deltas.empty()) return base;
  return Object::Make(base, value.deltas);
}

std::string PutPath(const PutTarget& target) {
  std::string path = target.app + "/" + target.session;
  if (target.has_object()) path += "/" + target.object;
  return path;
}

}  // namespace

arrow::Result<std::unique_ptr<UpstreamStore>> UpstreamStore::Open(
    ClientOptions upstream, std::unique_ptr<LocalMapDir> map_dir) {
  upstream.follow_ref_endpoint = false;
  upstream.keep_flame_metadata = true;
  ARROW_ASSIGN_OR_RAISE(auto client, CacheClient::Connect(std::move(upstream)));
  return std::unique_ptr<UpstreamStore>(
      new UpstreamStore(std::move(client), std::move(map_dir)));
}

UpstreamStore::UpstreamStore(std::unique_ptr<CacheClient> client,
                             std::unique_ptr<LocalMapDir> map_dir)
    : client_(std::move(client)),
      map_dir_(std::move(map_dir)),
      feed_(std::make_unique<TierFeed>(client_.get())) {}

UpstreamStore::~UpstreamStore() {
  feed_.reset();
  client_->UnsubscribeCache();
}

arrow::Status UpstreamStore::PrepareWatch(const std::vector<KeyPattern>& patterns) {
  // Long enough for an upstream across a network; a tier WATCH waits this long at most
  // before UNAVAILABLE.
  return feed_->Ensure(patterns, std::chrono::seconds(10));
}

arrow::Result<LocalObject> UpstreamStore::MapLocal(const ObjectKey& key) {
  if (!map_dir_) {
    return arrow::Status::NotImplemented("this node tier maps nothing (", key.str(),
                                         "): read over gRPC");
  }
  Follow(key.app());
  ARROW_ASSIGN_OR_RAISE(auto value, client_->Get(client_->RefFor(key.str())));
  ARROW_ASSIGN_OR_RAISE(Object::Ptr object, ToObject(*value));
  return map_dir_->Materialize(key, *object,
                               value->epoch.empty() ? epoch() : value->epoch);
}

std::string UpstreamStore::epoch() const {
  std::string epoch = client_->epoch();
  return epoch.empty() ? feed_->epoch() : epoch;  // no reply yet: a WATCH `ready`'s
}

void UpstreamStore::Follow(std::string_view app) {
  std::vector<std::string> patterns;
  {
    MutexLock lock(&mu_);
    if (apps_.count(std::string(app)) || apps_.size() >= kMaxFollowedApps) return;
    apps_.emplace(app);
    for (const auto& a : apps_) patterns.push_back(a + "/*");
  }
  // Replaces the subscription; until the new one has its snapshot, gets make their
  // conditional round trip (never a stale hit).
  if (auto st = client_->SubscribeCache(patterns); !st.ok()) {
    spdlog::warn("node tier: cannot watch {} at the upstream: {}", app, st.ToString());
  }
}

arrow::Result<WriteResult> UpstreamStore::Put(const PutTarget& target, Payload payload) {
  Follow(target.app);
  const std::string path = PutPath(target);
  arrow::Result<ObjectRef> ref;
  int64_t bytes = 0;
  if (payload.table) {
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(
                                          payload.table->schema, payload.table->batches));
    for (const auto& b : payload.table->batches)
      bytes += arrow::util::TotalBufferSize(*b);
    ref = client_->PutTable(path, table);
  } else {
    bytes = payload.data ? payload.data->size() : 0;
    ref = client_->Put(
        path, payload.data ? payload.data : std::make_shared<arrow::Buffer>(nullptr, 0));
  }
  ARROW_RETURN_NOT_OK(ref.status());
  ARROW_ASSIGN_OR_RAISE(ObjectKey key, ObjectKey::Parse(ref->key));
  {
    MutexLock lock(&mu_);
    counted_.bytes_written += bytes;
  }
  return WriteResult{std::move(key), ref->version};
}

arrow::Result<WriteResult> UpstreamStore::Patch(const ObjectKey& key,
                                                std::shared_ptr<arrow::Buffer> delta) {
  Follow(key.app());
  const int64_t bytes = delta ? delta->size() : 0;
  ARROW_ASSIGN_OR_RAISE(ObjectRef ref,
                        client_->Patch(client_->RefFor(key.str()), std::move(delta)));
  {
    MutexLock lock(&mu_);
    counted_.bytes_written += bytes;
  }
  return WriteResult{key, ref.version};
}

arrow::Result<ReadResult> UpstreamStore::Get(const ObjectKey& key,
                                             uint64_t client_version) {
  Follow(key.app());
  ARROW_ASSIGN_OR_RAISE(auto value, client_->Get(client_->RefFor(key.str())));
  ARROW_ASSIGN_OR_RAISE(Object::Ptr object, ToObject(*value));
  GetPlan plan = PlanGet(*object, client_version);
  {
    MutexLock lock(&mu_);
    switch (plan.kind) {
      case GetReplyKind::kNotModified:
        ++counted_.not_modified_replies;
        break;
      case GetReplyKind::kPatches:
        ++counted_.patch_replies;
        for (size_t i = plan.first_delta; i < object->deltas().size(); ++i)
          counted_.bytes_read += object->deltas()[i].data->size();
        break;
      case GetReplyKind::kFull:
        ++counted_.full_replies;
        counted_.bytes_read += object->payload_bytes();
        break;
      case GetReplyKind::kNative:
        ++counted_.native_replies;
        counted_.bytes_read += object->payload_bytes();
        break;
    }
  }
  return ReadResult{std::move(object), plan};
}

arrow::Result<std::shared_ptr<arrow::Schema>> UpstreamStore::NativeSchema(
    const ObjectKey& key) {
  Follow(key.app());
  ARROW_ASSIGN_OR_RAISE(auto value, client_->Get(client_->RefFor(key.str())));
  if (!value->is_table()) return std::shared_ptr<arrow::Schema>();
  return value->table->schema();
}

arrow::Result<int64_t> UpstreamStore::Delete(const KeyPattern& pattern) {
  ARROW_RETURN_NOT_OK(client_->Delete(pattern.str()));
  return -1;
}

arrow::Result<std::vector<ObjectListing>> UpstreamStore::List() const {
  ARROW_ASSIGN_OR_RAISE(auto listed, client_->List());
  std::vector<ObjectListing> out;
  out.reserve(listed.size());
  for (auto& l : listed) {
    auto key = ObjectKey::Parse(l.key);
    if (!key.ok()) continue;  // the upstream listed a key this server cannot serve
    out.push_back(ObjectListing{*std::move(key), l.version, l.bytes});
  }
  return out;
}

StoreStats UpstreamStore::stats() const {
  StoreStats s;
  {
    MutexLock lock(&mu_);
    s = counted_;
  }
  // What the tier holds: its copies of upstream objects (the upstream's own counts are
  // on the upstream's /metrics).
  const CacheStats c = client_->stats();
  s.objects = c.entries;
  s.resident_objects = c.entries;
  s.resident_bytes = c.bytes;
  s.memory_evictions = c.evictions;
  return s;
}

}  // namespace foc
