// The disk storage engine.
//
// Layout (upstream's, upstream-server.md §6.3.1) below the root:
//   <app>/<session>/<object>.arrow              base (Arrow IPC file)
//   <app>/<session>/<object>.deltas/<n>.arrow    n-th delta (n decimal, no padding)
//   .flame-cache/instance-id                     this data set's id (created once)
//   .flame-cache/version-floors                  append-only log of version floors
//   .flame-cache/quarantine/<stamp>/...          unreadable or foreign files moved aside
//   .flame-cache/uploads/<random>.tmp            spooled uploads being received
// Key components never start with `.` (key/key.h), so every `.`-name is the engine's own:
// temporary files are `.<object>.<random>.tmp` (session directory) and
// `.<n>.<random>.tmp` (deltas directory).
//
// Write protocol. Every write creates a new file under a temporary name in the directory
// of its final name, writes and fsyncs it, renames it into place and fsyncs the
// directory: a reader (or a restart) sees the old file or the new one, never a torn one.
// The fault hook runs between the steps; its names are given in brackets.
//
// The directory fsyncs that acknowledge writes (put:dir-synced, patch:dir-synced,
// remove:dir-synced, and the parent's after a mkdir) go through a DirSyncer
// (durable_file.h): group commit. Each still returns only after an fsync of the directory
// that started after the caller's rename (or unlink, or mkdir), so each write is exactly
// as durable as with its own fsync; concurrent writers into one directory share one.
// A writer that finds its session (or deltas) directory just created by another writer
// whose fsync of the parent has not finished waits for an fsync of the parent too.
//
//   PUT (create or replace) of version V
//     0. If <object>.deltas exists without a base it is an orphan of an interrupted
//     DELETE:
//        remove it [put:orphan-removed]. If the old deltas hold upstream's version-0
//        rows, rewrite each one (atomically, one by one) with the version renumbering
//        gives it [put:legacy-delta-renumbered]: the meaning is unchanged, and afterwards
//        every old delta carries its real version, which is below V.
//     1. Create the session directory if needed (retrying if a concurrent DELETE removed
//     it).
//     2. Write `.<object>.<rand>.tmp`, fsync it [put:tmp-written].
//     3. rename over <object>.arrow [put:renamed]; fsync the session directory
//     [put:dir-synced].
//        The PUT is committed here.
//     4. Remove the old deltas: unlink each [put:stale-delta-removed], rmdir, fsync the
//     session
//        directory [put:deltas-removed].
//   A crash between 3 and 4 leaves the new base with old deltas. They are *stale*: the
//   store gives a replacing base a version above every version the key ever had, so each
//   old delta has version <= V. Reads ignore deltas whose version is <= the base version,
//   and recovery deletes them, so the object is wholly new.
//
//   PUT of a spooled upload (BeginUpload, PutSpooled): the payload was written to
//   `.flame-cache/uploads/<random>.tmp` as it arrived, at its offset in an opaque base
//   file (OpaqueFileSpool). Steps 0, 3 and 4 as above; step 2 writes the framing for V
//   around the payload and fsyncs [put:tmp-written]; step 3 renames the spool from
//   uploads/ over <object>.arrow (creating the session directory first, again if a
//   concurrent DELETE removed it). Before the rename the spool is no object: dropped, it
//   is removed; after a crash, Init removes everything in uploads/ before any write.
//
//   PATCH (append delta of version V)
//     1. The base must exist (else KeyError). Create <object>.deltas if needed (fsync
//     parent).
//     2. n = highest existing index + 1 (stale files included, so names never collide).
//     3. Write `.<n>.<rand>.tmp` in the deltas directory, fsync it [patch:tmp-written].
//     4. rename to <n>.arrow [patch:renamed]; fsync the deltas directory
//     [patch:dir-synced].
//   Before 4 the delta does not exist; after it, it does: the object is old or new.
//
//   DELETE
//     1. unlink <object>.arrow [remove:base-unlinked]; fsync the session directory
//        [remove:dir-synced]. The object is gone from here on.
//     2. Remove <object>.deltas (each file [remove:delta-unlinked], then the directory)
//        [remove:deltas-removed].
//     3. rmdir the session and app directories if they became empty (rmdir only succeeds
//     on
//        an empty directory, and a concurrent PUT into the same session retries its mkdir
//        if its directory vanished, so this never races a write).
//   A crash after 1 leaves an *orphan* deltas directory (deltas without a base): recovery
//   removes it, and PUT removes it before writing a new base (step 0).
//
//   VERSION FLOOR (RecordFloor; the store records it before removing the keys it covers)
//     Append `<version>\t<pattern>\t<fnv1a-64>\n` at the log's end, fsync (and the
//     directory when the log was created). Only then are keys removed, so after a crash
//     the floor is durable or the keys are still there. A failed append is cut off again
//     (ftruncate to the old end) so that no later line is glued to a partial one; a torn
//     tail found at startup is cut off in place before anything is appended.
//     Full disk: a DELETE must be able to free space, yet its floor needs a few bytes
//     first. `.flame-cache/version-floors.reserve` holds 64 KiB (~600 lines) written
//     and fsynced in advance; an append that fails with ENOSPC removes the reserve and
//     retries the same append + fsync, so the floor is exactly as durable as on a disk
//     with room and the DELETE goes on to free space. The reserve is written again by
//     the next RecordFloor (or start) that finds room.
//
// Recovery (Scan, at startup, before any write): removes `.`-prefixed temporary files,
// stale deltas (version <= base version) and orphan deltas directories; moves unreadable
// bases (with their deltas) and foreign files to the quarantine folder and logs them;
// removes empty session/app directories. It indexes each object from its file footer and
// the `version` column of its base and last delta only (payload bytes estimated from file
// sizes), so its time does not grow with stored bytes.
//
// Reads memory-map files: an uncompressed payload is a slice of the mapping, shared by
// the returned object (the mapping stays valid after the file is replaced or unlinked;
// files are never modified in place). Files are written uncompressed (docs/storage.md,
// "Compression"); ZSTD-compressed files written by upstream are read as well.
#include "storage/disk_storage.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arrow/buffer.h>
#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <spdlog/spdlog.h>

#include "base/check.h"
#include "base/mutex.h"
#include "storage/durable_file.h"
#include "storage/object_file.h"
#include "storage/scan_prefetch.h"
#include "storage/storage_dir.h"
#include "storage/storage_full.h"

