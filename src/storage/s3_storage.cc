// The S3 storage engine.
//
// Layout below `<bucket>/<prefix>` (docs/storage.md, "S3 storage"):
//   <app>/<session>/<object>.<V>.base.arrow    opaque base of version V (Arrow IPC file)
//   <app>/<session>/<object>.<V>.table.arrow   native-table base of version V
//   <app>/<session>/<object>.<V>.delta.arrow   delta of version V
//   .flame-cache/instance-id                   this data set's id (created once)
//   .flame-cache/version-floors                compacted floors (one FloorLine each)
//   .flame-cache/floors/<hash>                 one floor recorded since the last
//   compaction .flame-cache/lease                         the running server's lease
//   (owner, expiry)
// V is zero-padded to 20 digits, so names sort by version. The files have exactly the
// schema and format of the disk engine's (storage/object_file.h writes and reads both).
//
// Why versions are in the names: startup lists the prefix and builds the index from the
// names and sizes alone, without reading any object (one LIST per 1000 objects).
//
// Write protocol. Every write is one PUT of a complete file (Arrow's output stream: a
// single PutObject below its part size, a multipart upload above it; either way the
// object appears whole or not at all) and is acknowledged only after S3 acknowledged it.
//   PUT of version V: PUT <object>.<V>.base.arrow; the object is new from here on. Then
//       the old base and the old deltas are deleted. A failure or a crash before those
//       deletes leaves them behind: they are *stale* (the highest base wins; deltas at or
//       below the base version are ignored) and startup deletes them.
//   PATCH of version V: PUT <object>.<V>.delta.arrow.
//   DELETE: delete the base (the object is gone from here on), then the deltas; deltas
//       without a base are orphans that startup deletes and reads never see.
//
// Errors. Every failure of S3 itself (unreachable, throttled, refused credentials,
// missing bucket) is an IOError tagged StorageUnavailableDetail (UNAVAILABLE on the
// wire), with S3's reason; Arrow retries each request a few times first (standard AWS
// retry strategy, 3 attempts).
//
// The lease: see AcquireLease.
#include "storage/s3_storage.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/filesystem/s3fs.h>
#include <arrow/io/memory.h>
#include <arrow/util/uri.h>
#include <spdlog/spdlog.h>

#include "base/check.h"
#include "base/mutex.h"
#include "storage/durable_file.h"
#include "storage/object_file.h"
#include "storage/storage_full.h"
#include "storage/storage_unavailable.h"

namespace foc {
namespace {

namespace fs = arrow::fs;
using Clock = std::chrono::system_clock;

constexpr char kInternalDir[] = ".flame-cache";
constexpr char kBaseKind[] = "base";
constexpr char kTableKind[] = "table";
constexpr char kDeltaKind[] = "delta";
constexpr int64_t kDefaultLeaseSeconds = 10;
constexpr int kVersionDigits = 20;
// IPC framing around a payload, for the capacity pre-check before the file size is known.
constexpr int64_t kFileOverhead = 1024;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

std::string Padded(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llu", kVersionDigits,
                static_cast<unsigned long long>(v));
  return buf;
}

// `<object>.<V>.<kind>.arrow` → (object, V, kind); nullopt for anything else.
struct ParsedName {
  std::string object;
  uint64_t version = 0;
  std::string kind;
};
std::optional<ParsedName> ParseName(std::string_view name) {
  constexpr std::string_view kSuffix = ".arrow";
  if (!name.ends_with(kSuffix)) return std::nullopt;
  name.remove_suffix(kSuffix.size());
  const size_t k = name.rfind('.');
  if (k == std::string_view::npos) return std::nullopt;
  std::string_view kind = name.substr(k + 1);
  if (kind != kBaseKind && kind != kTableKind && kind != kDeltaKind) return std::nullopt;
  name = name.substr(0, k);
  const size_t v = name.rfind('.');
  if (v == std::string_view::npos || v == 0) return std::nullopt;
  std::string_view digits = name.substr(v + 1);
  if (digits.size() != kVersionDigits) return std::nullopt;
  ParsedName out;
  auto [ptr, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), out.version);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  out.object = std::string(name.substr(0, v));
  out.kind = std::string(kind);
  return out;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string Hex16(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

// Floors as in the disk engine's log: "<version>\t<pattern>\t<fnv64 hex>\n".
std::string FloorLine(const VersionFloor& f) {
  std::string record = std::to_string(f.version) + "\t" + f.pattern;
  return record + "\t" + Hex16(Fnv1a(record)) + "\n";
}

std::optional<VersionFloor> ParseFloorLine(std::string_view line) {
  const size_t t2 = line.rfind('\t');
  if (t2 == std::string_view::npos) return std::nullopt;
  std::string_view record = line.substr(0, t2);
  if (line.substr(t2 + 1) != Hex16(Fnv1a(record))) return std::nullopt;
  const size_t t1 = record.find('\t');
  if (t1 == std::string_view::npos) return std::nullopt;
  VersionFloor f;
  auto [ptr, ec] = std::from_chars(record.data(), record.data() + t1, f.version);
  if (ec != std::errc() || ptr != record.data() + t1) return std::nullopt;
  f.pattern = std::string(record.substr(t1 + 1));
  return f;
}

void ParseFloors(std::string_view text, std::map<std::string, uint64_t>* out) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    auto floor = ParseFloorLine(text.substr(0, nl));
    text.remove_prefix(nl + 1);
    if (!floor) continue;
    auto& v = (*out)[floor->pattern];
    v = std::max(v, floor->version);
  }
}

