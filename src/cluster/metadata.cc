#include "cluster/metadata.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <random>
#include <utility>

#include <nlohmann/json.hpp>

namespace foc::cluster {

namespace {

using json = nlohmann::json;

// A lost race retries; this many lost races in a row for one key means something is wrong
// (or the key is under a write storm no caller should wait through).
constexpr int kMaxCommitAttempts = 1000;
constexpr int64_t kSnapshotPage = 1000;

json RefJson(const PayloadRef& r) {
  return {{"version", r.version}, {"name", r.name}, {"bytes", r.bytes}};
}

PayloadRef ParseRef(const json& j) {
  PayloadRef r;
  r.version = j.at("version").get<uint64_t>();
  r.name = j.at("name").get<std::string>();
  r.bytes = j.at("bytes").get<int64_t>();
  return r;
}

uint64_t ParseFloor(const std::string& text) {
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string NewEpoch() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 2; ++i) {
    uint64_t x = dist(rd);
    for (int j = 0; j < 16; ++j, x >>= 4) out.push_back(kHex[x & 0xf]);
  }
  return out;
}

// The state one commit attempt starts from: the record and the key's floors, with the
// mod revisions the commit compares against.
struct KeyState {
  std::optional<ObjectRecord> record;
  int64_t record_revision = 0;
  uint64_t floor = 0;
  std::vector<int64_t> floor_revisions;  // one per FloorKeys entry
};

arrow::Result<KeyState> StateFrom(const std::vector<std::vector<KeyValue>>& ranges) {
  KeyState s;
  assert(!ranges.empty());
  if (!ranges[0].empty()) {
    ARROW_ASSIGN_OR_RAISE(s.record, DecodeRecord(ranges[0][0].value));
    s.record_revision = ranges[0][0].mod_revision;
  }
  for (size_t i = 1; i < ranges.size(); ++i) {
    int64_t rev = 0;
    if (!ranges[i].empty()) {
      s.floor = std::max(s.floor, ParseFloor(ranges[i][0].value));
      rev = ranges[i][0].mod_revision;
    }
    s.floor_revisions.push_back(rev);
  }
  return s;
}

}  // namespace

std::string EncodeRecord(const ObjectRecord& record) {
  json deltas = json::array();
  for (const auto& d : record.deltas) deltas.push_back(RefJson(d));
  json j = {{"version", record.version},
            {"base", RefJson(record.base)},
            {"deltas", deltas},
            {"native", record.native}};
  return j.dump();
}

arrow::Result<ObjectRecord> DecodeRecord(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return arrow::Status::Invalid("unreadable object record: ", text.substr(0, 200));
  }
  try {
    ObjectRecord r;
    r.version = j.at("version").get<uint64_t>();
    r.base = ParseRef(j.at("base"));
    for (const auto& d : j.at("deltas")) r.deltas.push_back(ParseRef(d));
    r.native = j.value("native", false);
    return r;
  } catch (const std::exception& e) {
    return arrow::Status::Invalid("malformed object record (", e.what(),
                                  "): ", text.substr(0, 200));
  }
}

ClusterMetadata::ClusterMetadata(EtcdClient* etcd, std::string prefix, std::string epoch)
    : etcd_(etcd),
      prefix_(std::move(prefix)),
      objects_(prefix_ + "/objects/"),
      floors_(prefix_ + "/floors/"),
      epoch_(std::move(epoch)) {}

arrow::Result<std::unique_ptr<ClusterMetadata>> ClusterMetadata::Open(
    EtcdClient* etcd, std::string prefix) {
  if (etcd == nullptr) return arrow::Status::Invalid("cluster metadata needs etcd");
  if (prefix.empty() || prefix.front() != '/' || prefix.back() == '/') {
    return arrow::Status::Invalid("cluster prefix '", prefix,
                                  "' must start with '/' and not end with one");
  }
  const std::string epoch_key = prefix + "/epoch";
  const std::string fresh = NewEpoch();
  ARROW_ASSIGN_OR_RAISE(
      auto txn, etcd->Txn({Compare::Missing(epoch_key)}, {TxnOp::Put(epoch_key, fresh)},
                          {TxnOp::Get(epoch_key)}));
  std::string epoch = fresh;
  if (!txn.succeeded) {
    if (txn.ranges.empty() || txn.ranges[0].empty()) {
      return arrow::Status::IOError("cluster epoch vanished while being read");
    }
    epoch = txn.ranges[0][0].value;
  }
  return std::unique_ptr<ClusterMetadata>(
      new ClusterMetadata(etcd, std::move(prefix), std::move(epoch)));
}

