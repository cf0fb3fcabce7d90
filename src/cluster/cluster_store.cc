#include "cluster/cluster_store.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include <arrow/filesystem/filesystem.h>
#include <arrow/io/memory.h>
#include <arrow/util/byte_size.h>
#include <spdlog/spdlog.h>

#include "storage/object_file.h"
#include "storage/storage_unavailable.h"

namespace foc::cluster {

namespace {

// Payload files record version 0: the version is the record's (assigned at commit, after
// the payload was written under a name that does not depend on it).
constexpr uint64_t kVersionInRecord = 0;

// etcd failures (IOError "etcd unreachable (...)") reach clients as UNAVAILABLE: the
// write was not committed, and trying again later is right.
arrow::Status EtcdUnavailable(const arrow::Status& st) {
  if (st.ok() || !st.IsIOError() || IsStorageUnavailable(st)) return st;
  return StorageUnavailableError("cluster metadata (etcd) unavailable: ", st.message());
}

template <typename T>
arrow::Result<T> EtcdUnavailable(arrow::Result<T> r) {
  if (r.ok()) return r;
  return EtcdUnavailable(r.status());
}

bool Matches(const KeyPattern& pattern, const std::string& key) {
  auto parsed = ObjectKey::Parse(key);
  return parsed.ok() && pattern.Matches(*parsed);
}

}  // namespace

arrow::Result<std::unique_ptr<ClusterStore>> ClusterStore::Open(
    ClusterStoreOptions options) {
  if (options.etcd.empty())
    return arrow::Status::Invalid("cluster mode needs at least one etcd endpoint");
  if (options.storage_uri.rfind("s3://", 0) != 0) {
    return arrow::Status::Invalid(
        "cluster mode needs s3:// storage (a server's local disk is not shared), not '",
        RedactS3Uri(options.storage_uri), "'");
  }
  if (options.server_id.empty()) options.server_id = NewUuid4();
  EtcdOptions etcd_options;
  etcd_options.endpoints = options.etcd;
  ARROW_ASSIGN_OR_RAISE(auto etcd, EtcdClient::Make(etcd_options));
  ARROW_ASSIGN_OR_RAISE(S3Location s3, ConnectS3(options.storage_uri));
  std::unique_ptr<ClusterStore> store(
      new ClusterStore(std::move(options), std::move(etcd), std::move(s3)));
  ARROW_RETURN_NOT_OK(store->Start());
  return store;
}

ClusterStore::ClusterStore(ClusterStoreOptions options, std::unique_ptr<EtcdClient> etcd,
                           S3Location s3)
    : options_(std::move(options)),
      etcd_(std::move(etcd)),
      s3_(std::move(s3)),
      cache_(LruCache<Cached>::Options{options_.max_memory_bytes, 0}) {}

ClusterStore::~ClusterStore() {
  {
    MutexLock lock(&gc_mu_);
    gc_stop_ = true;
    gc_wake_.SignalAll();
  }
  if (gc_thread_.joinable()) gc_thread_.join();
  std::unique_ptr<EtcdWatch> watch;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    watch = std::move(watch_);
  }
  if (watch) watch->Cancel();
  feed_.Close();
  if (members_) members_->Leave();
}

arrow::Status ClusterStore::Start() {
  ARROW_ASSIGN_OR_RAISE(meta_, ClusterMetadata::Open(etcd_.get(), options_.prefix));
  MembershipOptions m;
  m.prefix = options_.prefix;
  m.id = options_.server_id;
  m.endpoint = options_.advertised_endpoint;
  ARROW_ASSIGN_OR_RAISE(members_, Membership::Join(etcd_.get(), m));
  ARROW_RETURN_NOT_OK(Resync());
  if (options_.gc_interval.count() > 0) gc_thread_ = std::thread([this] { GcLoop(); });
  return arrow::Status::OK();
}

