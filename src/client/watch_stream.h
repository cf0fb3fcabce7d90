// WATCH from the C++ client: one DoExchange subscription (docs/protocol.md, "WATCH").
// Opened by CacheClient::Watch; CacheClient::WaitForChange is built on it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <arrow/result.h>
#include <arrow/status.h>

#include "protocol/watch_protocol.h"

namespace arrow::flight {
class FlightClient;
class FlightStreamReader;
class FlightStreamWriter;
}  // namespace arrow::flight

namespace foc {

/// One change of one key as WATCH reports it.
struct WatchEvent {
  std::string key;       ///< full key
  uint64_t version = 0;  ///< the new version (delete: the version that is gone)
  std::string kind;      ///< put, patch, delete, or current (resume snapshot; coalesced)
  std::string epoch;     ///< the server's data-set epoch

  bool deleted() const { return kind == kWatchKindDelete; }
  bool operator==(const WatchEvent&) const = default;
};

/// An open subscription. When CacheClient::Watch returns it, the server has registered it
/// and sent its resume snapshot (the snapshot's changes come first from Next()), so every
/// change committed afterwards is reported. Next() is for one thread; Cancel() may be
/// called from any thread.
class WatchStream {
 public:
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  /// The next change (heartbeats consumed). Blocks until one arrives. Errors: the stream
  /// ended (Cancelled after Cancel(); IOError "WATCH stream ended" on a clean end), the
  /// subscriber was dropped for falling behind (CapacityError, message contains "fell
  /// behind": resubscribe naming the versions you have), the server went away or shut
  /// down (IOError, Flight code UNAVAILABLE), the call deadline passed.
  arrow::Result<WatchEvent> Next();
  /// Ends the call; a blocked Next() returns Cancelled.
  void Cancel();
  /// The epoch announced by `ready`.
  const std::string& epoch() const { return epoch_; }

 private:
  friend class CacheClient;
  WatchStream(std::shared_ptr<arrow::flight::FlightClient> client,
              std::unique_ptr<arrow::flight::FlightStreamWriter> writer,
              std::unique_ptr<arrow::flight::FlightStreamReader> reader);
  /// Reads up to `ready`, queueing the snapshot's changes.
  arrow::Status ReadSnapshot();
  /// The next message of any type.
  arrow::Result<WatchMessage> NextMessage();

  std::shared_ptr<arrow::flight::FlightClient> client_;  // keeps the channel alive
  std::unique_ptr<arrow::flight::FlightStreamWriter> writer_;
  std::unique_ptr<arrow::flight::FlightStreamReader> reader_;
  std::deque<WatchEvent> pending_;
  std::string epoch_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace foc