std::vector<std::string> ClusterMetadata::FloorKeys(const std::string& key) const {
  std::vector<std::string> out = {floors_ + key};
  size_t first = key.find('/');
  size_t second = first == std::string::npos ? first : key.find('/', first + 1);
  if (second != std::string::npos) out.push_back(floors_ + key.substr(0, second));
  if (first != std::string::npos) out.push_back(floors_ + key.substr(0, first) + "/*");
  return out;
}

arrow::Result<std::optional<ObjectRecord>> ClusterMetadata::Get(const std::string& key) {
  ARROW_ASSIGN_OR_RAISE(auto kv, etcd_->Get(objects_ + key));
  if (!kv.has_value()) return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(auto record, DecodeRecord(kv->value));
  return record;
}

arrow::Result<RecordRead> ClusterMetadata::Read(const std::string& key) {
  ARROW_ASSIGN_OR_RAISE(RangeResult range, etcd_->Range(objects_ + key));
  RecordRead out;
  out.revision = range.revision;
  if (!range.kvs.empty()) {
    ARROW_ASSIGN_OR_RAISE(out.record, DecodeRecord(range.kvs[0].value));
    out.revision = range.kvs[0].mod_revision;
  }
  return out;
}

arrow::Result<CommitResult> ClusterMetadata::Commit(
    const std::string& key,
    const std::function<arrow::Result<ObjectRecord>(const CommitInput&)>& mutate) {
  const std::string record_key = objects_ + key;
  const std::vector<std::string> floor_keys = FloorKeys(key);
  std::vector<TxnOp> reads = {TxnOp::Get(record_key)};
  for (const auto& f : floor_keys) reads.push_back(TxnOp::Get(f));

  // The first read is a transaction too, so the record and the floors come from one
  // revision; later attempts start from the failure branch of the lost race.
  ARROW_ASSIGN_OR_RAISE(auto first, etcd_->Txn({}, reads));
  ARROW_ASSIGN_OR_RAISE(KeyState state, StateFrom(first.ranges));
  for (int attempt = 1; attempt <= kMaxCommitAttempts; ++attempt) {
    const uint64_t current = state.record ? state.record->version : 0;
    const uint64_t above = std::max(current, state.floor);
    if (above == std::numeric_limits<uint64_t>::max()) {
      return arrow::Status::Invalid("key ", key, ": versions exhausted (", above, ")");
    }
    CommitInput input{state.record, above + 1};
    ARROW_ASSIGN_OR_RAISE(ObjectRecord next, mutate(input));
    if (next.version != input.version) {
      return arrow::Status::Invalid("commit of ", key, " built version ", next.version,
                                    " instead of ", input.version);
    }
    std::vector<Compare> compares = {
        Compare::ModRevisionIs(record_key, state.record_revision)};
    for (size_t i = 0; i < floor_keys.size(); ++i) {
      compares.push_back(Compare::ModRevisionIs(floor_keys[i], state.floor_revisions[i]));
    }
    ARROW_ASSIGN_OR_RAISE(
        auto txn,
        etcd_->Txn(compares, {TxnOp::Put(record_key, EncodeRecord(next))}, reads));
    if (txn.succeeded) return CommitResult{std::move(next), txn.revision, attempt};
    ARROW_ASSIGN_OR_RAISE(state, StateFrom(txn.ranges));
  }
  return arrow::Status::IOError("key ", key, ": commit lost ", kMaxCommitAttempts,
                                " races in a row");
}

arrow::Result<int64_t> ClusterMetadata::Delete(const std::string& pattern) {
  ARROW_ASSIGN_OR_RAISE(DeleteResult done, DeleteAt(pattern));
  return done.removed;
}