namespace foc {
namespace {

constexpr const char* kInternalDir = kStorageInternalDir;
// Files up to this size are read whole when only their header is needed (see Scan).
constexpr int64_t kWholeReadBytes = int64_t{64} * 1024;
static_assert(static_cast<int64_t>(ScanPrefetcher::kPrefetchBytes) == kWholeReadBytes,
              "the prefetcher reads what the scan reads of a small file");
// Threads reading ahead of the startup scan. 100,000 objects from a cold page cache
// (bench/startup.py --cold): see docs/benchmarks.md for the count chosen.
constexpr int kScanPrefetchThreads = 16;
// Threads of the startup scan itself (sessions in parallel): it is CPU-bound once the
// read-ahead has brought the files in.
const int kScanThreads =
    std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
constexpr char kInstanceIdFile[] = "instance-id";
constexpr char kFloorsFile[] = "version-floors";
// Preallocated space that a DELETE on a full disk gives up to append its version floor
// (see "Version floors" above); ~600 floor lines.
constexpr char kFloorReserveFile[] = "version-floors.reserve";
constexpr int64_t kFloorReserveBytes = int64_t{64} * 1024;
// Floors one app may keep in the log before they are merged into one `app/*` floor.
constexpr size_t kMaxFloorsPerApp = 256;
constexpr char kQuarantineDir[] = "quarantine";
// Spooled uploads (BeginUpload): `<random>.tmp`, renamed into place by PutSpooled.
constexpr char kUploadsDir[] = "uploads";
constexpr std::string_view kBaseSuffix = ".arrow";
constexpr std::string_view kDeltasSuffix = ".deltas";
constexpr std::string_view kTmpSuffix = ".tmp";
// IPC framing around a payload (schema, footer, padding): used for the capacity pre-check
// before the exact file size is known.
constexpr int64_t kFileOverhead = 1024;
constexpr int kMkdirAttempts = 8;

struct ObjectPaths {
  std::string app_dir;
  std::string session_dir;
  std::string base;
  std::string deltas;
};

// A delta file name `<n>.arrow` → n; nullopt for anything else.
std::optional<uint64_t> DeltaIndex(std::string_view name) {
  if (!name.ends_with(kBaseSuffix)) return std::nullopt;
  std::string_view stem = name.substr(0, name.size() - kBaseSuffix.size());
  if (stem.empty() || (stem.size() > 1 && stem.front() == '0')) return std::nullopt;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(stem.data(), stem.data() + stem.size(), n);
  if (ec != std::errc() || ptr != stem.data() + stem.size()) return std::nullopt;
  return n;
}

struct DeltaFile {
  uint64_t index;
  std::string path;
};

// FNV-1a 64 of a floor record, guarding each log line against torn appends.
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string FloorLine(const VersionFloor& f) {
  std::string record = std::to_string(f.version) + "\t" + f.pattern;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(Fnv1a(record)));
  return record + "\t" + hex + "\n";
}

std::optional<VersionFloor> ParseFloorLine(std::string_view line) {
  const size_t t2 = line.rfind('\t');
  if (t2 == std::string_view::npos) return std::nullopt;
  std::string_view record = line.substr(0, t2);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(Fnv1a(record)));
  if (line.substr(t2 + 1) != hex) return std::nullopt;
  const size_t t1 = record.find('\t');
  if (t1 == std::string_view::npos) return std::nullopt;
  VersionFloor f;
  auto [ptr, ec] = std::from_chars(record.data(), record.data() + t1, f.version);
  if (ec != std::errc() || ptr != record.data() + t1) return std::nullopt;
  f.pattern = std::string(record.substr(t1 + 1));
  return f;
}

// Logs a failed best-effort step (cleanup that recovery would redo anyway).
void LogIfError(const arrow::Status& st) {
  if (!st.ok()) spdlog::warn("storage: {}", st.ToString());
}

// fsync of `dir` (through `syncer`), or of the nearest existing ancestor up to `root`
// when `dir` was removed meanwhile (a concurrent DELETE removed the emptied directory:
// that removal is what must be durable then).
arrow::Status SyncDirOrAncestor(DirSyncer* syncer, std::string dir,
                                const std::string& root) {
  while (true) {
    arrow::Status st = syncer->Sync(dir);
    if (st.ok() || !IsNotFound(st) || dir.size() <= root.size()) return st;
    dir = dir.substr(0, dir.rfind('/'));
  }
}

// A spooled upload: an OpaqueFileSpool in .flame-cache/uploads/, removed when dropped
// unless PutSpooled renamed it into place (or a simulated crash left it, as a real one
// would, for recovery to remove).
class DiskUploadSpool final : public UploadSpool {
 public:
  explicit DiskUploadSpool(std::unique_ptr<OpaqueFileSpool> file)
      : file_(std::move(file)) {}
  ~DiskUploadSpool() override {
    const std::string path = file_->path();
    file_.reset();  // closed before it is removed
    if (!committed_ && !crashed_) LogIfError(RemoveFile(path));
  }
  DiskUploadSpool(const DiskUploadSpool&) = delete;
  DiskUploadSpool& operator=(const DiskUploadSpool&) = delete;

  arrow::Status Append(const arrow::Buffer& bytes) override {
    FOC_DCHECK(!committed_);
    return file_->Append(bytes.data(), bytes.size());
  }
  int64_t payload_bytes() const override { return file_->payload_bytes(); }

  OpaqueFileSpool* file() const { return file_.get(); }
  bool committed() const { return committed_; }
  void MarkCommitted() { committed_ = true; }
  void MarkCrashed() { crashed_ = true; }

 private:
  std::unique_ptr<OpaqueFileSpool> file_;
  bool committed_ = false;
  bool crashed_ = false;
};

class DiskStorage final : public StorageEngine {
 public:
  DiskStorage(DiskStorageOptions options, std::shared_ptr<DirSyncer> syncer)
      : options_(std::move(options)),
        root_(options_.root),
        internal_(root_ + "/" + kInternalDir),
        uploads_(internal_ + "/" + kUploadsDir),
        syncer_(syncer ? std::move(syncer) : std::make_shared<DirSyncer>()) {}

  arrow::Status Init() {
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
    if (ec)
      return arrow::Status::IOError("create storage root ", root_, ": ", ec.message());
    if (!IsDirectory(root_))
      return arrow::Status::IOError("storage root ", root_, " is not a directory");
    // Ours, empty or upstream-shaped, and only one server at a time (storage_dir.h):
    // checked before anything in the directory is created, moved or removed.
    ARROW_RETURN_NOT_OK(CheckStorageDirOwnership(root_));
    ARROW_RETURN_NOT_OK(MakeDir(root_, internal_).status());
    if (options_.lock_directory) {
      ARROW_ASSIGN_OR_RAISE(lock_, StorageDirLock::Acquire(root_, internal_));
    }
    ARROW_RETURN_NOT_OK(LoadOrCreateInstanceId());
    // Spools of uploads a crash interrupted: never objects, removed before any write.
    ARROW_RETURN_NOT_OK(RemoveTree(uploads_));
    ARROW_RETURN_NOT_OK(MakeDir(internal_, uploads_).status());
    // Compacts the log and drops a torn tail before appends.
    ARROW_RETURN_NOT_OK(LoadFloors().status());
    MutexLock lock(&floors_mu_);
    floor_reserve_ok_ = RestoreFloorReserve();
    if (!floor_reserve_ok_)
      spdlog::warn("storage: no room for the version-floor reserve in {} yet", internal_);
    return arrow::Status::OK();
  }

  std::string Describe() const override { return "disk:" + root_; }
  arrow::Result<std::string> InstanceId() override { return instance_id_; }

  arrow::Status Scan(const std::function<void(StoredObjectInfo)>& visit) override;
  arrow::Result<Object::Ptr> Read(const ObjectKey& key) override;
  arrow::Result<std::shared_ptr<arrow::Schema>> ReadNativeSchema(
      const ObjectKey& key) override;
  arrow::Status Put(const ObjectKey& key, const Object& object) override;
  arrow::Result<std::unique_ptr<UploadSpool>> BeginUpload() override;
  arrow::Status PutSpooled(const ObjectKey& key, uint64_t version,
                           UploadSpool* spool) override;
  arrow::Status Append(const ObjectKey& key, const Object& object) override;
  arrow::Status Remove(const ObjectKey& key) override;
  arrow::Status RecordFloor(const VersionFloor& floor) override;
  arrow::Result<std::vector<VersionFloor>> LoadFloors() override;
  arrow::Result<std::vector<LocalObjectFile>> LocalFiles(const ObjectKey& key) override;

  StorageUsage Usage() const override {
    MutexLock lock(&usage_mu_);
    return {stored_, options_.capacity_bytes};
  }
  int64_t StoredBytes(const ObjectKey& key) const override {
    MutexLock lock(&usage_mu_);
    auto it = sizes_.find(key.str());
    return it == sizes_.end() ? 0 : it->second;
  }

