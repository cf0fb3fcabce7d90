// Wire format of WATCH (docs/protocol.md, "WATCH"): the DoExchange command that opens a
// subscription and the BSON messages the server streams back. Shared by the server
// (src/flight/watch.cc) and the C++ client; pure functions, no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>

namespace foc {

/// DoExchange command descriptor prefix: `WATCH:` followed by a BSON WatchRequest.
inline constexpr std::string_view kWatchCommandPrefix = "WATCH:";

/// Message types the server sends (field `type`).
inline constexpr std::string_view kWatchChange = "change";
inline constexpr std::string_view kWatchReady = "ready";
inline constexpr std::string_view kWatchHeartbeat = "heartbeat";
inline constexpr std::string_view kWatchResync = "resync";

/// Values of `kind` in a change message: the live kinds of the change feed, and
/// `current`, the version found in the index when the subscription started.
inline constexpr std::string_view kWatchKindPut = "put";
inline constexpr std::string_view kWatchKindPatch = "patch";
inline constexpr std::string_view kWatchKindDelete = "delete";
inline constexpr std::string_view kWatchKindCurrent = "current";

/// What a client subscribes to.
struct WatchRequest {
  /// Key patterns as DELETE takes them: `<app>/*`, `<app>/<session>` or a full key.
  std::vector<std::string> patterns;
  /// Resume: the version the client has of each key (full keys matching a pattern).
  std::vector<std::pair<std::string, uint64_t>> since;
  /// Also report the current version of matching keys not named in `since` (as if named
  /// with version 0). false: only keys named in `since` are reported before `ready`.
  bool snapshot = true;
  /// Changes the server may buffer for this subscriber before dropping it; 0: server
  /// default.
  int64_t max_queue = 0;
  /// Idle interval after which the server sends a heartbeat, milliseconds; 0: server
  /// default.
  int64_t heartbeat_ms = 0;

  bool operator==(const WatchRequest&) const = default;
};

/// One server message.
struct WatchMessage {
  std::string type;      ///< change, ready, heartbeat or resync
  std::string key;       ///< change: the full key
  uint64_t version = 0;  ///< change: the version (delete: the version that is gone)
  std::string kind;      ///< change: put, patch, delete or current
  std::string epoch;     ///< change, ready: the server's data-set epoch
  std::string reason;    ///< resync: why the subscriber was dropped

  bool operator==(const WatchMessage&) const = default;
};

/// `WATCH:` + BSON `{patterns: [string], since: [{key: string, version: int64}],
/// snapshot: bool, max_queue: int64, heartbeat_ms: int64}` (zero fields omitted).
arrow::Result<std::string> EncodeWatchCommand(const WatchRequest& request);
/// Parses a descriptor command; Invalid when it is not a well-formed WATCH command.
arrow::Result<WatchRequest> DecodeWatchCommand(std::string_view command);

/// BSON `{type, key, version: int64, kind, epoch, reason}`, empty fields omitted.
arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeWatchMessage(const WatchMessage& m);
arrow::Result<WatchMessage> DecodeWatchMessage(std::string_view data);

}  // namespace foc
