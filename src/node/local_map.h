// The node tier's files for same-machine zero copy (MAP, docs/node-tier.md).
//
// A node tier keeps its copies in memory (a CacheClient's cache); a same-machine reader
// maps files. On the first MAP of a version the tier writes that version's base and
// deltas, as the storage engine's Arrow IPC files (uncompressed, checksummed footers),
// into a private directory on a memory file system (`/dev/shm` when present: shared
// memory, nothing goes to disk, pages shared by every process that maps them), and hands
// out their paths. A later version of the same base reuses the base file and adds only
// the new delta files.
//
// Why files in /dev/shm rather than an anonymous shared-memory segment: a file has a name
// a client can open with its own credentials (so it cannot reach anything else of the
// tier), and POSIX keeps an unlinked file's pages for as long as someone has it open or
// mapped, which is exactly the lifetime a reader needs.
//
// Safety (the race analysis):
//   * A file is written under a temporary name and renamed into place complete; it is
//     never modified afterwards. Names carry the version (`base-<v>.arrow`,
//     `delta-<v>.arrow`) in one directory per key, so a name only ever holds one content
//     within one upstream epoch; the directory is emptied when the epoch changes.
//   * Files are unlinked when a key's newer version no longer uses them or when the
//     directory exceeds its byte bound (least recently mapped keys first). A reader that
//     has opened a file keeps its pages after the unlink (POSIX); a reader that had not
//     opened it yet gets ENOENT and asks again (or reads over gRPC).
//   * A client checks each opened file's footer (version and XXH3 checksum) against the
//     MAP reply, so even a name reused across epochs is detected.
//   * The directory is mode 0700 (only the tier's user, who can read the tier's memory
//     anyway) and locked with flock while the tier runs; a tier that starts removes the
//     directories of tiers that died (kill -9) without cleaning up.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "base/mutex.h"
#include "object/object.h"
#include "store/store.h"

namespace foc {

class LocalMapDir {
 public:
  /// Creates a private directory under `parent` ("": /dev/shm if it is a directory,
  /// else the system temporary directory) holding at most `max_bytes` of files (<= 0:
  /// unbounded), after removing directories left there by tiers that died.
  static arrow::Result<std::unique_ptr<LocalMapDir>> Open(std::string parent,
                                                          int64_t max_bytes);
  ~LocalMapDir();
  LocalMapDir(const LocalMapDir&) = delete;
  LocalMapDir& operator=(const LocalMapDir&) = delete;

  /// The files of `object` (the current version of `key` in data set `epoch`), written
  /// if not there yet.
  arrow::Result<LocalObject> Materialize(const ObjectKey& key, const Object& object,
                                         const std::string& epoch);

  const std::string& path() const { return path_; }
  /// Bytes of files held now.
  int64_t bytes() const;

 private:
  struct Entry {
    std::string dir;                     // this key's directory
    uint64_t base_version = 0;           // 0: no files
    std::vector<LocalObjectFile> files;  // base, then deltas
    int64_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in lru_
  };
  LocalMapDir(std::string path, int lock_fd, int64_t max_bytes);
  void DropFilesLocked(Entry* e) FOC_REQUIRES(mu_);
  void EvictLocked(const std::string& keep) FOC_REQUIRES(mu_);

  const std::string path_;
  const int lock_fd_;
  const int64_t max_bytes_;
  mutable Mutex mu_;
  std::string epoch_ FOC_GUARDED_BY(mu_);
  std::map<std::string, Entry> entries_ FOC_GUARDED_BY(mu_);
  std::list<std::string> lru_ FOC_GUARDED_BY(mu_);  // front: most recently mapped
  int64_t bytes_ FOC_GUARDED_BY(mu_) = 0;
  uint64_t next_dir_ FOC_GUARDED_BY(mu_) = 0;
};

}  // namespace foc