struct Lease {
  std::string owner;
  int64_t expires_ms = 0;
  uint64_t seq = 0;
  std::string text;  // as stored, to tell a renewal apart
};

std::optional<Lease> ParseLease(const std::string& text) {
  Lease l;
  l.text = text;
  std::string_view rest(text);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "owner") l.owner = std::string(v);
    if (k == "expires_ms") std::from_chars(v.data(), v.data() + v.size(), l.expires_ms);
    if (k == "seq") std::from_chars(v.data(), v.data() + v.size(), l.seq);
  }
  if (l.owner.empty()) return std::nullopt;
  return l;
}

// What the engine knows about one stored object (built by Scan, kept by the writes).
struct Entry {
  uint64_t base_version = 0;
  bool native = false;
  int64_t base_bytes = 0;
  std::map<uint64_t, int64_t> deltas;  // version → file bytes
  int64_t bytes() const {
    int64_t n = base_bytes;
    for (const auto& [v, b] : deltas) n += b;
    return n;
  }
};

// Splits our query parameters off an s3:// URI; the rest goes to Arrow.
struct SplitUri {
  std::string arrow_uri;
  int64_t lease_seconds = kDefaultLeaseSeconds;
};

arrow::Result<SplitUri> SplitOurParams(const std::string& uri) {
  SplitUri out;
  const size_t q = uri.find('?');
  if (q == std::string::npos) {
    out.arrow_uri = uri;
    return out;
  }
  out.arrow_uri = uri.substr(0, q);
  std::string kept;
  std::string_view rest = std::string_view(uri).substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    rest.remove_prefix(amp == std::string_view::npos ? rest.size() : amp + 1);
    if (param.starts_with("lease_seconds=")) {
      std::string_view v = param.substr(14);
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out.lease_seconds);
      if (ec != std::errc() || ptr != v.data() + v.size() || out.lease_seconds < 1) {
        return arrow::Status::Invalid("lease_seconds must be a positive integer, not '",
                                      v, "'");
      }
      continue;
    }
    if (!kept.empty()) kept.push_back('&');
    kept.append(param);
  }
  if (!kept.empty()) out.arrow_uri += "?" + kept;
  return out;
}

// A failure of S3 itself (Arrow reports every S3 error as an IOError), as UNAVAILABLE
// with the reason. Other errors (an object that cannot be encoded, ...) pass through.
arrow::Status Unavailable(const arrow::Status& st, std::string_view what) {
  if (st.ok() || IsStorageUnavailable(st) || !st.IsIOError()) return st;
  return StorageUnavailableError("S3 storage unavailable: ", what, ": ", st.message());
}

class S3Storage final : public StorageEngine {
 public:
  S3Storage(S3StorageOptions options, std::string describe, std::string root,
            std::shared_ptr<fs::S3FileSystem> fs, int64_t lease_seconds)
      : options_(std::move(options)),
        describe_(std::move(describe)),
        root_(std::move(root)),
        internal_(root_ + "/" + kInternalDir),
        fs_(std::move(fs)),
        lease_seconds_(lease_seconds),
        owner_(NewUuid4()) {}

