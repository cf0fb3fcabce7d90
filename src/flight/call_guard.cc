#include "flight/call_guard.h"

#include <algorithm>

#include <arrow/flight/middleware.h>
#include <arrow/flight/server.h>
#include <arrow/flight/types.h>
#include <spdlog/spdlog.h>

#include "flight/status.h"

namespace foc {
namespace fl = arrow::flight;

int64_t CallGuardFactory::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void CallRecord::Touch() { last_progress_ns = CallGuardFactory::NowNs(); }

class CallGuardMiddleware : public fl::ServerMiddleware {
 public:
  CallGuardMiddleware(CallGuardFactory* factory, std::shared_ptr<CallRecord> record)
      : factory_(factory), record_(std::move(record)) {}
  std::string name() const override { return "CallGuardMiddleware"; }
  void SendingHeaders(fl::AddCallHeaders*) override {}
  void CallCompleted(const arrow::Status&) override { factory_->Finish(record_); }
  const std::shared_ptr<CallRecord>& record() const { return record_; }

 private:
  CallGuardFactory* factory_;
  std::shared_ptr<CallRecord> record_;
};

CallGuardFactory::CallGuardFactory(CallGuardOptions options) : options_(options) {}

std::string CallGuardFactory::NormalisePeer(const std::string& peer) {
  std::string out;
  out.reserve(peer.size());
  for (size_t i = 0; i < peer.size(); ++i) {
    if (peer[i] == '%' && i + 2 < peer.size()) {
      const std::string hex = peer.substr(i + 1, 2);
      if (hex == "5B" || hex == "5b") {
        out += '[';
        i += 2;
        continue;
      }
      if (hex == "5D" || hex == "5d") {
        out += ']';
        i += 2;
        continue;
      }
    }
    out += peer[i];
  }
  return out;
}

arrow::Status CallGuardFactory::StartCall(
    const fl::CallInfo& info, const fl::ServerCallContext& context,
    std::shared_ptr<fl::ServerMiddleware>* middleware) {
  const bool upload = info.method == fl::FlightMethod::DoPut;
  const bool streaming = upload || info.method == fl::FlightMethod::DoGet ||
                         info.method == fl::FlightMethod::DoExchange;
  auto record = std::make_shared<CallRecord>();
  record->peer = NormalisePeer(context.peer());
  record->method = fl::ToString(info.method);
  record->streaming = streaming;
  record->Touch();
  {
    MutexLock lock(&mu_);
    const auto in_flight = static_cast<int64_t>(calls_.size());
    if (options_.max_calls > 0 && in_flight >= options_.max_calls) {
      refused_++;
      return arrow::Status::CapacityError(
                 kResourceExhaustedPrefix, in_flight,
                 " calls in flight, the limit (cache.limits.max_concurrent_calls); "
                 "retry later")
          .WithDetail(std::make_shared<fl::FlightStatusDetail>(
              fl::FlightStatusCode::Unavailable));
    }
    if (upload && options_.max_uploads > 0 && uploads_ >= options_.max_uploads) {
      refused_++;
      return arrow::Status::CapacityError(
                 kResourceExhaustedPrefix, uploads_,
                 " uploads in flight, the limit (cache.limits.max_concurrent_uploads); "
                 "retry later")
          .WithDetail(std::make_shared<fl::FlightStatusDetail>(
              fl::FlightStatusCode::Unavailable));
    }
    calls_.push_back(record);
    if (upload) ++uploads_;
    last_seen_[record->peer] = record->last_progress_ns;
  }
  *middleware = std::make_shared<CallGuardMiddleware>(this, std::move(record));
  return arrow::Status::OK();
}

void CallGuardFactory::Finish(const std::shared_ptr<CallRecord>& record) {
  MutexLock lock(&mu_);
  auto it = std::find(calls_.begin(), calls_.end(), record);
  if (it == calls_.end()) return;
  calls_.erase(it);
  if (record->method == fl::ToString(fl::FlightMethod::DoPut)) --uploads_;
  last_seen_[record->peer] = NowNs();
}

std::shared_ptr<CallRecord> CallGuardFactory::RecordOf(
    const fl::ServerCallContext& context) {
  auto* m = context.GetMiddleware(kKey);
  if (!m) return nullptr;
  return static_cast<CallGuardMiddleware*>(m)->record();
}

std::map<std::string, PeerActivity> CallGuardFactory::Snapshot() const {
  std::map<std::string, PeerActivity> out;
  MutexLock lock(&mu_);
  for (const auto& [peer, ns] : last_seen_) out[peer].last_active_ns = ns;
  for (const auto& call : calls_) {
    auto& a = out[call->peer];
    a.active_calls++;
    const int64_t p = call->last_progress_ns.load();
    a.last_active_ns = std::max(a.last_active_ns, p);
    if (call->streaming &&
        (a.oldest_stream_progress_ns == 0 || p < a.oldest_stream_progress_ns)) {
      a.oldest_stream_progress_ns = p;
    }
  }
  return out;
}

void CallGuardFactory::Forget(int64_t before_ns) {
  MutexLock lock(&mu_);
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    const bool busy = std::any_of(calls_.begin(), calls_.end(),
                                  [&](const auto& c) { return c->peer == it->first; });
    if (!busy && it->second < before_ns) {
      it = last_seen_.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t CallGuardFactory::calls_in_flight() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(calls_.size());
}

void CallGuardFactory::CountCut(const std::string& why) {
  if (why == "stalled") cut_stalled_++;
  if (why == "idle") cut_idle_++;
  if (why == "excess") cut_excess_++;
  if (why == "http") cut_http_++;
}

void CallGuardFactory::Render(std::string* out) const {
  *out +=
      "# HELP foc_calls_refused_total Calls refused for the concurrency limits "
      "(cache.limits).\n# TYPE foc_calls_refused_total counter\n";
  *out += "foc_calls_refused_total " + std::to_string(refused()) + "\n";
  *out +=
      "# HELP foc_connections_closed_total Connections closed by the server's limits, "
      "by reason.\n# TYPE foc_connections_closed_total counter\n";
  for (const auto& [why, n] :
       {std::pair{"stalled", &cut_stalled_}, std::pair{"idle", &cut_idle_},
        std::pair{"excess", &cut_excess_}, std::pair{"http", &cut_http_}}) {
    *out += std::string("foc_connections_closed_total{reason=\"") + why + "\"} " +
            std::to_string(n->load()) + "\n";
  }
}

}  // namespace foc