 private:
  // One write in progress: owns its temporary file until it is renamed into place, and
  // knows whether the fault hook "crashed" it (then nothing is cleaned up).
  struct WriteOp {
    std::string temp;
    bool crashed = false;
    ~WriteOp() {
      if (!temp.empty() && !crashed) LogIfError(RemoveFile(temp));
    }
  };

  arrow::Status Step(WriteOp* op, std::string_view name) {
    if (!options_.fault_hook) return arrow::Status::OK();
    arrow::Status st = options_.fault_hook(name);
    if (!st.ok()) op->crashed = true;
    return st;
  }

  ObjectPaths PathsOf(const ObjectKey& key) const {
    ObjectPaths p;
    p.app_dir = root_ + "/" + std::string(key.app());
    p.session_dir = p.app_dir + "/" + std::string(key.session());
    p.base = p.session_dir + "/" + std::string(key.object()) + std::string(kBaseSuffix);
    p.deltas =
        p.session_dir + "/" + std::string(key.object()) + std::string(kDeltasSuffix);
    return p;
  }

  // The numeric delta files of `dir`, by index (empty if the directory is missing).
  arrow::Result<std::vector<DeltaFile>> ListDeltas(const std::string& dir) const {
    std::vector<DeltaFile> out;
    auto entries = ListDir(dir);
    if (!entries.ok()) {
      if (IsNotFound(entries.status())) return out;
      return entries.status();
    }
    for (const auto& e : *entries) {
      if (!e.is_file) continue;
      if (auto n = DeltaIndex(e.name)) out.push_back({*n, dir + "/" + e.name});
    }
    std::sort(out.begin(), out.end(),
              [](const DeltaFile& a, const DeltaFile& b) { return a.index < b.index; });
    return out;
  }

  // Capacity: charges `new_bytes` for `key` (replacing its current charge when
  // `replace`).
  arrow::Status Charge(const std::string& key, int64_t new_bytes, bool replace,
                       bool check) {
    FOC_DCHECK_GE(new_bytes, 0);
    MutexLock lock(&usage_mu_);
    auto it = sizes_.find(key);
    const int64_t old = it == sizes_.end() ? 0 : it->second;
    const int64_t next = replace ? new_bytes : old + new_bytes;
    FOC_DCHECK_GE(old, 0);
    FOC_DCHECK_GE(stored_, old);  // the sum of sizes_ includes this key's
    if (check && options_.capacity_bytes > 0 &&
        stored_ - old + next > options_.capacity_bytes) {
      return StorageLimitError(stored_ - old + next - options_.capacity_bytes,
                               "disk capacity reached: storing ",
                               next - (replace ? 0 : old), " bytes for ", key,
                               " would exceed the capacity of ", options_.capacity_bytes,
                               " bytes (", stored_, " bytes stored)");
    }
    if (check) return arrow::Status::OK();
    stored_ += next - old;
    sizes_[key] = next;
    FOC_DCHECK_GE(stored_, next);
    return arrow::Status::OK();
  }
  void Uncharge(const std::string& key) {
    MutexLock lock(&usage_mu_);
    auto it = sizes_.find(key);
    if (it == sizes_.end()) return;
    FOC_DCHECK_GE(stored_, it->second);
    stored_ -= it->second;
    sizes_.erase(it);
  }

  // Creates the session directory (and app directory) of `p`. Usually it exists: one
  // stat(2) then.
  arrow::Status EnsureSessionDir(const ObjectPaths& p) {
    if (IsDirectory(p.session_dir)) {
      ARROW_RETURN_NOT_OK(AwaitDirCreation(root_, p.app_dir));
      return AwaitDirCreation(p.app_dir, p.session_dir);
    }
    ARROW_RETURN_NOT_OK(EnsureDir(root_, p.app_dir));
    return EnsureDir(p.app_dir, p.session_dir);
  }

  // Creates directory `dir` in `parent` if missing. Whoever creates it fsyncs `parent`
  // before going on; whoever finds it created by a writer whose fsync of `parent` has not
  // finished yet fsyncs `parent` too (AwaitDirCreation), so that no write is acknowledged
  // in a directory whose own entry is not durable.
  arrow::Status EnsureDir(const std::string& parent, const std::string& dir) {
    if (IsDirectory(dir)) return AwaitDirCreation(parent, dir);
    {
      MutexLock lock(&creating_mu_);
      ++creating_[dir];
    }
    const bool created = ::mkdir(dir.c_str(), 0755) == 0;
    const int err = errno;
    arrow::Status synced = created ? syncer_->Sync(parent) : arrow::Status::OK();
    // After a failed fsync the entry may still be volatile: `dir` then stays marked, so
    // every later writer into it fsyncs `parent` itself before it is acknowledged.
    if (synced.ok()) {
      MutexLock lock(&creating_mu_);
      if (--creating_[dir] == 0) creating_.erase(dir);
    }
    if (created) return synced;
    if (err == EEXIST && IsDirectory(dir)) return AwaitDirCreation(parent, dir);
    return FileError(err == EEXIST ? ENOTDIR : err, "create directory", dir);
  }

  // `dir` exists: if another writer created it and has not finished its fsync of
  // `parent`, fsync `parent` (shared through the syncer) so that `dir`'s entry is
  // durable before anything written into it is acknowledged.
  arrow::Status AwaitDirCreation(const std::string& parent, const std::string& dir) {
    {
      MutexLock lock(&creating_mu_);
      if (!creating_.contains(dir)) return arrow::Status::OK();
    }
    return syncer_->Sync(parent);
  }

  // Writes a new synced temporary file in `dir` (created by `ensure_dir`, retried when a
  // concurrent DELETE removed the directory in between). Returns the file size.
  arrow::Result<int64_t> WriteTemp(
      WriteOp* op, const std::string& dir, std::string_view stem,
      const std::function<arrow::Status()>& ensure_dir,
      const std::function<arrow::Status(arrow::io::OutputStream*)>& write) {
    for (int attempt = 0;; ++attempt) {
      if (arrow::Status st = ensure_dir(); !st.ok()) {
        // A concurrent DELETE may remove an empty app directory between our mkdirs.
        if (IsNotFound(st) && attempt + 1 < kMkdirAttempts) continue;
        return st;
      }
      op->temp =
          dir + "/." + std::string(stem) + "." + RandomHex(12) + std::string(kTmpSuffix);
      auto size = WriteFileSynced(op->temp, write);
      if (size.ok()) return size;
      if (IsNotFound(size.status()) && !PathExists(op->temp) &&
          attempt + 1 < kMkdirAttempts) {
        op->temp.clear();  // never created: the directory vanished; create it again
        continue;
      }
      return size.status();
    }
  }

  arrow::Status RemoveDeltaFiles(WriteOp* op, const std::string& dir,
                                 std::string_view step);
  // The PUT protocol (file comment) around `write`, which writes the new base's file and
  // returns its size, and `rename`, which renames it over `p.base`.
  arrow::Status PutBase(const ObjectKey& key, const ObjectPaths& p, int64_t payload_bytes,
                        WriteOp* op, const std::function<arrow::Result<int64_t>()>& write,
                        const std::function<arrow::Status()>& rename);
  arrow::Status RenumberLegacyDeltas(WriteOp* op, const ObjectPaths& p);
  arrow::Status LoadOrCreateInstanceId();
  arrow::Status WriteInternalFile(const std::string& name, const std::string& content);

