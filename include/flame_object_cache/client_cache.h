// The client-side object cache of the C++ SDK: a byte- and count-bounded LRU of object
// values keyed by (endpoint, key), as flamepy keys its cache (the endpoint string is the
// ref's raw, un-normalised one).
//
// What an entry means (the invariant everything else relies on):
//   an entry (endpoint E, key K, epoch P, version V) holds exactly the bytes that the
//   server at E, in data set P, stored for K at version V.
// The server never reuses a version within an epoch (docs/protocol.md, "Versions and
// epoch"), so such a fact never goes stale; it only becomes *old*. The cache therefore
// never answers a get by itself: CacheClient always asks the server "changed since V?"
// and returns an entry only when the server says it is current (not modified) or sends
// the deltas that bring it up to date. Invalidation (update/patch/delete) frees memory
// early and protects against servers that do reuse versions (upstream after DELETE); an
// epoch change drops every entry of that endpoint.
//
// Charges: an entry costs the bytes of its payload buffers (base, deltas or the native
// table's buffers). An entry larger than the whole budget is not kept. Eviction removes
// least recently used entries until both bounds hold again.
//
// Built on the server's LRU (cache/lru_cache.h, with its invariants checked in debug
// builds); no entry stays pinned (a lookup hands out the shared value and releases the
// pin at once).
//
// Thread safety: every method is safe to call concurrently (the LRU has its own lock),
// but CacheClient calls them under its own mutex anyway: the single-flight table it keeps
// under that mutex must be consistent with the cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/table.h>

#include "cache/lru_cache.h"
#include "key/key.h"
#include "object/object.h"

namespace foc {

/// An immutable object value as the server last described it: a base plus ordered deltas,
/// or a native Arrow table. Shared by the cache and every caller (all buffers are
/// immutable, so handing out shared pointers is safe and copies nothing).
struct ObjectValue {
  std::string endpoint;  ///< the endpoint the value came from (ObjectRef::endpoint)
  std::string key;       ///< full key `<app>/<session>/<object>`
  uint64_t version = 0;  ///< current version: the highest of the base's and the deltas'
  std::string
      epoch;  ///< the server's data-set identifier (`flame.cache.epoch`); may be empty
  uint64_t base_version = 0;            ///< version of the base
  std::shared_ptr<arrow::Buffer> base;  ///< opaque base bytes; null for a native table
  std::vector<Delta> deltas;            ///< deltas in increasing version order
  std::shared_ptr<arrow::Table>
      table;  ///< native Arrow table (`flame.cache.*` metadata removed)

  /// True for a native Arrow table object.
  bool is_table() const { return table != nullptr; }
  /// Payload bytes held: base plus deltas, or the table's buffers.
  int64_t payload_bytes() const;
};

/// Counters of the client-side cache (a snapshot; see CacheClient::stats()).
struct CacheStats {
  int64_t bytes = 0;    ///< bytes charged by resident entries
  int64_t entries = 0;  ///< resident entries
  int64_t hits = 0;     ///< gets that found a usable entry and sent its version
  int64_t misses = 0;  ///< gets without a usable entry (absent, version 0, epoch changed)
  int64_t not_modified = 0;  ///< replies "not modified": the cached value was returned
  int64_t patch_only = 0;    ///< replies with deltas only, applied to the cached base
  int64_t full = 0;        ///< replies with the whole object (base + deltas, or a table)
  int64_t requests = 0;    ///< DoGet calls made by gets (single flight: fewer than gets)
  int64_t coalesced = 0;   ///< gets answered by another caller's concurrent request
  int64_t watch_hits = 0;  ///< gets answered with no round trip (kept current by WATCH)
  int64_t rows_received = 0;   ///< object rows (or table batches) received by gets
  int64_t bytes_received = 0;  ///< payload bytes received by gets
  int64_t epoch_changes = 0;   ///< times a server was seen with a different epoch
  int64_t evictions = 0;       ///< entries dropped to respect the bounds
  int64_t invalidations =
      0;  ///< entries dropped by update, patch, delete or epoch change
};

/// Byte- and count-bounded LRU of ObjectValues keyed by (endpoint, key).
class ClientCache {
 public:
  /// `max_bytes` <= 0 or `max_entries` <= 0 means that bound is off.
  ClientCache(int64_t max_bytes, int64_t max_entries);

  /// The entry for (endpoint, key), made most recently used; null when absent.
  std::shared_ptr<const ObjectValue> Lookup(std::string_view endpoint,
                                            std::string_view key);
  /// Inserts or replaces the entry for (value->endpoint, value->key), then evicts as
  /// needed. A value larger than the byte budget is not kept (and any older entry is
  /// dropped).
  void Insert(std::shared_ptr<const ObjectValue> value);
  /// Drops the entry for (endpoint, key); true if there was one.
  bool Erase(std::string_view endpoint, std::string_view key);
  /// Drops every entry, of any endpoint, whose key `pattern` matches; returns how many.
  int64_t ErasePattern(const KeyPattern& pattern);
  /// Drops every entry of `endpoint` whose epoch differs from `epoch`; returns how many.
  int64_t EraseOtherEpochs(std::string_view endpoint, std::string_view epoch);

  /// Bytes charged by resident entries.
  int64_t bytes() const { return lru_.stats().bytes; }
  /// Resident entries.
  int64_t entries() const { return lru_.stats().entries; }
  /// Entries evicted to respect the bounds since construction.
  int64_t evictions() const { return lru_.stats().evictions; }

 private:
  // endpoint + '\n' + key
  static std::string Id(std::string_view endpoint, std::string_view key);

  LruCache<std::shared_ptr<const ObjectValue>> lru_;
};

}  // namespace foc
