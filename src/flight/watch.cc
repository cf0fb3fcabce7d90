#include "flight/watch.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <arrow/flight/types.h>
#include <spdlog/spdlog.h>

#include "flight/auth.h"
#include "flight/call_guard.h"
#include "store/change_feed.h"
#include "store/store.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

arrow::Status Write(fl::FlightMessageWriter* writer, const WatchMessage& m) {
  ARROW_ASSIGN_OR_RAISE(auto buf, EncodeWatchMessage(m));
  return writer->WriteMetadata(std::move(buf));
}

WatchMessage ChangeMessage(std::string key, uint64_t version, std::string_view kind,
                           const std::string& epoch) {
  return WatchMessage{std::string(kWatchChange), std::move(key), version,
                      std::string(kind),         epoch,          {}};
}

arrow::Status ShuttingDown() {
  return fl::MakeFlightError(fl::FlightStatusCode::Unavailable,
                             "WATCH ended: the server is shutting down; subscribe again "
                             "(naming the versions you have) to resume");
}

}  // namespace

arrow::Status ValidateWatchRequest(const fl::ServerCallContext& context,
                                   const WatchRequest& request, const WatchLimits& limits,
                                   std::vector<KeyPattern>* patterns) {
  if (static_cast<int64_t>(request.patterns.size()) > limits.max_patterns) {
    return arrow::Status::Invalid("WATCH names ", request.patterns.size(),
                                  " patterns; at most ", limits.max_patterns,
                                  " per call");
  }
  if (static_cast<int64_t>(request.since.size()) > limits.max_since) {
    return arrow::Status::Invalid("WATCH resumes ", request.since.size(),
                                  " keys; at most ", limits.max_since, " per call");
  }
  if (request.max_queue > limits.max_queue) {
    return arrow::Status::Invalid("WATCH max_queue ", request.max_queue,
                                  " exceeds the server limit of ", limits.max_queue);
  }
  if (request.heartbeat_ms != 0 && (request.heartbeat_ms < limits.min_heartbeat_ms ||
                                    request.heartbeat_ms > limits.max_heartbeat_ms)) {
    return arrow::Status::Invalid(
        "WATCH heartbeat_ms must be between ", limits.min_heartbeat_ms, " and ",
        limits.max_heartbeat_ms, ", got ", request.heartbeat_ms);
  }
  patterns->clear();
  for (const auto& text : request.patterns) {
    auto p = KeyPattern::Parse(text);
    if (!p.ok()) return p.status().WithMessage("WATCH: ", p.status().message());
    // A subscription reveals keys and versions: it needs read on the pattern's app.
    const std::string& prefix = p->key_prefix();
    ARROW_RETURN_NOT_OK(Authorize(context,
                                  std::string_view(prefix).substr(0, prefix.find('/')),
                                  Right::kRead, "WATCH " + text));
    patterns->push_back(*std::move(p));
  }
  for (const auto& [key_text, version] : request.since) {
    auto key = ObjectKey::Parse(key_text);
    if (!key.ok())
      return key.status().WithMessage("WATCH since: ", key.status().message());
    const bool matched =
        std::any_of(patterns->begin(), patterns->end(),
                    [&](const KeyPattern& p) { return p.Matches(*key); });
    if (!matched) {
      return arrow::Status::Invalid("WATCH since names ", key_text,
                                    ", which matches none of the patterns");
    }
  }
  // Authorization of `*patterns` for the caller (context) belongs here.
  return arrow::Status::OK();
}

int64_t WatchService::active_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

arrow::Status WatchService::Admit(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (calls_ >= limits_.max_calls) {
    return arrow::Status::CapacityError("too many WATCH subscriptions on this server (",
                                        limits_.max_calls, "); try again later");
  }
  int64_t& mine = calls_per_peer_[peer];
  if (mine >= limits_.max_calls_per_connection) {
    return arrow::Status::CapacityError(
        "too many WATCH subscriptions on this connection (",
        limits_.max_calls_per_connection,
        "); watch several patterns in one call, or close subscriptions you no longer "
        "need");
  }
  ++mine;
  ++calls_;
  return arrow::Status::OK();
}

void WatchService::Release(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  --calls_;
  auto it = calls_per_peer_.find(peer);
  if (it != calls_per_peer_.end() && --it->second <= 0) calls_per_peer_.erase(it);
}