arrow::Status ClusterStore::Resync() {
  ARROW_ASSIGN_OR_RAISE(MetadataSnapshot snap, meta_->Snapshot());
  {
    MutexLock lock(&mu_);
    if (stopping_) return arrow::Status::OK();
    // Records gone while the watch was down: forget them; the rest is replaced.
    std::map<std::string, Indexed> fresh;
    std::map<std::string, ObjectRecord> watched;
    for (auto& [key, record] : snap.records) {
      watched[key] = record;
      fresh[key] = Indexed{std::move(record), snap.revision};
    }
    index_ = std::move(fresh);
    watched_ = std::move(watched);
    AdvanceLocked(snap.revision);
  }
  ARROW_ASSIGN_OR_RAISE(
      auto watch,
      meta_->Follow(
          snap.revision, [this](const std::vector<RecordEvent>& ev) { OnEvents(ev); },
          [this](const arrow::Status& why) { OnWatchEnd(why); }));
  MutexLock lock(&mu_);
  watch_ = std::move(watch);
  spdlog::info("cluster: {} objects at etcd revision {}, following", index_.size(),
               snap.revision);
  return arrow::Status::OK();
}

void ClusterStore::OnWatchEnd(const arrow::Status& why) {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
  }
  spdlog::warn("cluster: etcd watch ended ({}); resynchronising", why.ToString());
  // Changes may have been missed: WATCH subscribers must resync, as after a drop.
  feed_.DropAll("the cluster's change stream had a gap (etcd watch restarted)");
  // Retry off the watch's own thread, until etcd answers again or the store stops.
  std::thread([this] {
    for (int attempt = 0;; ++attempt) {
      {
        MutexLock lock(&mu_);
        if (stopping_) return;
      }
      arrow::Status st = Resync();
      if (st.ok()) return;
      spdlog::warn("cluster: resync failed: {}", st.ToString());
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(2000, 100 << std::min(attempt, 4))));
    }
  }).detach();
}

void ClusterStore::ApplyLocked(const std::string& key,
                               const std::optional<ObjectRecord>& record,
                               int64_t revision) {
  auto it = index_.find(key);
  if (it != index_.end() && it->second.revision >= revision) return;
  if (!record) {
    if (it != index_.end()) index_.erase(it);
    return;
  }
  // A write older than a deletion this server already applied (its own DELETE, or a
  // linearizable read that found the key gone): the watch is late, the key stays gone.
  if (BuriedLocked(key, revision)) return;
  index_[key] = Indexed{*record, revision};
}

bool ClusterStore::BuriedLocked(const std::string& key, int64_t revision) const {
  if (tombstones_.empty()) return false;
  auto parsed = ObjectKey::Parse(key);
  if (!parsed.ok()) return false;
  for (const auto& [pattern, at] : tombstones_) {
    if (at >= revision && pattern.Matches(*parsed)) return true;
  }
  return false;
}

void ClusterStore::BuryLocked(KeyPattern pattern, int64_t revision) {
  if (revision <= watched_revision_)
    return;  // the watch already delivered everything older
  tombstones_.emplace_back(std::move(pattern), revision);
}

void ClusterStore::AdvanceLocked(int64_t revision) {
  if (revision <= watched_revision_) return;
  watched_revision_ = revision;
  // Events arrive in revision order: none older than `revision` can come any more.
  std::erase_if(tombstones_, [&](const auto& t) { return t.second <= revision; });
}