  ~S3Storage() override {
    {
      MutexLock lock(&lease_mu_);
      stopping_ = true;
    }
    lease_cv_.SignalAll();
    if (renewer_.joinable()) renewer_.join();
    if (lease_held_) {
      // A clean stop frees the prefix at once (a crash leaves it to the lease expiry).
      if (auto st = fs_->DeleteFile(internal_ + "/lease"); !st.ok())
        spdlog::warn("s3: cannot release the lease: {}", st.ToString());
    }
  }

  arrow::Status Init();

  std::string Describe() const override { return describe_; }
  arrow::Result<std::string> InstanceId() override { return instance_id_; }
  arrow::Status Scan(const std::function<void(StoredObjectInfo)>& visit) override;
  arrow::Result<Object::Ptr> Read(const ObjectKey& key) override;
  arrow::Result<std::shared_ptr<arrow::Schema>> ReadNativeSchema(
      const ObjectKey& key) override;
  arrow::Status Put(const ObjectKey& key, const Object& object) override;
  arrow::Status Append(const ObjectKey& key, const Object& object) override;
  arrow::Status Remove(const ObjectKey& key) override;
  arrow::Status RecordFloor(const VersionFloor& floor) override;
  arrow::Result<std::vector<VersionFloor>> LoadFloors() override;
  StorageUsage Usage() const override {
    MutexLock lock(&mu_);
    return {stored_, options_.capacity_bytes};
  }
  int64_t StoredBytes(const ObjectKey& key) const override {
    MutexLock lock(&mu_);
    auto it = entries_.find(key.str());
    return it == entries_.end() ? 0 : it->second.bytes();
  }

 private:
  std::string SessionDir(const ObjectKey& key) const {
    return root_ + "/" + std::string(key.app()) + "/" + std::string(key.session());
  }
  std::string FileOf(const ObjectKey& key, uint64_t version,
                     std::string_view kind) const {
    return SessionDir(key) + "/" + std::string(key.object()) + "." + Padded(version) +
           "." + std::string(kind) + ".arrow";
  }

  // One PUT of a complete file; returns its size. Aborted (nothing stored) on failure.
  arrow::Result<int64_t> PutFile(
      const std::string& path,
      const std::function<arrow::Status(arrow::io::OutputStream*)>& write) {
    auto out = fs_->OpenOutputStream(path);
    if (!out.ok()) return Unavailable(out.status(), "put " + path);
    arrow::Status st = write(out->get());
    arrow::Result<int64_t> size = st.ok() ? (*out)->Tell() : st;
    if (!size.ok()) {
      arrow::Status aborted = (*out)->Abort();
      if (!aborted.ok()) spdlog::warn("s3: abort of {}: {}", path, aborted.ToString());
      return Unavailable(size.status(), "put " + path);
    }
    st = (*out)->Close();
    if (!st.ok()) return Unavailable(st, "put " + path);
    return size;
  }

  arrow::Result<std::shared_ptr<arrow::Buffer>> GetFile(const std::string& path,
                                                        int64_t size) {
    fs::FileInfo info(path, fs::FileType::File);
    info.set_size(size);
    auto in = fs_->OpenInputFile(info);
    if (!in.ok()) return Unavailable(in.status(), "get " + path);
    auto buf = (*in)->ReadAt(0, size);
    if (!buf.ok()) return Unavailable(buf.status(), "get " + path);
    if ((*buf)->size() != size) {
      return StorageUnavailableError("S3 storage unavailable: get ", path, ": ",
                                     (*buf)->size(), " bytes instead of ", size);
    }
    return buf;
  }

  // The whole small object at `path`; nullopt when it does not exist.
  arrow::Result<std::optional<std::string>> GetSmall(const std::string& path) {
    auto info = fs_->GetFileInfo(path);
    if (!info.ok()) return Unavailable(info.status(), "stat " + path);
    if (info->type() == fs::FileType::NotFound) return std::optional<std::string>();
    ARROW_ASSIGN_OR_RAISE(auto buf, GetFile(path, info->size()));
    return std::optional<std::string>(buf->ToString());
  }

  arrow::Status PutSmall(const std::string& path, const std::string& content) {
    return PutFile(path,
                   [&](arrow::io::OutputStream* out) {
                     return out->Write(content.data(),
                                       static_cast<int64_t>(content.size()));
                   })
        .status();
  }

  void DeleteBestEffort(const std::vector<std::string>& paths, std::string_view why) {
    for (const auto& p : paths) {
      if (auto st = fs_->DeleteFile(p); !st.ok())
        spdlog::warn("s3: cannot delete {} ({}): {}", p, why, st.ToString());
    }
  }

