// WATCH from the C++ client: one DoExchange subscription (docs/protocol.md, "WATCH").
// Opened by CacheClient::Watch; CacheClient::WaitForChange is built on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "base/mutex.h"
#include "key/key.h"
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
  /// When the last message (of any type, heartbeats included) arrived.
  std::chrono::steady_clock::time_point last_message() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_message_.load()));
  }
  /// Removes and returns the resume snapshot's changes not yet handed out by Next().
  std::vector<WatchEvent> TakeSnapshot();

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
  std::atomic<std::chrono::steady_clock::rep> last_message_{0};
};

class CacheClient;

/// Keeps a CacheClient's cache current by WATCH (CacheClient::SubscribeCache): a thread
/// holds one subscription with the full snapshot and records each matching key's current
/// version. Vouches() is true while the subscription is healthy (snapshot installed, a
/// message within 2 x heartbeat) and the cached version is the current one.
class CacheWatch {
 public:
  CacheWatch(CacheClient* client, std::string endpoint, std::vector<KeyPattern> patterns,
             std::chrono::milliseconds heartbeat);
  ~CacheWatch();
  CacheWatch(const CacheWatch&) = delete;
  CacheWatch& operator=(const CacheWatch&) = delete;

  /// True if (endpoint, key) at `version`/`epoch` is current as far as the push says.
  bool Vouches(std::string_view endpoint, std::string_view key, uint64_t version,
               std::string_view epoch) const;
  /// Waits until a subscription's snapshot is installed.
  bool WaitReady(std::chrono::duration<double> timeout);

 private:
  void Run();

  CacheClient* const client_;
  const std::string endpoint_;
  const std::vector<KeyPattern> patterns_;
  const std::chrono::milliseconds heartbeat_;
  mutable Mutex mu_;
  CondVar cv_{&mu_};
  bool stop_ FOC_GUARDED_BY(mu_) = false;
  bool installed_ FOC_GUARDED_BY(mu_) = false;
  // the live stream (owned by Run), for Cancel and liveness
  WatchStream* stream_ FOC_GUARDED_BY(mu_) = nullptr;
  std::map<std::string, uint64_t, std::less<>> versions_ FOC_GUARDED_BY(mu_);
  std::string epoch_ FOC_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace foc