void ClusterStore::OnEvents(const std::vector<RecordEvent>& events) {
  std::vector<Change> changes;
  {
    MutexLock lock(&mu_);
    int64_t reached = 0;
    for (const RecordEvent& ev : events) {
      reached = std::max(reached, ev.revision);
      if (ev.is_floor) continue;  // floors are read by each commit from etcd itself
      ApplyLocked(ev.key, ev.record, ev.revision);
      auto seen = watched_.find(ev.key);
      if (!ev.record) {
        if (seen == watched_.end()) continue;
        changes.push_back(Change{ev.key, seen->second.version, ChangeKind::kDelete});
        watched_.erase(seen);
        continue;
      }
      const bool patch = seen != watched_.end() &&
                         seen->second.base.name == ev.record->base.name &&
                         ev.record->deltas.size() > seen->second.deltas.size();
      changes.push_back(Change{ev.key, ev.record->version,
                               patch ? ChangeKind::kPatch : ChangeKind::kPut});
      watched_[ev.key] = *ev.record;
    }
    AdvanceLocked(reached);
  }
  // Published in revision order, after the index shows it (a get issued after the
  // change is seen returns that version or a newer one).
  for (const auto& c : changes) feed_.Publish(c);
}

std::string ClusterStore::NewPayloadName(const std::string& key) const {
  return s3_.root + "/cluster/objects/" + key + "/" + options_.server_id + "-" +
         NewUuid4() + ".arrow";
}

arrow::Status ClusterStore::WritePayload(const std::string& name, const Payload& payload,
                                         int64_t* bytes) {
  auto out = s3_.fs->OpenOutputStream(name);
  if (!out.ok()) return S3Unavailable(out.status(), "put " + name);
  arrow::Status st;
  if (payload.table) {
    st = WriteNativeFile(out->get(), *payload.table);
    *bytes = 0;
    for (const auto& b : payload.table->batches)
      *bytes += arrow::util::TotalBufferSize(*b);
  } else {
    auto data = payload.data ? payload.data : std::make_shared<arrow::Buffer>(nullptr, 0);
    st = WriteOpaqueFile(out->get(), kVersionInRecord, data);
    *bytes = data->size();
  }
  // S3 acknowledges the object at Close: only then may the commit name it.
  arrow::Status closed = (*out)->Close();
  if (st.ok()) st = closed;
  return S3Unavailable(st, "put " + name);
}

arrow::Result<std::shared_ptr<arrow::Buffer>> ClusterStore::ReadPayload(
    const std::string& name) {
  auto in = s3_.fs->OpenInputStream(name);
  if (!in.ok()) return S3Unavailable(in.status(), "get " + name);
  auto all = (*in)->Read(std::numeric_limits<int64_t>::max());
  if (!all.ok()) return S3Unavailable(all.status(), "get " + name);
  return *std::move(all);
}

arrow::Result<Object::Ptr> ClusterStore::Assemble(const std::string& key,
                                                  const ObjectRecord& record) {
  auto handle = cache_.Lookup(key);
  Object::Ptr object;
  size_t have = 0;  // deltas of `record` already in `object`
  if (handle && handle.value().base_name == record.base.name &&
      handle.value().object->base_version() == record.base.version &&
      handle.value().object->version() <= record.version) {
    object = handle.value().object;
    have = object->deltas().size();
    if (object->version() == record.version) return object;
  }
  if (!object) {
    ARROW_ASSIGN_OR_RAISE(auto bytes, ReadPayload(record.base.name));
    ARROW_ASSIGN_OR_RAISE(
        Object::Ptr base,
        ReadBaseFile(std::make_shared<arrow::io::BufferReader>(std::move(bytes))));
    object = base->is_native() ? Object::MakeNative(record.base.version, *base->table())
                               : Object::MakeOpaque(record.base.version, base->data());
  }
  for (size_t i = have; i < record.deltas.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto bytes, ReadPayload(record.deltas[i].name));
    ARROW_ASSIGN_OR_RAISE(
        Delta delta,
        ReadDeltaFile(std::make_shared<arrow::io::BufferReader>(std::move(bytes))));
    delta.version = record.deltas[i].version;
    ARROW_ASSIGN_OR_RAISE(object, object->WithDelta(std::move(delta)));
  }
  if (cache_.Fits(object->memory_charge())) {
    (void)cache_.Insert(key, Cached{object, record.base.name}, object->memory_charge());
  }
  return object;
}