  // Scan helpers. ScanApp lists an app's sessions (removing and quarantining what is not
  // one) and adds the valid ones to `sessions`; Scan then runs ScanSession on them from
  // kScanThreads threads, `visit` serialised.
  void ScanApp(const std::string& app,
               std::vector<std::pair<std::string, std::string>>* sessions);
  void ScanSession(const std::string& app, const std::string& session,
                   const std::function<void(StoredObjectInfo)>& visit);
  void ScanObject(const ObjectKey& key, const std::string& rel_base, bool has_deltas,
                  const std::function<void(StoredObjectInfo)>& visit);
  void Quarantine(const std::vector<std::string>& rel_paths, const std::string& reason);
  arrow::Status QuarantineCorrupt(const ObjectKey& key, const std::string& file,
                                  const arrow::Status& why);
  void RecordFloorOfQuarantined(const ObjectKey& key);

  const DiskStorageOptions options_;
  const std::string root_;
  const std::string internal_;
  const std::string uploads_;  // spooled uploads in progress (BeginUpload)
  std::unique_ptr<StorageDirLock> lock_;
  std::string instance_id_;
  // Group commit of the directory fsyncs that acknowledge writes (durable_file.h).
  const std::shared_ptr<DirSyncer> syncer_;

  // Directories being created whose parent's fsync has not finished, or failed
  // (EnsureDir): name → writers creating it.
  Mutex creating_mu_;
  std::unordered_map<std::string, int> creating_ FOC_GUARDED_BY(creating_mu_);

  // Scan runs before any other call (storage_engine.h), but on several threads: the
  // quarantine folder of this scan is named once, by the first thread that needs it.
  Mutex scan_mu_;
  std::string quarantine_stamp_ FOC_GUARDED_BY(scan_mu_);

  // Capacity accounting: what each key's files occupy, and their sum.
  mutable Mutex usage_mu_;
  std::unordered_map<std::string, int64_t> sizes_
      FOC_GUARDED_BY(usage_mu_);  // key → bytes of its files
  int64_t stored_ FOC_GUARDED_BY(usage_mu_) = 0;

  // The version-floor log and its reserve: one append (or rewrite) at a time.
  Mutex floors_mu_;
  bool floor_reserve_ok_ FOC_GUARDED_BY(floors_mu_) = false;

  bool RestoreFloorReserve() FOC_REQUIRES(floors_mu_);
};

// ---------------------------------------------------------------------------------------
// Internal files

arrow::Status DiskStorage::WriteInternalFile(const std::string& name,
                                             const std::string& content) {
  WriteOp op;
  auto size = WriteTemp(
      &op, internal_, name, [] { return arrow::Status::OK(); },
      [&](arrow::io::OutputStream* out) {
        return out->Write(content.data(), content.size());
      });
  ARROW_RETURN_NOT_OK(size.status());
  ARROW_RETURN_NOT_OK(RenameFile(op.temp, internal_ + "/" + name));
  op.temp.clear();
  return SyncDir(internal_);
}

arrow::Status DiskStorage::LoadOrCreateInstanceId() {
  const std::string path = internal_ + "/" + kInstanceIdFile;
  auto file = arrow::io::ReadableFile::Open(path);
  if (file.ok()) {
    ARROW_ASSIGN_OR_RAISE(auto size, (*file)->GetSize());
    ARROW_ASSIGN_OR_RAISE(auto buf, (*file)->Read(std::min<int64_t>(size, 256)));
    std::string id = buf->ToString();
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (!id.empty()) {
      instance_id_ = std::move(id);
      return arrow::Status::OK();
    }
  }
  instance_id_ = NewUuid4();
  return WriteInternalFile(kInstanceIdFile, instance_id_ + "\n");
}

namespace {

// pwrite of all of `data` at `offset`.
arrow::Status PwriteAll(int fd, std::string_view data, off_t offset,
                        const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done,
                         offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError(errno, "append", path);
    done += static_cast<size_t>(n);
  }
  return arrow::Status::OK();
}

}  // namespace

bool DiskStorage::RestoreFloorReserve() {
  const std::string path = internal_ + "/" + kFloorReserveFile;
  if (FileSize(path).ValueOr(-1) == kFloorReserveBytes) return true;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const std::string zeros(kFloorReserveBytes, '\0');
  bool ok = PwriteAll(fd, zeros, 0, path).ok() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) LogIfError(RemoveFile(path));  // a partial reserve is no reserve
  return ok;
}

arrow::Status DiskStorage::RecordFloor(const VersionFloor& floor) {
  MutexLock lock(&floors_mu_);
  // Top the reserve up again once a DELETE used it (fails quietly while the disk is
  // full).
  if (!floor_reserve_ok_) floor_reserve_ok_ = RestoreFloorReserve();
  const std::string path = internal_ + "/" + kFloorsFile;
  const bool existed = PathExists(path);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return FileError(errno, "open", path);
  const off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) {
    const int err = errno;
    ::close(fd);
    return FileError(err, "seek", path);
  }
  const std::string line = FloorLine(floor);
  arrow::Status st = PwriteAll(fd, line, end, path);
  if (!st.ok()) {
    // Never leave a partial line: the next append would be glued to it.
    if (::ftruncate(fd, end) != 0) spdlog::warn("storage: cannot truncate {}", path);
    if (IsDeviceFull(st) && floor_reserve_ok_) {
      // The disk is full: give up the reserve so that this DELETE can free space.
      spdlog::warn(
          "storage: device full; using the version-floor reserve so that a "
          "DELETE can proceed");
      LogIfError(RemoveFile(internal_ + "/" + kFloorReserveFile));
      floor_reserve_ok_ = false;
      st = PwriteAll(fd, line, end, path);
      if (!st.ok() && ::ftruncate(fd, end) != 0)
        spdlog::warn("storage: cannot truncate {}", path);
    }
  }
  if (st.ok() && ::fsync(fd) != 0) st = FileError(errno, "fsync", path);
  ::close(fd);
  if (st.ok() && !existed) st = SyncDir(internal_);
  return st;
}

arrow::Result<std::vector<VersionFloor>> DiskStorage::LoadFloors() {
  MutexLock lock(&floors_mu_);
  const std::string path = internal_ + "/" + kFloorsFile;
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) return std::vector<VersionFloor>{};
  ARROW_ASSIGN_OR_RAISE(auto size, (*file)->GetSize());
  ARROW_ASSIGN_OR_RAISE(auto buf, (*file)->Read(size));
  ARROW_RETURN_NOT_OK((*file)->Close());
  std::string_view text(reinterpret_cast<const char*>(buf->data()), buf->size());
  std::vector<VersionFloor> floors;
  std::unordered_map<std::string, size_t> index;
  size_t lines = 0;
  bool damaged = false;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      // Torn last append, never acknowledged: cut it off in place, so that the next
      // append starts a line of its own even if the compaction below cannot run (full
      // disk).
      damaged = true;
      const off_t keep = static_cast<off_t>(buf->size() - text.size());
      if (::truncate(path.c_str(), keep) != 0)
        return FileError(errno, "truncate torn tail of", path);
      break;
    }
    auto floor = ParseFloorLine(text.substr(0, nl));
    text.remove_prefix(nl + 1);
    ++lines;
    if (!floor) {
      damaged = true;
      continue;
    }
    auto [it, inserted] = index.emplace(floor->pattern, floors.size());
    if (inserted)
      floors.push_back(std::move(*floor));
    else
      floors[it->second].version = std::max(floors[it->second].version, floor->version);
  }
  if (damaged) spdlog::warn("version-floor log {}: dropped damaged lines", path);
  floors = CompactFloors(std::move(floors));
  if (damaged || lines > floors.size()) {
    // Compact: one line per pattern, written atomically. Best effort: the log as it is
    // stays valid (only longer) when there is no room for the new one.
    std::string content;
    for (const auto& f : floors) content += FloorLine(f);
    if (auto st = WriteInternalFile(kFloorsFile, content); !st.ok())
      spdlog::warn("storage: version-floor log not compacted: {}", st.ToString());
  }
  return floors;
}