  arrow::Status CheckCapacity(const std::string& key, int64_t bytes, bool replace) {
    if (options_.capacity_bytes <= 0) return arrow::Status::OK();
    MutexLock lock(&mu_);
    auto it = entries_.find(key);
    const int64_t old = it == entries_.end() ? 0 : it->second.bytes();
    const int64_t next = replace ? bytes : old + bytes;
    if (stored_ - old + next > options_.capacity_bytes) {
      return StorageLimitError(stored_ - old + next - options_.capacity_bytes,
                               "storage capacity reached: storing ", bytes, " bytes for ",
                               key, " would exceed the capacity of ",
                               options_.capacity_bytes, " bytes (", stored_,
                               " bytes stored)");
    }
    return arrow::Status::OK();
  }

  arrow::Status AcquireLease();
  arrow::Status WriteLease();
  void RenewLoop();

  const S3StorageOptions options_;
  const std::string describe_;
  const std::string root_;      // "<bucket>" or "<bucket>/<prefix>"
  const std::string internal_;  // root_/.flame-cache
  const std::shared_ptr<fs::S3FileSystem> fs_;
  const int64_t lease_seconds_;
  const std::string owner_;
  std::string instance_id_;

  // The index of stored objects and the capacity accounting.
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ FOC_GUARDED_BY(mu_);
  int64_t stored_ FOC_GUARDED_BY(mu_) = 0;

  // The floors recorded (one small object each): one RecordFloor/LoadFloors at a time.
  Mutex floors_mu_;
  std::map<std::string, uint64_t> floors_ FOC_GUARDED_BY(floors_mu_);

  Mutex lease_mu_;
  CondVar lease_cv_{&lease_mu_};
  bool stopping_ FOC_GUARDED_BY(lease_mu_) = false;
  // Set by Init before the renewer starts, read after it stopped.
  bool lease_held_ = false;
  // Written by WriteLease: by Init, then by the renewer thread only.
  uint64_t lease_seq_ = 0;
  std::thread renewer_;
};

// ---------------------------------------------------------------------------------------
// Start: bucket, lease, instance id

arrow::Status S3Storage::Init() {
  const std::string bucket = root_.substr(0, root_.find('/'));
  auto info = fs_->GetFileInfo(bucket);
  if (!info.ok()) return Unavailable(info.status(), "bucket " + bucket);
  if (info->type() == fs::FileType::NotFound) {
    return StorageUnavailableError("S3 storage unavailable: bucket '", bucket,
                                   "' does not exist (create it first; the cache never "
                                   "creates buckets)");
  }
  ARROW_RETURN_NOT_OK(AcquireLease());
  const std::string id_path = internal_ + "/instance-id";
  ARROW_ASSIGN_OR_RAISE(auto id, GetSmall(id_path));
  if (id) {
    while (!id->empty() && (id->back() == '\n' || id->back() == ' ')) id->pop_back();
  }
  if (id && !id->empty()) {
    instance_id_ = *id;
  } else {
    instance_id_ = NewUuid4();
    ARROW_RETURN_NOT_OK(PutSmall(id_path, instance_id_ + "\n"));
  }
  renewer_ = std::thread([this] { RenewLoop(); });
  return arrow::Status::OK();
}

arrow::Status S3Storage::WriteLease() {
  std::string text = "owner=" + owner_ +
                     "\nexpires_ms=" + std::to_string(NowMs() + lease_seconds_ * 1000) +
                     "\nseq=" + std::to_string(++lease_seq_) + "\n";
  return PutSmall(internal_ + "/lease", text);
}

