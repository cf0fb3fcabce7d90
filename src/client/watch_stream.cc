#include "flame_object_cache/watch_stream.h"

#include <algorithm>
#include <thread>
#include <utility>

#include <arrow/flight/client.h>

#include "flame_object_cache/cache_client.h"

namespace foc {
namespace fl = arrow::flight;

WatchStream::WatchStream(std::shared_ptr<fl::FlightClient> client,
                         std::unique_ptr<fl::FlightStreamWriter> writer,
                         std::unique_ptr<fl::FlightStreamReader> reader)
    : client_(std::move(client)),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {}

WatchStream::~WatchStream() {
  Cancel();
  (void)writer_->Close();  // after the cancel: returns at once with the call's status
}

void WatchStream::Cancel() {
  if (!cancelled_.exchange(true)) reader_->Cancel();
}

std::vector<WatchEvent> WatchStream::TakeSnapshot() {
  std::vector<WatchEvent> out(std::make_move_iterator(pending_.begin()),
                              std::make_move_iterator(pending_.end()));
  pending_.clear();
  return out;
}

arrow::Result<WatchMessage> WatchStream::NextMessage() {
  auto chunk = reader_->Next();
  last_message_ = std::chrono::steady_clock::now().time_since_epoch().count();
  if (!chunk.ok()) {
    if (cancelled_) return arrow::Status::Cancelled("WATCH stream cancelled");
    return chunk.status();
  }
  if (!chunk->app_metadata) {
    if (cancelled_) return arrow::Status::Cancelled("WATCH stream cancelled");
    return arrow::Status::IOError("WATCH stream ended");
  }
  ARROW_ASSIGN_OR_RAISE(auto m, DecodeWatchMessage(chunk->app_metadata->ToString()));
  if (m.type == kWatchResync) return arrow::Status::CapacityError(m.reason);
  return m;
}

arrow::Status WatchStream::ReadSnapshot() {
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto m, NextMessage());
    if (m.type == kWatchReady) {
      epoch_ = m.epoch;
      return arrow::Status::OK();
    }
    if (m.type == kWatchChange) {
      pending_.push_back(WatchEvent{m.key, m.version, m.kind, m.epoch});
    }
  }
}

arrow::Result<WatchEvent> WatchStream::Next() {
  while (pending_.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto m, NextMessage());
    if (m.type == kWatchChange) {
      return WatchEvent{std::move(m.key), m.version, std::move(m.kind),
                        std::move(m.epoch)};
    }
  }
  WatchEvent e = std::move(pending_.front());
  pending_.pop_front();
  return e;
}

arrow::Result<std::unique_ptr<WatchStream>> CacheClient::Watch(
    const WatchRequest& request, std::string_view endpoint,
    std::chrono::duration<double> timeout) {
  // A routing client watches at the first member of its order (any member's feed carries
  // every member's commits).
  const std::string target = DialTarget(
      endpoint.empty() ? default_endpoint_ : std::string(endpoint),
      request.patterns.empty() ? std::string_view() : request.patterns.front());
  ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
  ARROW_ASSIGN_OR_RAISE(auto command, EncodeWatchCommand(request));
  // The client's call options (token, alignment) without its per-call deadline: a watch
  // is long-lived, so only a deadline asked for here applies.
  fl::FlightCallOptions call = CallOptions();
  call.timeout = timeout.count() > 0 ? fl::TimeoutDuration(timeout.count())
                                     : fl::TimeoutDuration(-1);
  ARROW_ASSIGN_OR_RAISE(auto exchange,
                        client->DoExchange(call, fl::FlightDescriptor::Command(command)));
  std::unique_ptr<WatchStream> stream(new WatchStream(
      std::move(client), std::move(exchange.writer), std::move(exchange.reader)));
  ARROW_RETURN_NOT_OK(stream->ReadSnapshot());
  return stream;
}

arrow::Result<std::optional<ObjectRef>> CacheClient::WaitForChange(
    const ObjectRef& ref, std::chrono::duration<double> timeout) {
  ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(ref.key));
  const std::string& endpoint = EndpointOf(ref);
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  auto timed_out = [](const arrow::Status& st) {
    auto detail = fl::FlightStatusDetail::UnwrapStatus(st);
    return detail && detail->code() == fl::FlightStatusCode::TimedOut;
  };
  WatchRequest request;
  request.patterns = {key.str()};
  request.since = {{key.str(), ref.version}};
  request.snapshot = false;
  while (true) {
    const std::chrono::duration<double> left =
        deadline - std::chrono::steady_clock::now();
    if (left.count() <= 0) return std::nullopt;
    arrow::Status failure;
    auto stream = Watch(request, endpoint, left);
    if (stream.ok()) {
      while (true) {
        auto e = (*stream)->Next();
        if (!e.ok()) {
          failure = e.status();
          break;
        }
        if (e->key != key.str()) continue;
        if (e->deleted() && e->version == 0 && ref.version == 0)
          continue;  // not yet there
        if (e->deleted()) {
          MutexLock lock(&mu_);
          InvalidateLocked(endpoint, key.str());
          return arrow::Status::KeyError("object ", key.str(), " was deleted");
        }
        if (e->version != ref.version)
          return ObjectRef{ref.endpoint, ref.key, e->version};
      }
    } else {
      failure = stream.status();
    }
    if (timed_out(failure)) return std::nullopt;
    auto detail = fl::FlightStatusDetail::UnwrapStatus(failure);
    const bool retry = failure.IsCapacityError() ||
                       (detail && detail->code() == fl::FlightStatusCode::Unavailable);
    if (!retry) return failure;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // then resubscribe
  }
}

