#include "client/watch_stream.h"

#include <thread>

#include <arrow/flight/client.h>

#include "client/cache_client.h"

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

arrow::Result<WatchMessage> WatchStream::NextMessage() {
  auto chunk = reader_->Next();
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
  const std::string target(endpoint.empty() ? options_.endpoint : endpoint);
  ARROW_ASSIGN_OR_RAISE(auto client, ClientFor(target));
  ARROW_ASSIGN_OR_RAISE(auto command, EncodeWatchCommand(request));
  fl::FlightCallOptions call;  // no per-call deadline unless asked: a watch is long-lived
  if (timeout.count() > 0) call.timeout = timeout;
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
          std::lock_guard lock(mu_);
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

}  // namespace foc