arrow::Result<DeleteResult> ClusterMetadata::DeleteAt(const std::string& pattern) {
  std::string floor_key = floors_ + pattern;
  std::string begin, end;
  if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, "/*") == 0) {
    begin = objects_ + pattern.substr(0, pattern.size() - 1);  // "<app>/"
    end = PrefixRangeEnd(begin);
  } else if (std::count(pattern.begin(), pattern.end(), '/') == 1) {
    begin = objects_ + pattern + "/";  // a session
    end = PrefixRangeEnd(begin);
  } else {
    begin = objects_ + pattern;  // one object
  }
  for (int attempt = 1; attempt <= kMaxCommitAttempts; ++attempt) {
    ARROW_ASSIGN_OR_RAISE(
        auto read, etcd_->Txn({}, {TxnOp::Get(begin, end), TxnOp::Get(floor_key)}));
    const auto& records = read.ranges[0];
    if (records.empty()) return DeleteResult{0, read.revision};
    uint64_t top = 0;
    int64_t floor_revision = 0;
    if (!read.ranges[1].empty()) {
      top = ParseFloor(read.ranges[1][0].value);
      floor_revision = read.ranges[1][0].mod_revision;
    }
    for (const auto& kv : records) {
      ARROW_ASSIGN_OR_RAISE(auto record, DecodeRecord(kv.value));
      top = std::max(top, record.version);
    }
    std::vector<Compare> compares = {Compare::ModRevisionIs(floor_key, floor_revision)};
    compares.push_back(end.empty()
                           ? Compare::ModRevisionIs(begin, records[0].mod_revision)
                           : Compare::RangeUnchangedSince(begin, end, read.revision));
    ARROW_ASSIGN_OR_RAISE(
        auto txn, etcd_->Txn(compares, {TxnOp::Put(floor_key, std::to_string(top)),
                                        TxnOp::Delete(begin, end)}));
    if (txn.succeeded) {
      return DeleteResult{txn.deleted.size() > 1 ? txn.deleted[1] : 0, txn.revision};
    }
  }
  return arrow::Status::IOError("delete ", pattern, ": lost ", kMaxCommitAttempts,
                                " races in a row");
}

arrow::Result<MetadataSnapshot> ClusterMetadata::Snapshot() {
  MetadataSnapshot snap;
  // Pages of one revision: the first page fixes it, later pages read at it.
  auto read_all = [&](const std::string& prefix,
                      const std::function<arrow::Status(const KeyValue&)>& each) {
    std::string from = prefix;
    const std::string end = PrefixRangeEnd(prefix);
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto page,
                            etcd_->Range(from, end, kSnapshotPage, snap.revision));
      if (snap.revision == 0) snap.revision = page.revision;
      for (const auto& kv : page.kvs) ARROW_RETURN_NOT_OK(each(kv));
      if (!page.more || page.kvs.empty()) return arrow::Status::OK();
      from = page.kvs.back().key + std::string(1, '\0');
    }
  };
  ARROW_RETURN_NOT_OK(read_all(objects_, [&](const KeyValue& kv) {
    ARROW_ASSIGN_OR_RAISE(auto record, DecodeRecord(kv.value));
    snap.records.emplace_back(kv.key.substr(objects_.size()), std::move(record));
    return arrow::Status::OK();
  }));
  ARROW_RETURN_NOT_OK(read_all(floors_, [&](const KeyValue& kv) {
    snap.floors.emplace_back(kv.key.substr(floors_.size()), ParseFloor(kv.value));
    return arrow::Status::OK();
  }));
  return snap;
}

arrow::Result<std::unique_ptr<EtcdWatch>> ClusterMetadata::Follow(
    int64_t revision, std::function<void(const std::vector<RecordEvent>&)> on_events,
    WatchEndCallback on_end) {
  const std::string all = prefix_ + "/";
  return etcd_->Watch(
      all, PrefixRangeEnd(all), revision + 1,
      [this, on_events = std::move(on_events)](const std::vector<WatchEvent>& events,
                                               int64_t) {
        std::vector<RecordEvent> out;
        for (const auto& ev : events) {
          RecordEvent r;
          r.revision = ev.kv.mod_revision;
          if (ev.kv.key.rfind(objects_, 0) == 0) {
            r.key = ev.kv.key.substr(objects_.size());
            if (ev.type == WatchEvent::Type::kPut) {
              auto record = DecodeRecord(ev.kv.value);
              if (!record.ok()) continue;  // not ours: never written by Commit
              r.record = std::move(*record);
            }
          } else if (ev.kv.key.rfind(floors_, 0) == 0) {
            if (ev.type != WatchEvent::Type::kPut) continue;
            r.key = ev.kv.key.substr(floors_.size());
            r.is_floor = true;
            r.floor = ParseFloor(ev.kv.value);
          } else {
            continue;  // members, epoch
          }
          out.push_back(std::move(r));
        }
        if (!out.empty()) on_events(out);
      },
      std::move(on_end));
}

}  // namespace foc::cluster