arrow::Result<WriteResult> ClusterStore::Put(const PutTarget& target, Payload payload) {
  const std::string id = target.has_object() ? target.object : NewUuid4();
  ARROW_ASSIGN_OR_RAISE(ObjectKey key,
                        ObjectKey::Parse(target.app + "/" + target.session + "/" + id));
  const std::string name = NewPayloadName(key.str());
  int64_t bytes = 0;
  ARROW_RETURN_NOT_OK(WritePayload(name, payload, &bytes));
  const bool native = payload.table.has_value();
  ARROW_ASSIGN_OR_RAISE(
      CommitResult done,
      EtcdUnavailable(meta_->Commit(
          key.str(), [&](const CommitInput& in) -> arrow::Result<ObjectRecord> {
            ObjectRecord r;
            r.version = in.version;
            r.base = PayloadRef{in.version, name, bytes};
            r.native = native;
            return r;
          })));
  // This server's index has it before the client hears of it (read your writes).
  Object::Ptr object =
      native ? Object::MakeNative(done.record.version, *std::move(payload.table))
             : Object::MakeOpaque(done.record.version,
                                  payload.data
                                      ? payload.data
                                      : std::make_shared<arrow::Buffer>(nullptr, 0));
  {
    MutexLock lock(&mu_);
    ApplyLocked(key.str(), done.record, done.revision);
    counted_.bytes_written += bytes;
  }
  if (cache_.Fits(object->memory_charge()))
    (void)cache_.Insert(key.str(), Cached{object, name}, object->memory_charge());
  // WATCH subscribers hear of it when the etcd watch delivers it, in revision order with
  // every other server's commits.
  return WriteResult{std::move(key), done.record.version};
}

arrow::Result<WriteResult> ClusterStore::Patch(const ObjectKey& key,
                                               std::shared_ptr<arrow::Buffer> delta) {
  bool known;
  {
    MutexLock lock(&mu_);
    known = index_.count(key.str()) > 0;
  }
  if (!known) {
    // A key this server has not heard of (yet: it may have been created through another
    // server within the watch lag): ask etcd before refusing, and refuse before writing a
    // payload (the commit below re-checks against etcd, which decides).
    ARROW_RETURN_NOT_OK(Refresh(key));
    MutexLock lock(&mu_);
    if (!index_.count(key.str())) {
      return arrow::Status::KeyError("Object ", key.str(), " not found");
    }
  }
  const std::string name = NewPayloadName(key.str());
  int64_t bytes = 0;
  ARROW_RETURN_NOT_OK(WritePayload(name, Payload{delta, std::nullopt}, &bytes));
  const int64_t max_deltas = options_.max_deltas;
  ARROW_ASSIGN_OR_RAISE(
      CommitResult done,
      EtcdUnavailable(meta_->Commit(
          key.str(), [&](const CommitInput& in) -> arrow::Result<ObjectRecord> {
            if (!in.current)
              return arrow::Status::KeyError("Object ", key.str(), " not found");
            // The same words as a single server's (store/object_store.cc): clients match
            // them.
            if (in.current->native) {
              return arrow::Status::Invalid(
                  "object ", key.str(),
                  " is a native Arrow table; PATCH applies only to "
                  "opaque objects (replace the "
                  "table with a PUT to the same key instead)");
            }
            if (max_deltas > 0 &&
                static_cast<int64_t>(in.current->deltas.size()) >= max_deltas) {
              return arrow::Status::Invalid("object ", key.str(),
                                            " has reached maximum delta count (",
                                            max_deltas, ")");
            }
            ObjectRecord r = *in.current;
            r.version = in.version;
            r.deltas.push_back(PayloadRef{in.version, name, bytes});
            return r;
          })));
  {
    MutexLock lock(&mu_);
    ApplyLocked(key.str(), done.record, done.revision);
    counted_.bytes_written += bytes;
  }
  return WriteResult{key, done.record.version};
}