CacheWatch::CacheWatch(CacheClient* client, std::string endpoint,
                       std::vector<KeyPattern> patterns,
                       std::chrono::milliseconds heartbeat)
    : client_(client),
      endpoint_(std::move(endpoint)),
      patterns_(std::move(patterns)),
      heartbeat_(heartbeat),
      thread_([this] { Run(); }) {}

CacheWatch::~CacheWatch() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    if (stream_) stream_->Cancel();
    cv_.SignalAll();
  }
  thread_.join();
}

bool CacheWatch::Vouches(std::string_view endpoint, std::string_view key,
                         uint64_t version, std::string_view epoch) const {
  if (endpoint != endpoint_) return false;
  auto parsed = ObjectKey::Parse(key);
  if (!parsed.ok()) return false;
  const bool covered =
      std::any_of(patterns_.begin(), patterns_.end(),
                  [&](const KeyPattern& p) { return p.Matches(*parsed); });
  if (!covered) return false;
  MutexLock lock(&mu_);
  if (!installed_ || !stream_ || epoch != epoch_) return false;
  if (std::chrono::steady_clock::now() - stream_->last_message() > 2 * heartbeat_) {
    return false;  // stalled: not trusted until a message arrives
  }
  auto it = versions_.find(key);
  return it != versions_.end() && it->second == version;
}

bool CacheWatch::WaitReady(std::chrono::duration<double> timeout) {
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  MutexLock lock(&mu_);
  while (!installed_ && !stop_ && cv_.WaitUntil(deadline)) {
  }
  return installed_;
}

void CacheWatch::Run() {
  WatchRequest request;
  for (const auto& p : patterns_) request.patterns.push_back(p.str());
  request.snapshot = true;
  request.heartbeat_ms = heartbeat_.count();
  int failures = 0;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
    }
    auto opened = client_->Watch(request, endpoint_);
    if (opened.ok()) {
      std::unique_ptr<WatchStream> stream = *std::move(opened);
      std::map<std::string, uint64_t, std::less<>> versions;
      for (auto& e : stream->TakeSnapshot()) {
        if (!e.deleted()) versions[e.key] = e.version;
      }
      {
        MutexLock lock(&mu_);
        if (stop_) return;  // stream destroyed (cancelled) on return
        stream_ = stream.get();
        versions_ = std::move(versions);
        epoch_ = stream->epoch();
        installed_ = true;
        cv_.SignalAll();
      }
      failures = 0;
      while (true) {
        auto e = stream->Next();
        if (!e.ok()) break;
        MutexLock lock(&mu_);
        if (e->deleted()) {
          versions_.erase(e->key);
        } else {
          versions_[e->key] = e->version;
        }
      }
      MutexLock lock(&mu_);
      installed_ = false;
      stream_ = nullptr;
      versions_.clear();
    }
    ++failures;
    const auto backoff_end =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(std::min(2000, 20 << std::min(failures, 6)));
    MutexLock lock(&mu_);
    while (!stop_ && cv_.WaitUntil(backoff_end)) {
    }
  }
}

arrow::Status CacheClient::SubscribeCache(const std::vector<std::string>& patterns,
                                          std::chrono::milliseconds heartbeat) {
  if (patterns.empty()) return arrow::Status::Invalid("SubscribeCache: no key pattern");
  std::vector<KeyPattern> parsed;
  for (const auto& p : patterns) {
    ARROW_ASSIGN_OR_RAISE(auto pattern, KeyPattern::Parse(p));
    parsed.push_back(std::move(pattern));
  }
  auto watch =
      std::make_shared<CacheWatch>(this, default_endpoint_, std::move(parsed), heartbeat);
  std::shared_ptr<CacheWatch> old;
  {
    MutexLock lock(&mu_);
    old = std::exchange(cache_watch_, std::move(watch));
  }
  return arrow::Status::OK();  // `old` stops here, outside mu_ (its thread may need it)
}

bool CacheClient::WaitCacheSubscribed(std::chrono::duration<double> timeout) {
  std::shared_ptr<CacheWatch> watch;
  {
    MutexLock lock(&mu_);
    watch = cache_watch_;
  }
  return watch && watch->WaitReady(timeout);
}

void CacheClient::UnsubscribeCache() {
  std::shared_ptr<CacheWatch> old;
  {
    MutexLock lock(&mu_);
    old = std::move(cache_watch_);
    cache_watch_ = nullptr;
  }
}

}  // namespace foc