arrow::Status WatchService::Serve(const fl::ServerCallContext& context, Store& store,
                                  std::string_view command,
                                  fl::FlightMessageWriter* writer) {
  ARROW_ASSIGN_OR_RAISE(const WatchRequest request, DecodeWatchCommand(command));
  std::vector<KeyPattern> patterns;
  ARROW_RETURN_NOT_OK(ValidateWatchRequest(context, request, limits_, &patterns));
  const std::string peer = context.peer();
  ARROW_RETURN_NOT_OK(Admit(peer));
  // Every message sent (heartbeats included) marks the stream as moving for the
  // connection watchdog (server/connection_watch.h), which otherwise closes it as
  // stalled.
  const std::shared_ptr<CallRecord> record = CallGuardFactory::RecordOf(context);
  auto send = [&](const WatchMessage& m) {
    arrow::Status st = Write(writer, m);
    if (st.ok() && record) record->Touch();
    return st;
  };
  struct Releaser {
    WatchService* self;
    const std::string& peer;
    ~Releaser() { self->Release(peer); }
  } releaser{this, peer};

  const size_t queue = static_cast<size_t>(request.max_queue > 0 ? request.max_queue
                                                                 : limits_.default_queue);
  const auto heartbeat = std::chrono::milliseconds(
      request.heartbeat_ms > 0 ? request.heartbeat_ms : limits_.default_heartbeat_ms);
  ChangeFeed* feed = store.change_feed();
  if (feed == nullptr) {
    return arrow::Status::NotImplemented("WATCH is not offered by this server");
  }

  // Subscribe before reading the index: a change committed meanwhile is both in the
  // snapshot and queued, never in neither. `seen` drops the queued duplicates.
  auto subscribed = feed->Subscribe(patterns, queue);
  if (subscribed.status().IsCancelled()) return ShuttingDown();
  ARROW_RETURN_NOT_OK(subscribed.status());
  std::unique_ptr<Subscription> sub = *std::move(subscribed);
  ARROW_RETURN_NOT_OK(store.PrepareWatch(patterns));
  const std::string epoch = store.epoch();  // a node tier knows its upstream's by now
  std::unordered_map<std::string, uint64_t> have;
  for (const auto& [k, v] : request.since) have[k] = v;
  std::unordered_map<std::string, uint64_t> seen;  // snapshot version per key
  ARROW_ASSIGN_OR_RAISE(const std::vector<ObjectListing> listing, store.List());
  for (const ObjectListing& obj : listing) {
    if (!sub->Matches(obj.key)) continue;
    auto it = have.find(obj.key.str());
    const bool named = it != have.end();
    const uint64_t client = named ? it->second : 0;
    if (named) have.erase(it);
    seen[obj.key.str()] = std::max(obj.version, client);
    if (!named && !request.snapshot) continue;
    // A client ahead of the server (a different data set) hears the current version too.
    if (obj.version != client) {
      ARROW_RETURN_NOT_OK(
          send(ChangeMessage(obj.key.str(), obj.version, kWatchKindCurrent, epoch)));
    }
  }
  for (const auto& [k, v] : have) {  // named, not in the index: gone
    ARROW_RETURN_NOT_OK(send(ChangeMessage(k, v, kWatchKindDelete, epoch)));
  }
  ARROW_RETURN_NOT_OK(send(WatchMessage{std::string(kWatchReady), {}, 0, {}, epoch, {}}));

  std::vector<Change> changes;
  while (true) {
    if (context.is_cancelled()) return arrow::Status::OK();  // the client went away
    changes.clear();
    arrow::Status st = sub->Next(heartbeat, &changes);
    if (st.IsCapacityError()) {
      spdlog::warn("WATCH {}: subscriber dropped: {}", peer, st.message());
      (void)send(WatchMessage{std::string(kWatchResync), {}, 0, {}, {}, st.message()});
      return st;
    }
    if (st.IsCancelled()) return ShuttingDown();
    ARROW_RETURN_NOT_OK(st);
    if (changes.empty()) {
      ARROW_RETURN_NOT_OK(
          send(WatchMessage{std::string(kWatchHeartbeat), {}, 0, {}, {}, {}}));
      continue;
    }
    for (Change& c : changes) {
      if (!seen.empty()) {
        auto it = seen.find(c.key);
        if (it != seen.end()) {
          // Queued before the snapshot read the index: already reported (or held by
          // the client). A delete of the version in the snapshot is newer; a delete of an
          // older version is of an earlier incarnation (re-created keys continue above).
          const bool stale = c.kind == ChangeKind::kDelete ? c.version < it->second
                                                           : c.version <= it->second;
          if (stale) continue;
          seen.erase(it);
        }
      }
      ARROW_RETURN_NOT_OK(send(
          ChangeMessage(std::move(c.key), c.version, ChangeKindName(c.kind), epoch)));
    }
  }
}

}  // namespace foc