// ---------------------------------------------------------------------------------------
// Reads

arrow::Result<Object::Ptr> DiskStorage::Read(const ObjectKey& key) {
  const ObjectPaths p = PathsOf(key);
  auto mapped = arrow::io::MemoryMappedFile::Open(p.base, arrow::io::FileMode::READ);
  if (!mapped.ok()) {
    if (!PathExists(p.base))
      return arrow::Status::KeyError("object ", key.str(), " not found");
    return arrow::Status::IOError("open ", p.base, ": ", mapped.status().message());
  }
  auto base = ReadBaseFile(*mapped);
  if (!base.ok()) {
    if (IsChecksumMismatch(base.status()))
      return QuarantineCorrupt(key, p.base, base.status());
    return base.status().WithMessage(p.base, ": ", base.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(auto files, ListDeltas(p.deltas));
  if (files.empty()) return base;
  const uint64_t base_version = (*base)->base_version();
  std::vector<Delta> deltas;
  deltas.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::MemoryMappedFile::Open(
                                         files[i].path, arrow::io::FileMode::READ));
    auto delta = ReadDeltaFile(file);
    if (!delta.ok()) {
      if (IsChecksumMismatch(delta.status()))
        return QuarantineCorrupt(key, files[i].path, delta.status());
      return delta.status().WithMessage(files[i].path, ": ", delta.status().message());
    }
    // Upstream's version-0 deltas: the i-th (in index order) is base + i + 1.
    if (delta->version == 0) delta->version = base_version + i + 1;
    // Stale: left by a PUT interrupted before it removed the old deltas.
    if (delta->version <= base_version) continue;
    deltas.push_back(std::move(*delta));
  }
  auto object = Object::Make(*base, std::move(deltas));
  if (!object.ok()) {
    return arrow::Status::Invalid(p.deltas, ": ", object.status().message());
  }
  return object;
}

// Before an object's files go to quarantine: a floor at the highest version its headers
// state (checked against their footers), so that a key written again after a restart
// continues above the versions clients may hold. Best effort: unreadable headers state
// nothing.
// Same-machine readers (MAP) get the paths of the base and of its live deltas. Every
// file is written under a temporary name and renamed into place, never modified in place,
// so a reader that opened a file holds that version's bytes for as long as it keeps it
// open or mapped, whatever PUT, PATCH or DELETE do to the names afterwards (POSIX unlink
// semantics). The only race is between this listing and the reader's open(): a name may
// by then hold another version (a PUT renamed a new base over it, or a delta index was
// reused after a PUT) or be gone. The reader detects both by the version and checksum
// recorded in each file's footer, which it compares with this listing, and asks again.
arrow::Result<std::vector<LocalObjectFile>> DiskStorage::LocalFiles(
    const ObjectKey& key) {
  const ObjectPaths p = PathsOf(key);
  auto base = DescribeObjectFile(p.base);
  if (!base.ok()) {
    if (!PathExists(p.base))
      return arrow::Status::KeyError("object ", key.str(), " not found");
    return base.status();
  }
  std::vector<LocalObjectFile> out{*base};
  ARROW_ASSIGN_OR_RAISE(auto files, ListDeltas(p.deltas));
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto delta, DescribeObjectFile(f.path));
    if (delta.version == 0) {
      // Upstream's version-0 deltas are renumbered on read; a reader checking the file
      // could not tell them apart: such objects are served over gRPC only.
      return arrow::Status::NotImplemented("object ", key.str(),
                                           " has deltas written by upstream (version 0)");
    }
    if (delta.version <= base->version) continue;  // stale (an interrupted PUT's)
    out.push_back(std::move(delta));
  }
  return out;
}

void DiskStorage::RecordFloorOfQuarantined(const ObjectKey& key) {
  const ObjectPaths p = PathsOf(key);
  auto header_version = [&](const std::string& path) -> uint64_t {
    auto f = arrow::io::ReadableFile::Open(path);
    if (!f.ok()) return 0;
    auto h = ReadFileHeader(*f);
    return h.ok() ? h->version : 0;
  };
  const uint64_t base = header_version(p.base);
  uint64_t version = base;
  if (auto files = ListDeltas(p.deltas); files.ok() && !files->empty()) {
    const uint64_t last = header_version(files->back().path);
    // Upstream's version-0 deltas are renumbered base + i + 1.
    version = std::max(version, last == 0 ? base + files->size() : last);
  }
  if (version > 0) LogIfError(RecordFloor(VersionFloor{key.str(), version}));
}

// A read found a file of `key` corrupt (checksum or version mismatch): the object's
// files go to quarantine, a floor keeps its versions above what it had (best effort: the
// versions its readable headers state), and the caller gets NotFound, never the bytes.
arrow::Status DiskStorage::QuarantineCorrupt(const ObjectKey& key,
                                             const std::string& file,
                                             const arrow::Status& why) {
  const ObjectPaths p = PathsOf(key);
  RecordFloorOfQuarantined(key);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const std::string stamp =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count()) +
      "-" + RandomHex(6);
  const std::string rel_session =
      std::string(key.app()) + "/" + std::string(key.session()) + "/";
  const std::string dest = internal_ + "/" + kQuarantineDir + "/" + stamp;
  for (const auto& [from, name] :
       {std::pair{p.base, std::string(key.object()) + std::string(kBaseSuffix)},
        std::pair{p.deltas, std::string(key.object()) + std::string(kDeltasSuffix)}}) {
    if (!PathExists(from)) continue;
    std::string to = dest;
    to.append("/").append(rel_session).append(name);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
    LogIfError(ec ? arrow::Status::IOError("create ", to, ": ", ec.message())
                  : RenameFile(from, to));
  }
  LogIfError(SyncDir(p.session_dir));
  Uncharge(key.str());
  spdlog::error("storage: {} is corrupt ({}); object {} moved to {} and not served", file,
                why.message(), key.str(), dest);
  return arrow::Status::KeyError("object ", key.str(), " not found: its stored file ",
                                 file, " is corrupt (", why.message(),
                                 ") and was moved to quarantine (", dest, ")");
}

arrow::Result<std::shared_ptr<arrow::Schema>> DiskStorage::ReadNativeSchema(
    const ObjectKey& key) {
  const ObjectPaths p = PathsOf(key);
  auto file = arrow::io::ReadableFile::Open(p.base);
  if (!file.ok()) {
    if (!PathExists(p.base))
      return arrow::Status::KeyError("object ", key.str(), " not found");
    return arrow::Status::IOError("open ", p.base, ": ", file.status().message());
  }
  auto schema = ReadFileSchema(*file);
  if (!schema.ok())
    return schema.status().WithMessage(p.base, ": ", schema.status().message());
  if (!IsNativeTableSchema(**schema)) return std::shared_ptr<arrow::Schema>();
  return schema;
}

// ---------------------------------------------------------------------------------------
// Writes