arrow::Result<ReadResult> ClusterStore::Get(const ObjectKey& key,
                                            uint64_t client_version) {
  ObjectRecord record;
  {
    MutexLock lock(&mu_);
    auto it = index_.find(key.str());
    if (it == index_.end())
      return arrow::Status::KeyError("Object ", key.str(), " not found");
    record = it->second.record;
  }
  ARROW_ASSIGN_OR_RAISE(Object::Ptr object, Assemble(key.str(), record));
  GetPlan plan = PlanGet(*object, client_version);
  MutexLock lock(&mu_);
  switch (plan.kind) {
    case GetReplyKind::kNotModified:
      ++counted_.not_modified_replies;
      break;
    case GetReplyKind::kPatches:
      ++counted_.patch_replies;
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
  return ReadResult{std::move(object), plan};
}

arrow::Result<std::shared_ptr<arrow::Schema>> ClusterStore::NativeSchema(
    const ObjectKey& key) {
  {
    MutexLock lock(&mu_);
    auto it = index_.find(key.str());
    if (it == index_.end())
      return arrow::Status::KeyError("Object ", key.str(), " not found");
    if (!it->second.record.native) return std::shared_ptr<arrow::Schema>();
  }
  ARROW_ASSIGN_OR_RAISE(ReadResult read, Get(key, 0));
  return read.object->table() ? read.object->table()->schema : nullptr;
}

arrow::Result<int64_t> ClusterStore::Delete(const KeyPattern& pattern) {
  ARROW_ASSIGN_OR_RAISE(DeleteResult done,
                        EtcdUnavailable(meta_->DeleteAt(pattern.str())));
  // This server forgets them now (the watch confirms); other servers after the lag. Only
  // entries older than the delete go (a write committed after it stays), and a tombstone
  // keeps late watch events of older writes from bringing them back.
  std::vector<std::string> gone;
  {
    MutexLock lock(&mu_);
    BuryLocked(pattern, done.revision);
    for (auto it = index_.lower_bound(pattern.key_prefix());
         it != index_.end() && it->first.rfind(pattern.key_prefix(), 0) == 0;) {
      if (it->second.revision < done.revision && Matches(pattern, it->first)) {
        gone.push_back(it->first);
        it = index_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& k : gone) cache_.Erase(k);
  return done.removed;
}

void ClusterStore::StopWatchForTesting() {
  std::unique_ptr<EtcdWatch> watch;
  {
    MutexLock lock(&mu_);
    watch = std::move(watch_);
  }
  if (watch) watch->Cancel();  // a cancelled watch does not call OnWatchEnd
}

std::vector<std::string> ClusterStore::MemberEndpoints() const {
  std::vector<std::string> out;
  for (const auto& [id, endpoint] : members_->members()) {
    if (!endpoint.empty()) out.push_back(endpoint);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

arrow::Status ClusterStore::Refresh(const ObjectKey& key) {
  ARROW_ASSIGN_OR_RAISE(RecordRead read, EtcdUnavailable(meta_->Read(key.str())));
  MutexLock lock(&mu_);
  ApplyLocked(key.str(), read.record, read.revision);
  if (!read.record) {
    ARROW_ASSIGN_OR_RAISE(KeyPattern one, KeyPattern::Parse(key.str()));
    BuryLocked(std::move(one), read.revision);
  }
  return arrow::Status::OK();
}

arrow::Result<SweepResult> ClusterStore::SweepOrphans() {
  MutexLock sweep(&gc_mu_);
  SweepResult out;
  // One collector at a time: `<prefix>/gc` under the collector's member lease (gone when
  // it dies). Two collectors for a moment (a lease expiring mid-sweep) are still safe:
  // each deletes only what no record names.
  const std::string lock_key = options_.prefix + "/gc";
  const int64_t lease = members_->lease();
  if (lease == 0) return out;
  ARROW_ASSIGN_OR_RAISE(auto txn, EtcdUnavailable(etcd_->Txn(
                                      {Compare::Missing(lock_key)},
                                      {TxnOp::Put(lock_key, options_.server_id, lease)},
                                      {TxnOp::Get(lock_key)})));
  if (!txn.succeeded && (txn.ranges.empty() || txn.ranges[0].empty() ||
                         txn.ranges[0][0].value != options_.server_id)) {
    gc_marked_.clear();  // another server collects; our marks would be stale later
    return out;
  }
  out.collector = true;
  // List first, then read the records: a payload listed here whose commit happened
  // before the snapshot is named by the snapshot. One committed after it was written
  // less than gc_grace ago (the grace period's assumption).
  arrow::fs::FileSelector selector;
  selector.base_dir = s3_.root + "/cluster/objects";
  selector.recursive = true;
  selector.allow_not_found = true;
  auto listed = s3_.fs->GetFileInfo(selector);
  if (!listed.ok()) return S3Unavailable(listed.status(), "list " + selector.base_dir);
  ARROW_ASSIGN_OR_RAISE(MetadataSnapshot snap, EtcdUnavailable(meta_->Snapshot()));
  std::unordered_set<std::string> named;
  for (const auto& [key, record] : snap.records) {
    named.insert(record.base.name);
    for (const auto& d : record.deltas) named.insert(d.name);
  }
  const auto old_before = std::chrono::system_clock::now() - options_.gc_grace;
  std::set<std::string> marked;
  for (const auto& info : *listed) {
    if (!info.IsFile()) continue;
    ++out.listed;
    if (named.count(info.path())) {
      ++out.referenced;
      continue;
    }
    if (info.mtime() == arrow::fs::kNoTime || info.mtime() > old_before) {
      ++out.young;
      continue;
    }
    if (!gc_marked_.count(info.path())) {
      ++out.marked;
      marked.insert(info.path());
      continue;
    }
    arrow::Status st = s3_.fs->DeleteFile(info.path());
    if (st.ok()) {
      ++out.collected;
    } else {
      marked.insert(info.path());  // tried again next sweep
      spdlog::warn("cluster: cannot collect orphan payload {}: {}", info.path(),
                   st.ToString());
    }
  }
  gc_marked_ = std::move(marked);
  return out;
}

void ClusterStore::GcLoop() {
  while (true) {
    {
      MutexLock lock(&gc_mu_);
      if (!gc_stop_) (void)gc_wake_.WaitFor(options_.gc_interval);
      if (gc_stop_) return;
    }
    auto swept = SweepOrphans();
    if (!swept.ok()) {
      spdlog::warn("cluster: orphan sweep failed: {}", swept.status().ToString());
    } else if (swept->collected > 0) {
      spdlog::info(
          "cluster: collected {} orphan payloads ({} listed, {} referenced, {} marked)",
          swept->collected, swept->listed, swept->referenced, swept->marked);
    }
  }
}

arrow::Result<std::vector<ObjectListing>> ClusterStore::List() const {
  MutexLock lock(&mu_);
  std::vector<ObjectListing> out;
  out.reserve(index_.size());
  for (const auto& [key, entry] : index_) {
    auto parsed = ObjectKey::Parse(key);
    if (!parsed.ok()) continue;
    int64_t bytes = entry.record.base.bytes;
    for (const auto& d : entry.record.deltas) bytes += d.bytes;
    out.push_back(ObjectListing{*std::move(parsed), entry.record.version, bytes});
  }
  return out;
}

StoreStats ClusterStore::stats() const {
  StoreStats s;
  {
    MutexLock lock(&mu_);
    s = counted_;
    s.objects = static_cast<int64_t>(index_.size());
  }
  const LruCacheStats c = cache_.stats();
  s.resident_bytes = c.bytes;
  s.resident_objects = c.entries;
  s.memory_evictions = c.evictions;
  return s;
}

}  // namespace foc::cluster