// The lease keeps two servers off one prefix (they would overwrite each other's objects
// and floors). At start: no lease, or an expired one → take it. A live one → wait until
// it would expire; if its owner renewed it meanwhile, refuse to start; otherwise the
// owner is gone (crashed) and we take it. After writing ours we read it back once, so
// that of two servers starting at the same instant at most one proceeds. Renewed every
// third of its duration; deleted on a clean stop. Best effort until cluster mode: S3
// offers no compare-and-swap here, and the check relies on the servers' clocks agreeing.
arrow::Status S3Storage::AcquireLease() {
  const std::string path = internal_ + "/lease";
  ARROW_ASSIGN_OR_RAISE(auto text, GetSmall(path));
  if (text) {
    auto lease = ParseLease(*text);
    if (lease && lease->expires_ms > NowMs()) {
      spdlog::info(
          "s3: {} is leased by server {} until {} ms; waiting to see whether it "
          "renews the lease",
          describe_, lease->owner, lease->expires_ms);
      const int64_t wait_ms = std::min<int64_t>(lease->expires_ms - NowMs() + 200,
                                                lease_seconds_ * 1000 + 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      ARROW_ASSIGN_OR_RAISE(auto again, GetSmall(path));
      if (again && *again != lease->text) {
        auto now_lease = ParseLease(*again);
        return arrow::Status::IOError(
            "storage ", describe_, " is in use by another running server (lease owner ",
            now_lease ? now_lease->owner : std::string("?"),
            "): two servers must not share an S3 prefix (docs/storage.md); stop the "
            "other server or use another prefix");
      }
      spdlog::warn("s3: taking over the lease of server {}, which stopped renewing it",
                   lease->owner);
    } else if (lease) {
      spdlog::info("s3: taking over the expired lease of server {}", lease->owner);
    }
  }
  ARROW_RETURN_NOT_OK(WriteLease());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ARROW_ASSIGN_OR_RAISE(auto mine, GetSmall(path));
  auto lease = mine ? ParseLease(*mine) : std::nullopt;
  if (!lease || lease->owner != owner_) {
    return arrow::Status::IOError(
        "storage ", describe_,
        " was leased by another server starting at the same time (",
        lease ? lease->owner : std::string("no lease"),
        "): two servers must not share an S3 prefix (docs/storage.md)");
  }
  lease_held_ = true;
  return arrow::Status::OK();
}

void S3Storage::RenewLoop() {
  const auto period = std::chrono::milliseconds(lease_seconds_ * 1000 / 3);
  while (true) {
    {
      MutexLock lock(&lease_mu_);
      const auto deadline = std::chrono::steady_clock::now() + period;
      for (auto now = std::chrono::steady_clock::now(); !stopping_ && now < deadline;
           now = std::chrono::steady_clock::now()) {
        lease_cv_.WaitFor(deadline - now);
      }
      if (stopping_) return;
    }
    // Taken over while we could not renew it (an S3 outage longer than the lease): say so
    // loudly; two servers now write the prefix (docs/storage.md, "One server per
    // prefix").
    if (auto now = GetSmall(internal_ + "/lease"); now.ok() && *now) {
      auto lease = ParseLease(**now);
      if (lease && lease->owner != owner_) {
        spdlog::error(
            "s3: the lease of {} was taken over by server {} while this server "
            "could not renew it; two servers must not share an S3 prefix",
            describe_, lease->owner);
      }
    }
    if (auto st = WriteLease(); !st.ok())
      spdlog::warn("s3: cannot renew the lease: {}", st.ToString());
  }
}

// ---------------------------------------------------------------------------------------
// Index

arrow::Status S3Storage::Scan(const std::function<void(StoredObjectInfo)>& visit) {
  fs::FileSelector selector;
  selector.base_dir = root_;
  selector.recursive = true;
  selector.allow_not_found = true;
  auto listed = fs_->GetFileInfo(selector);
  if (!listed.ok()) return Unavailable(listed.status(), "list " + root_);
  struct Found {
    std::map<uint64_t, std::pair<int64_t, bool>> bases;  // version → (bytes, native)
    std::map<uint64_t, int64_t> deltas;
  };
  std::map<std::string, Found> found;
  const std::string prefix = root_ + "/";
  for (const auto& info : *listed) {
    if (info.type() != fs::FileType::File) continue;
    if (!info.path().starts_with(prefix)) continue;
    std::string_view rel = std::string_view(info.path()).substr(prefix.size());
    if (rel.starts_with(std::string(kInternalDir) + "/")) continue;
    const size_t s1 = rel.find('/');
    const size_t s2 = s1 == std::string_view::npos ? s1 : rel.find('/', s1 + 1);
    auto parsed = s2 == std::string_view::npos || rel.find('/', s2 + 1) != rel.npos
                      ? std::nullopt
                      : ParseName(rel.substr(s2 + 1));
    auto key = parsed ? ObjectKey::Make(rel.substr(0, s1),
                                        rel.substr(s1 + 1, s2 - s1 - 1), parsed->object)
                      : arrow::Result<ObjectKey>(arrow::Status::Invalid("foreign name"));
    if (!key.ok()) {
      spdlog::warn("s3: ignoring foreign object {}", info.path());
      continue;
    }
    Found& f = found[key->str()];
    if (parsed->kind == kDeltaKind) {
      f.deltas[parsed->version] = info.size();
    } else {
      f.bases[parsed->version] = {info.size(), parsed->kind == kTableKind};
    }
  }
  std::unordered_map<std::string, Entry> entries;
  int64_t stored = 0;
  for (auto& [k, f] : found) {
    ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(k));
    std::vector<std::string> stale;
    if (f.bases.empty()) {  // orphans of an interrupted DELETE
      for (const auto& [v, b] : f.deltas) stale.push_back(FileOf(key, v, kDeltaKind));
      DeleteBestEffort(stale, "orphan delta");
      continue;
    }
    auto top = std::prev(f.bases.end());
    Entry e;
    e.base_version = top->first;
    e.base_bytes = top->second.first;
    e.native = top->second.second;
    for (auto it = f.bases.begin(); it != top; ++it)
      stale.push_back(FileOf(key, it->first, it->second.second ? kTableKind : kBaseKind));
    for (const auto& [v, b] : f.deltas) {
      if (v <= e.base_version)
        stale.push_back(FileOf(key, v, kDeltaKind));
      else
        e.deltas[v] = b;
    }
    if (!stale.empty()) {
      spdlog::info("s3: removing {} stale files of {}", stale.size(), k);
      DeleteBestEffort(stale, "stale");
    }
    StoredObjectInfo info{key,
                          e.deltas.empty() ? e.base_version : e.deltas.rbegin()->first,
                          e.bytes(), static_cast<int32_t>(e.deltas.size()), e.native};
    stored += e.bytes();
    entries.emplace(k, std::move(e));
    visit(std::move(info));
  }
  MutexLock lock(&mu_);
  entries_ = std::move(entries);
  stored_ = stored;
  return arrow::Status::OK();
}