arrow::Status DiskStorage::RemoveDeltaFiles(WriteOp* op, const std::string& dir,
                                            std::string_view step) {
  ARROW_ASSIGN_OR_RAISE(auto entries, ListDir(dir));
  for (const auto& e : entries) {
    ARROW_RETURN_NOT_OK(RemoveTree(dir + "/" + e.name));
    ARROW_RETURN_NOT_OK(Step(op, step));
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return FileError(errno, "remove", dir);
  return arrow::Status::OK();
}

arrow::Status DiskStorage::RenumberLegacyDeltas(WriteOp* op, const ObjectPaths& p) {
  ARROW_ASSIGN_OR_RAISE(auto files, ListDeltas(p.deltas));
  if (files.empty()) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto first_file,
                        arrow::io::ReadableFile::Open(files.front().path));
  auto first = ReadFileHeader(first_file);
  if (!first.ok() || first->version != 0) return arrow::Status::OK();  // nothing legacy
  ARROW_ASSIGN_OR_RAISE(auto base_file, arrow::io::ReadableFile::Open(p.base));
  ARROW_ASSIGN_OR_RAISE(auto base, ReadFileHeader(base_file));
  bool changed = false;
  for (size_t i = 0; i < files.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::MemoryMappedFile::Open(
                                         files[i].path, arrow::io::FileMode::READ));
    ARROW_ASSIGN_OR_RAISE(auto delta, ReadDeltaFile(file));
    if (delta.version != 0) continue;
    const uint64_t version = base.version + i + 1;
    ARROW_RETURN_NOT_OK(WriteTemp(
                            op, p.deltas, std::to_string(files[i].index),
                            [] { return arrow::Status::OK(); },
                            [&](arrow::io::OutputStream* out) {
                              return WriteOpaqueFile(out, version, delta.data);
                            })
                            .status());
    ARROW_RETURN_NOT_OK(RenameFile(op->temp, files[i].path));
    op->temp.clear();
    changed = true;
    ARROW_RETURN_NOT_OK(Step(op, "put:legacy-delta-renumbered"));
  }
  if (changed) ARROW_RETURN_NOT_OK(syncer_->Sync(p.deltas));
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<UploadSpool>> DiskStorage::BeginUpload() {
  ARROW_ASSIGN_OR_RAISE(
      auto file,
      OpaqueFileSpool::Create(uploads_ + "/" + RandomHex(16) + std::string(kTmpSuffix)));
  return std::make_unique<DiskUploadSpool>(std::move(file));
}

arrow::Status DiskStorage::Put(const ObjectKey& key, const Object& object) {
  const ObjectPaths p = PathsOf(key);
  WriteOp op;
  return PutBase(
      key, p, object.payload_bytes(), &op,
      [&]() {
        return WriteTemp(
            &op, p.session_dir, key.object(), [&] { return EnsureSessionDir(p); },
            [&](arrow::io::OutputStream* out) {
              return object.is_native()
                         ? WriteNativeFile(out, *object.table())
                         : WriteOpaqueFile(out, object.base_version(), object.data());
            });
      },
      [&]() {
        ARROW_RETURN_NOT_OK(RenameFile(op.temp, p.base));
        op.temp.clear();
        return arrow::Status::OK();
      });
}

arrow::Status DiskStorage::PutSpooled(const ObjectKey& key, uint64_t version,
                                      UploadSpool* spool) {
  auto* upload = dynamic_cast<DiskUploadSpool*>(spool);
  if (upload == nullptr || upload->committed()) {
    return arrow::Status::Invalid("put of ", key.str(),
                                  ": not an uncommitted spooled upload of ", Describe());
  }
  const ObjectPaths p = PathsOf(key);
  WriteOp op;  // its temp stays empty: the spool owns its file until it is renamed
  arrow::Status st = PutBase(
      key, p, upload->payload_bytes(), &op,
      [&]() { return upload->file()->Finish(version); },
      [&]() -> arrow::Status {
        // Into the session directory, created if needed (again when a concurrent
        // DELETE removed it between the mkdir and the rename).
        for (int attempt = 0;; ++attempt) {
          arrow::Status made = EnsureSessionDir(p);
          if (made.ok()) made = RenameFile(upload->file()->path(), p.base);
          if (made.ok()) {
            upload->MarkCommitted();
            return made;
          }
          if (!IsNotFound(made) || !PathExists(upload->file()->path()) ||
              attempt + 1 >= kMkdirAttempts) {
            return made;
          }
        }
      });
  if (op.crashed) upload->MarkCrashed();
  return st;
}

arrow::Status DiskStorage::PutBase(const ObjectKey& key, const ObjectPaths& p,
                                   int64_t payload_bytes, WriteOp* op,
                                   const std::function<arrow::Result<int64_t>()>& write,
                                   const std::function<arrow::Status()>& rename) {
  ARROW_RETURN_NOT_OK(Charge(key.str(), payload_bytes + kFileOverhead, true, true));
  const bool had_deltas = IsDirectory(p.deltas);
  if (had_deltas) {
    if (!PathExists(p.base)) {
      ARROW_RETURN_NOT_OK(RemoveTree(p.deltas));
      ARROW_RETURN_NOT_OK(syncer_->Sync(p.session_dir));
      ARROW_RETURN_NOT_OK(Step(op, "put:orphan-removed"));
    } else {
      ARROW_RETURN_NOT_OK(RenumberLegacyDeltas(op, p));
    }
  }
  ARROW_ASSIGN_OR_RAISE(const int64_t size, write());
  ARROW_RETURN_NOT_OK(Step(op, "put:tmp-written"));
  ARROW_RETURN_NOT_OK(Charge(key.str(), size, true, true));
  ARROW_RETURN_NOT_OK(rename());
  FOC_DCHECK(op->temp.empty());  // renamed away: nothing for the WriteOp to remove
  ARROW_RETURN_NOT_OK(Charge(key.str(), size, true, false));
  ARROW_RETURN_NOT_OK(Step(op, "put:renamed"));
  ARROW_RETURN_NOT_OK(syncer_->Sync(p.session_dir));
  ARROW_RETURN_NOT_OK(Step(op, "put:dir-synced"));
  if (had_deltas && IsDirectory(p.deltas)) {
    // Committed: the old deltas are stale from here on. A failure to remove them is
    // logged, not returned (reads ignore them; recovery removes them).
    arrow::Status st = RemoveDeltaFiles(op, p.deltas, "put:stale-delta-removed");
    if (op->crashed) return st;
    if (st.ok()) st = syncer_->Sync(p.session_dir);
    if (!st.ok())
      spdlog::warn("put {}: stale deltas left behind: {}", key.str(), st.ToString());
    ARROW_RETURN_NOT_OK(Step(op, "put:deltas-removed"));
  }
  return arrow::Status::OK();
}

arrow::Status DiskStorage::Append(const ObjectKey& key, const Object& object) {
  if (object.deltas().empty())
    return arrow::Status::Invalid("append: the object has no delta");
  const Delta& delta = object.deltas().back();
  // Object::WithDelta only makes deltas above the base (and above every older delta).
  FOC_DCHECK_GT(delta.version, object.base_version());
  const ObjectPaths p = PathsOf(key);
  if (!PathExists(p.base))
    return arrow::Status::KeyError("object ", key.str(), " not found");
  const int64_t payload = delta.data ? delta.data->size() : 0;
  ARROW_RETURN_NOT_OK(Charge(key.str(), payload + kFileOverhead, false, true));
  WriteOp op;
  ARROW_RETURN_NOT_OK(EnsureDir(p.session_dir, p.deltas));
  ARROW_ASSIGN_OR_RAISE(auto files, ListDeltas(p.deltas));
  const uint64_t index = files.empty() ? 0 : files.back().index + 1;
  const std::string final_path =
      p.deltas + "/" + std::to_string(index) + std::string(kBaseSuffix);
  ARROW_ASSIGN_OR_RAISE(
      const int64_t size,
      WriteTemp(
          &op, p.deltas, std::to_string(index), [] { return arrow::Status::OK(); },
          [&](arrow::io::OutputStream* out) {
            return WriteOpaqueFile(out, delta.version, delta.data);
          }));
  ARROW_RETURN_NOT_OK(Step(&op, "patch:tmp-written"));
  ARROW_RETURN_NOT_OK(Charge(key.str(), size, false, true));
  ARROW_RETURN_NOT_OK(RenameFile(op.temp, final_path));
  op.temp.clear();
  ARROW_RETURN_NOT_OK(Step(&op, "patch:renamed"));
  arrow::Status synced = syncer_->Sync(p.deltas);
  if (!synced.ok()) {
    // Not acknowledged, so take the delta back rather than leave it maybe-visible.
    LogIfError(RemoveFile(final_path));
    return synced;
  }
  ARROW_RETURN_NOT_OK(Charge(key.str(), size, false, false));
  return Step(&op, "patch:dir-synced");
}

arrow::Status DiskStorage::Remove(const ObjectKey& key) {
  const ObjectPaths p = PathsOf(key);
  WriteOp op;
  if (!IsDirectory(p.session_dir)) {
    Uncharge(key.str());
    return arrow::Status::OK();
  }
  ARROW_RETURN_NOT_OK(RemoveFile(p.base));
  ARROW_RETURN_NOT_OK(Step(&op, "remove:base-unlinked"));
  ARROW_RETURN_NOT_OK(SyncDirOrAncestor(syncer_.get(), p.session_dir, root_));
  Uncharge(key.str());
  ARROW_RETURN_NOT_OK(Step(&op, "remove:dir-synced"));
  if (IsDirectory(p.deltas)) {
    ARROW_RETURN_NOT_OK(RemoveDeltaFiles(&op, p.deltas, "remove:delta-unlinked"));
    ARROW_RETURN_NOT_OK(Step(&op, "remove:deltas-removed"));
  }
  if (RemoveDirIfEmpty(p.session_dir)) RemoveDirIfEmpty(p.app_dir);
  return arrow::Status::OK();
}

// ---------------------------------------------------------------------------------------
// Recovery and index

void DiskStorage::Quarantine(const std::vector<std::string>& rel_paths,
                             const std::string& reason) {
  MutexLock lock(&scan_mu_);  // rare; renames of different objects need no parallelism
  if (quarantine_stamp_.empty()) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    quarantine_stamp_ =
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count()) +
        "-" + RandomHex(6);
  }
  const std::string dest_root =
      internal_ + "/" + kQuarantineDir + "/" + quarantine_stamp_;
  for (const auto& rel : rel_paths) {
    const std::string from = root_ + "/" + rel;
    if (!PathExists(from)) continue;
    std::string to = dest_root;
    to.append("/").append(rel);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
    arrow::Status st = ec ? arrow::Status::IOError(ec.message()) : RenameFile(from, to);
    if (st.ok()) {
      spdlog::warn("storage: quarantined {} to {}: {}", from, to, reason);
    } else {
      spdlog::error("storage: cannot quarantine {} ({}): {}; skipping it", from, reason,
                    st.ToString());
    }
  }
}

arrow::Status DiskStorage::Scan(const std::function<void(StoredObjectInfo)>& visit) {
  // Readers ahead of the scan keep many disk reads in flight on a cold page cache
  // (storage/scan_prefetch.h); they stop when the scan returns.
  ScanPrefetcher prefetch(root_, kScanPrefetchThreads);
  {
    MutexLock lock(&usage_mu_);
    sizes_.clear();
    stored_ = 0;
  }
  ARROW_ASSIGN_OR_RAISE(auto apps, ListDir(root_));
  std::vector<std::string> app_names;
  std::vector<std::pair<std::string, std::string>> sessions;  // (app, session)
  for (const auto& e : apps) {
    if (e.name.starts_with(".")) continue;  // ours (.flame-cache) or the operator's
    if (e.name == "lost+found") continue;   // the file system's (a dedicated volume)
    if (!e.is_dir) {
      Quarantine({e.name}, "foreign file in the storage root");
      continue;
    }
    if (auto st = ValidateComponent(e.name, "app"); !st.ok()) {
      Quarantine({e.name}, st.message());
      continue;
    }
    app_names.push_back(e.name);
    ScanApp(e.name, &sessions);
  }
  // Sessions are independent directories: their objects are read in parallel (each
  // header is parsed and its checksum verified, ~13 µs an object), the index is fed one
  // object at a time.
  Mutex visit_mu;
  auto serial_visit = [&](StoredObjectInfo info) {
    MutexLock lock(&visit_mu);
    visit(std::move(info));
  };
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < sessions.size(); i = next++) {
      const auto& [app, session] = sessions[i];
      ScanSession(app, session, serial_visit);
      std::string dir = root_;
      dir.append("/").append(app).append("/").append(session);
      RemoveDirIfEmpty(dir);
    }
  };
  {
    std::vector<std::jthread> threads;
    const int n = std::min<int>(kScanThreads, static_cast<int>(sessions.size()));
    for (int t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
  }  // joined
  for (const auto& app : app_names) RemoveDirIfEmpty(root_ + "/" + app);
  MutexLock lock(&scan_mu_);
  if (!quarantine_stamp_.empty()) LogIfError(SyncDir(root_));
  quarantine_stamp_.clear();
  return arrow::Status::OK();
}

void DiskStorage::ScanApp(const std::string& app,
                          std::vector<std::pair<std::string, std::string>>* sessions) {
  auto listed = ListDir(root_ + "/" + app);
  if (!listed.ok()) {
    spdlog::error("storage: skipping {}: {}", app, listed.status().ToString());
    return;
  }
  for (const auto& e : *listed) {
    const std::string rel = app + "/" + e.name;
    if (e.name.starts_with(".")) {
      if (e.is_file) LogIfError(RemoveFile(root_ + "/" + rel));
      continue;
    }
    if (!e.is_dir) {
      Quarantine({rel}, "foreign file in an app directory");
      continue;
    }
    if (auto st = ValidateComponent(e.name, "session"); !st.ok()) {
      Quarantine({rel}, st.message());
      continue;
    }
    sessions->emplace_back(app, e.name);
  }
}

void DiskStorage::ScanSession(const std::string& app, const std::string& session,
                              const std::function<void(StoredObjectInfo)>& visit) {
  const std::string rel_dir = app + "/" + session;
  const std::string dir = root_ + "/" + rel_dir;
  auto entries = ListDir(dir);
  if (!entries.ok()) {
    spdlog::error("storage: skipping {}: {}", rel_dir, entries.status().ToString());
    return;
  }
  std::unordered_map<std::string, bool> bases;  // object name → has a deltas directory
  std::vector<std::string> deltas_dirs;
  bool removed_any = false;
  for (const auto& e : *entries) {
    const std::string rel = rel_dir + "/" + e.name;
    if (e.name.starts_with(".")) {  // temporary file of an interrupted write
      if (e.is_file) {
        LogIfError(RemoveFile(root_ + "/" + rel));
        removed_any = true;
      }
      continue;
    }
    if (e.is_file && e.name.ends_with(kBaseSuffix)) {
      bases.emplace(e.name.substr(0, e.name.size() - kBaseSuffix.size()), false);
    } else if (e.is_dir && e.name.ends_with(kDeltasSuffix)) {
      deltas_dirs.push_back(e.name.substr(0, e.name.size() - kDeltasSuffix.size()));
    } else {
      Quarantine({rel}, "foreign file in a session directory");
    }
  }
  for (const auto& object : deltas_dirs) {
    auto it = bases.find(object);
    if (it != bases.end()) {
      it->second = true;
      continue;
    }
    // Orphan: deltas of a base removed by an interrupted DELETE.
    std::string rel = rel_dir;
    rel.append("/").append(object).append(kDeltasSuffix);
    spdlog::info("storage: removing orphan deltas {}", rel);
    LogIfError(RemoveTree(root_ + "/" + rel));
    removed_any = true;
  }
  if (removed_any) LogIfError(SyncDir(dir));
  for (const auto& [object, has_deltas] : bases) {
    std::string rel_base = rel_dir;
    rel_base.append("/").append(object).append(kBaseSuffix);
    auto key = ObjectKey::Make(app, session, object);
    if (!key.ok()) {
      std::vector<std::string> rels{rel_base};
      if (has_deltas) {
        std::string rel = rel_dir;
        rels.push_back(rel.append("/").append(object).append(kDeltasSuffix));
      }
      Quarantine(rels, key.status().message());
      continue;
    }
    ScanObject(*key, rel_base, has_deltas, visit);
  }
}