// ---------------------------------------------------------------------------------------
// Reads

arrow::Result<Object::Ptr> S3Storage::Read(const ObjectKey& key) {
  Entry e;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(key.str());
    if (it == entries_.end())
      return arrow::Status::KeyError("object ", key.str(), " not found");
    e = it->second;
  }
  const std::string base_path =
      FileOf(key, e.base_version, e.native ? kTableKind : kBaseKind);
  ARROW_ASSIGN_OR_RAISE(auto bytes, GetFile(base_path, e.base_bytes));
  auto base = ReadBaseFile(std::make_shared<arrow::io::BufferReader>(bytes));
  if (!base.ok())
    return base.status().WithMessage(base_path, ": ", base.status().message());
  if (e.deltas.empty()) return base;
  std::vector<Delta> deltas;
  deltas.reserve(e.deltas.size());
  for (const auto& [v, size] : e.deltas) {
    const std::string path = FileOf(key, v, kDeltaKind);
    ARROW_ASSIGN_OR_RAISE(auto dbytes, GetFile(path, size));
    auto delta = ReadDeltaFile(std::make_shared<arrow::io::BufferReader>(dbytes));
    if (!delta.ok())
      return delta.status().WithMessage(path, ": ", delta.status().message());
    deltas.push_back(std::move(*delta));
  }
  auto object = Object::Make(*base, std::move(deltas));
  if (!object.ok())
    return arrow::Status::Invalid(base_path, ": ", object.status().message());
  return object;
}

arrow::Result<std::shared_ptr<arrow::Schema>> S3Storage::ReadNativeSchema(
    const ObjectKey& key) {
  Entry e;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(key.str());
    if (it == entries_.end())
      return arrow::Status::KeyError("object ", key.str(), " not found");
    e = it->second;
  }
  if (!e.native) return std::shared_ptr<arrow::Schema>();
  const std::string path = FileOf(key, e.base_version, kTableKind);
  fs::FileInfo info(path, fs::FileType::File);
  info.set_size(e.base_bytes);
  auto in = fs_->OpenInputFile(info);  // ranged GETs of the footer only
  if (!in.ok()) return Unavailable(in.status(), "get " + path);
  auto schema = ReadFileSchema(*in);
  if (!schema.ok()) {
    if (schema.status().IsIOError()) return Unavailable(schema.status(), "get " + path);
    return schema.status().WithMessage(path, ": ", schema.status().message());
  }
  return schema;
}

// ---------------------------------------------------------------------------------------
// Writes