void DiskStorage::ScanObject(const ObjectKey& key, const std::string& rel_base,
                             bool has_deltas,
                             const std::function<void(StoredObjectInfo)>& visit) {
  const ObjectPaths p = PathsOf(key);
  const std::string rel_deltas =
      rel_base.substr(0, rel_base.size() - kBaseSuffix.size()) +
      std::string(kDeltasSuffix);
  auto quarantine = [&](const std::string& why) {
    RecordFloorOfQuarantined(key);
    std::vector<std::string> rels{rel_base};
    if (has_deltas) rels.push_back(rel_deltas);
    Quarantine(rels, why);
  };
  auto header_of = [](const std::string& path) -> arrow::Result<ObjectFileHeader> {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
    // A small file is read whole with one pread and parsed from memory: the IPC reader's
    // projected read otherwise issues asynchronous reads that hop through Arrow's I/O
    // thread pool, and those wake-ups cost several times the read itself. Large files
    // keep the projected read, which never touches their data column.
    ARROW_ASSIGN_OR_RAISE(const int64_t size, file->GetSize());
    if (size <= kWholeReadBytes) {
      ARROW_ASSIGN_OR_RAISE(auto bytes, file->ReadAt(0, size));
      // In memory already: verify its checksum too (what the scan reads is checked).
      return ReadFileHeader(std::make_shared<arrow::io::BufferReader>(std::move(bytes)),
                            /*verify_checksum=*/true);
    }
    return ReadFileHeader(file);
  };
  auto base = header_of(p.base);
  if (!base.ok()) {
    quarantine("unreadable base: " + base.status().ToString());
    return;
  }
  StoredObjectInfo info{key, base->version, FileSize(p.base).ValueOr(0), 0, base->native};
  if (has_deltas) {
    auto listed = ListDeltas(p.deltas);
    if (!listed.ok()) {
      quarantine("unreadable deltas: " + listed.status().ToString());
      return;
    }
    // Temporaries and foreign files in the deltas directory.
    if (auto entries = ListDir(p.deltas); entries.ok()) {
      for (const auto& e : *entries) {
        if (e.name.starts_with(".")) {
          LogIfError(RemoveTree(p.deltas + "/" + e.name));
        } else if (!e.is_file || !DeltaIndex(e.name)) {
          Quarantine({rel_deltas + "/" + e.name}, "foreign file in a deltas directory");
        }
      }
    }
    std::vector<DeltaFile> files = std::move(*listed);
    if (!files.empty()) {
      auto last = header_of(files.back().path);
      if (!last.ok()) {
        quarantine("unreadable delta " + files.back().path + ": " +
                   last.status().ToString());
        return;
      }
      uint64_t version = last->version;
      bool stale_seen = false;
      if (version == 0) {
        // Upstream's version-0 deltas (always a prefix): renumbered base + i + 1.
        version = base->version + files.size();
      } else if (version <= base->version) {
        stale_seen = true;  // every delta is stale: an interrupted PUT
        for (const auto& f : files) LogIfError(RemoveFile(f.path));
        files.clear();
      } else if (files.size() > 1) {
        auto first = header_of(files.front().path);
        if (first.ok() && first->version != 0 && first->version <= base->version) {
          std::vector<DeltaFile> live;
          for (size_t i = 0; i < files.size(); ++i) {
            auto h = header_of(files[i].path);
            if (h.ok() && h->version != 0 && h->version <= base->version) {
              LogIfError(RemoveFile(files[i].path));
              stale_seen = true;
            } else {
              live.push_back(files[i]);
            }
          }
          files = std::move(live);
        }
      }
      if (stale_seen) {
        spdlog::info("storage: removed stale deltas of {}", key.str());
        LogIfError(SyncDir(p.deltas));
      }
      if (!files.empty()) info.version = version;
      info.delta_count = static_cast<int32_t>(files.size());
      for (const auto& f : files) info.payload_bytes += FileSize(f.path).ValueOr(0);
    }
    if (files.empty() && RemoveDirIfEmpty(p.deltas)) LogIfError(SyncDir(p.session_dir));
  }
  {
    MutexLock lock(&usage_mu_);
    sizes_[key.str()] = info.payload_bytes;
    stored_ += info.payload_bytes;
  }
  visit(std::move(info));
}

}  // namespace

std::vector<VersionFloor> CompactFloors(std::vector<VersionFloor> floors) {
  // 1. Drop floors that a wider floor with at least their version makes redundant (a
  //    session's floor under its app's, an object's under its session's or app's).
  std::unordered_map<std::string, uint64_t> by_pattern;
  for (const auto& f : floors) by_pattern[f.pattern] = f.version;
  auto covered = [&](const VersionFloor& f) {
    const size_t slash = f.pattern.find('/');
    if (slash == std::string::npos) return false;
    const std::string app = f.pattern.substr(0, slash);
    if (f.pattern != app + "/*") {
      auto it = by_pattern.find(app + "/*");
      if (it != by_pattern.end() && it->second >= f.version) return true;
    }
    const size_t second = f.pattern.find('/', slash + 1);
    if (second == std::string::npos) return false;  // a session or app floor
    auto it = by_pattern.find(f.pattern.substr(0, second));
    return it != by_pattern.end() && it->second >= f.version;
  };
  std::vector<VersionFloor> kept;
  for (auto& f : floors)
    if (!covered(f)) kept.push_back(std::move(f));
  // 2. Bound the log: an app with more than kMaxFloorsPerApp floors (many deleted
  //    sessions or evicted objects) gets one `app/*` floor at their maximum instead. That
  //    only raises floors, which is always safe: a floor is where a re-created key's
  //    versions continue above, and versions never need to be dense.
  std::unordered_map<std::string, std::pair<size_t, uint64_t>> per_app;
  for (const auto& f : kept) {
    auto& [count, max] = per_app[f.pattern.substr(0, f.pattern.find('/'))];
    ++count;
    max = std::max(max, f.version);
  }
  std::vector<VersionFloor> out;
  std::unordered_map<std::string, bool> merged;
  for (auto& f : kept) {
    const std::string app = f.pattern.substr(0, f.pattern.find('/'));
    const auto& [count, max] = per_app[app];
    if (count <= kMaxFloorsPerApp) {
      out.push_back(std::move(f));
    } else if (!merged[app]) {
      merged[app] = true;
      out.push_back(VersionFloor{app + "/*", max});
    }
  }
  return out;
}

arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(
    DiskStorageOptions options) {
  return OpenDiskStorage(std::move(options), nullptr);
}

arrow::Result<std::unique_ptr<StorageEngine>> OpenDiskStorage(
    DiskStorageOptions options, std::shared_ptr<DirSyncer> dir_syncer) {
  if (options.root.empty())
    return arrow::Status::Invalid("disk storage: empty root path");
  while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
  auto engine = std::make_unique<DiskStorage>(std::move(options), std::move(dir_syncer));
  ARROW_RETURN_NOT_OK(engine->Init());
  return std::unique_ptr<StorageEngine>(std::move(engine));
}

}  // namespace foc