arrow::Status S3Storage::Put(const ObjectKey& key, const Object& object) {
  ARROW_RETURN_NOT_OK(
      CheckCapacity(key.str(), object.payload_bytes() + kFileOverhead, true));
  const bool native = object.is_native();
  const uint64_t version = object.base_version();
  const std::string path = FileOf(key, version, native ? kTableKind : kBaseKind);
  ARROW_ASSIGN_OR_RAISE(const int64_t size,
                        PutFile(path, [&](arrow::io::OutputStream* out) {
                          return native ? WriteNativeFile(out, *object.table())
                                        : WriteOpaqueFile(out, version, object.data());
                        }));
  // Committed. The old files are stale from here on.
  std::vector<std::string> stale;
  {
    MutexLock lock(&mu_);
    Entry& e = entries_[key.str()];
    const int64_t old = e.bytes();
    if (e.base_bytes > 0 && e.base_version != version)
      stale.push_back(FileOf(key, e.base_version, e.native ? kTableKind : kBaseKind));
    for (const auto& [v, b] : e.deltas) stale.push_back(FileOf(key, v, kDeltaKind));
    e = Entry{version, native, size, {}};
    stored_ += size - old;
    FOC_DCHECK_GE(stored_, size);  // the sum of every entry's bytes
  }
  DeleteBestEffort(stale, "replaced");
  return arrow::Status::OK();
}

arrow::Status S3Storage::Append(const ObjectKey& key, const Object& object) {
  if (object.deltas().empty())
    return arrow::Status::Invalid("append: the object has no delta");
  const Delta& delta = object.deltas().back();
  {
    MutexLock lock(&mu_);
    if (!entries_.contains(key.str()))
      return arrow::Status::KeyError("object ", key.str(), " not found");
  }
  const int64_t payload = delta.data ? delta.data->size() : 0;
  ARROW_RETURN_NOT_OK(CheckCapacity(key.str(), payload + kFileOverhead, false));
  ARROW_ASSIGN_OR_RAISE(
      const int64_t size,
      PutFile(FileOf(key, delta.version, kDeltaKind), [&](arrow::io::OutputStream* out) {
        return WriteOpaqueFile(out, delta.version, delta.data);
      }));
  MutexLock lock(&mu_);
  Entry& e = entries_[key.str()];
  // The store appends above the current version only, so this delta is the newest.
  FOC_DCHECK(e.deltas.empty() || e.deltas.rbegin()->first < delta.version);
  e.deltas[delta.version] = size;
  stored_ += size;
  return arrow::Status::OK();
}

arrow::Status S3Storage::Remove(const ObjectKey& key) {
  Entry e;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(key.str());
    if (it == entries_.end()) return arrow::Status::OK();
    e = it->second;
  }
  const std::string base = FileOf(key, e.base_version, e.native ? kTableKind : kBaseKind);
  if (auto st = fs_->DeleteFile(base); !st.ok()) {
    auto info = fs_->GetFileInfo(base);  // already gone is fine
    if (!info.ok() || info->type() != fs::FileType::NotFound)
      return Unavailable(st, "delete " + base);
  }
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(key.str());
    if (it != entries_.end()) {
      FOC_DCHECK_GE(stored_, it->second.bytes());
      stored_ -= it->second.bytes();
      entries_.erase(it);
    }
  }
  std::vector<std::string> deltas;
  for (const auto& [v, b] : e.deltas) deltas.push_back(FileOf(key, v, kDeltaKind));
  DeleteBestEffort(deltas, "orphan after delete");
  return arrow::Status::OK();
}

// ---------------------------------------------------------------------------------------
// Floors: one small object per recorded floor (one PUT, no read-modify-write), compacted
// into .flame-cache/version-floors by LoadFloors at start.

arrow::Status S3Storage::RecordFloor(const VersionFloor& floor) {
  MutexLock lock(&floors_mu_);
  uint64_t& v = floors_[floor.pattern];
  const uint64_t version = std::max(v, floor.version);
  ARROW_RETURN_NOT_OK(PutSmall(internal_ + "/floors/" + Hex16(Fnv1a(floor.pattern)),
                               FloorLine({floor.pattern, version})));
  v = version;
  return arrow::Status::OK();
}

arrow::Result<std::vector<VersionFloor>> S3Storage::LoadFloors() {
  MutexLock lock(&floors_mu_);
  std::map<std::string, uint64_t> floors;
  const std::string compacted = internal_ + "/version-floors";
  ARROW_ASSIGN_OR_RAISE(auto text, GetSmall(compacted));
  if (text) ParseFloors(*text, &floors);
  fs::FileSelector selector;
  selector.base_dir = internal_ + "/floors";
  selector.allow_not_found = true;
  auto singles = fs_->GetFileInfo(selector);
  if (!singles.ok()) return Unavailable(singles.status(), "list " + selector.base_dir);
  std::vector<std::string> merged;
  for (const auto& info : *singles) {
    if (info.type() != fs::FileType::File) continue;
    ARROW_ASSIGN_OR_RAISE(auto bytes, GetFile(info.path(), info.size()));
    ParseFloors(bytes->ToString(), &floors);
    merged.push_back(info.path());
  }
  if (!merged.empty()) {
    std::string content;
    for (const auto& [p, v] : floors) content += FloorLine({p, v});
    ARROW_RETURN_NOT_OK(PutSmall(compacted, content));
    DeleteBestEffort(merged, "compacted floor");
  }
  floors_ = floors;
  std::vector<VersionFloor> out;
  out.reserve(floors.size());
  for (const auto& [p, v] : floors) out.push_back({p, v});
  return out;
}

// The AWS SDK is initialised once per process, before any S3 option is parsed (the
// credential chain reads the SDK's configuration), and finalised at exit, after main has
// destroyed the engines. The exit handler is registered after the first client exists,
// so that it runs before the destructors of Arrow's own S3 statics.
arrow::Status InitializeS3Once() {
  static std::once_flag once;
  static arrow::Status status;
  std::call_once(once, [] { status = fs::EnsureS3Initialized(); });
  return status;
}

}  // namespace

std::string RedactS3Uri(const std::string& uri) {
  const size_t scheme = uri.find("://");
  const size_t at = uri.find('@');
  const size_t slash = uri.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos ||
      (slash != std::string::npos && at > slash)) {
    return uri;
  }
  return uri.substr(0, scheme + 3) + "***@" + uri.substr(at + 1);
}

arrow::Status S3Unavailable(const arrow::Status& st, std::string_view what) {
  return Unavailable(st, what);
}

arrow::Result<S3Location> ConnectS3(const std::string& uri) {
  const std::string shown = RedactS3Uri(uri);
  ARROW_ASSIGN_OR_RAISE(auto split, SplitOurParams(uri));
  ARROW_RETURN_NOT_OK(InitializeS3Once());
  std::string path;
  auto s3_options = fs::S3Options::FromUri(split.arrow_uri, &path);
  if (!s3_options.ok()) {
    return arrow::Status::Invalid("storage ", shown, ": ", s3_options.status().message());
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty() || path.front() == '/') {
    return arrow::Status::Invalid("storage ", shown,
                                  ": no bucket (s3://<bucket>/<prefix>)");
  }
  // A few quick retries, not the AWS SDK's default of ten with long backoffs: an outage
  // must surface as UNAVAILABLE within seconds, not stall writes for half a minute.
  s3_options->retry_strategy = fs::S3RetryStrategy::GetAwsStandardRetryStrategy(3);
  // Objects below the part size go up as one PutObject, not a three-request multipart
  // upload; failures then surface at Close, which every write checks before
  // acknowledging.
  s3_options->allow_delayed_open = true;
  if (s3_options->connect_timeout < 0) s3_options->connect_timeout = 2;
  if (s3_options->request_timeout < 0) s3_options->request_timeout = 30;
  auto s3 = fs::S3FileSystem::Make(*s3_options);
  if (!s3.ok()) return Unavailable(s3.status(), "connect to " + shown);
  static std::once_flag finalizer;
  std::call_once(finalizer, [] { std::atexit([] { (void)fs::EnsureS3Finalized(); }); });
  return S3Location{std::move(*s3), path, shown, split.lease_seconds};
}

arrow::Result<std::unique_ptr<StorageEngine>> OpenS3Storage(S3StorageOptions options) {
  ARROW_ASSIGN_OR_RAISE(S3Location where, ConnectS3(options.uri));
  const std::string shown = where.shown;
  auto engine = std::make_unique<S3Storage>(std::move(options), where.shown, where.root,
                                            std::move(where.fs), where.lease_seconds);
  if (auto st = engine->Init(); !st.ok()) {
    return st.WithMessage("storage ", shown, ": ", st.message());
  }
  return std::unique_ptr<StorageEngine>(std::move(engine));
}

}  // namespace foc
