#include "node/tier_feed.h"

#include <set>
#include <utility>

#include <arrow/flight/types.h>
#include <spdlog/spdlog.h>

#include "flame_object_cache/cache_client.h"
#include "flame_object_cache/watch_stream.h"

namespace foc {

namespace {

// The tier must not fall behind its upstream: the largest queue the upstream allows.
constexpr int64_t kUpstreamQueue = 65536;
constexpr auto kRetryDelay = std::chrono::milliseconds(200);

std::string AppOf(const KeyPattern& p) {
  const std::string& prefix = p.key_prefix();
  return prefix.substr(0, prefix.find('/'));
}

}  // namespace

TierFeed::TierFeed(CacheClient* upstream) : upstream_(upstream) {}

TierFeed::~TierFeed() {
  std::map<std::string, std::unique_ptr<App>> apps;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    for (auto& [name, app] : apps_) {
      if (app->stream != nullptr) app->stream->Cancel();
    }
    cv_.SignalAll();
    apps.swap(apps_);  // the App objects stay where they are until joined
  }
  for (auto& [name, app] : apps) {
    if (app->thread.joinable()) app->thread.join();
  }
  feed_.Close();
}

std::string TierFeed::epoch() const {
  MutexLock lock(&mu_);
  return epoch_;
}

arrow::Status TierFeed::Ensure(const std::vector<KeyPattern>& patterns,
                               std::chrono::milliseconds timeout) {
  std::set<std::string> wanted;
  for (const auto& p : patterns) wanted.insert(AppOf(p));
  MutexLock lock(&mu_);
  for (const auto& name : wanted) {
    if (apps_.count(name)) continue;
    if (apps_.size() >= kMaxApps) {
      return arrow::Status::CapacityError(
          "this node tier already republishes the changes of ", kMaxApps,
          " apps; watch app '", name, "' at the upstream");
    }
    auto app = std::make_unique<App>();
    App* raw = app.get();
    apps_.emplace(name, std::move(app));
    raw->thread = std::thread([this, name, raw] { Run(name, raw); });
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& name : wanted) {
    App& app = *apps_.at(name);
    while (!app.ready) {
      const auto now = std::chrono::steady_clock::now();
      if (stop_ || now >= deadline) {
        return arrow::flight::MakeFlightError(
            arrow::flight::FlightStatusCode::Unavailable,
            "the node tier cannot watch app '" + name + "' at its upstream" +
                (app.error.empty() ? std::string() : ": " + app.error));
      }
      cv_.WaitFor(deadline - now);
    }
  }
  return arrow::Status::OK();
}

void TierFeed::Run(std::string name, App* app) {
  WatchRequest request;
  request.patterns = {name + "/*"};
  request.snapshot = false;  // the tier's WATCH calls read the listing themselves
  request.max_queue = kUpstreamQueue;
  bool was_ready = false;
  while (true) {
    auto opened = upstream_->Watch(request);
    {
      MutexLock lock(&mu_);
      if (stop_) {
        if (opened.ok()) (*opened)->Cancel();
        return;
      }
      if (!opened.ok()) {
        app->error = opened.status().message();
        cv_.SignalAll();
        cv_.WaitFor(kRetryDelay);
        continue;
      }
      app->stream = opened->get();
      app->ready = true;
      epoch_ = (*opened)->epoch();
      app->error.clear();
      cv_.SignalAll();
    }
    if (was_ready)
      spdlog::info("node tier: watching app '{}' at the upstream again", name);
    was_ready = true;
    std::unique_ptr<WatchStream> stream = *std::move(opened);
    arrow::Status ended;
    while (true) {
      auto event = stream->Next();
      if (!event.ok()) {
        ended = event.status();
        break;
      }
      auto kind = ParseChangeKind(event->kind);
      if (!kind.ok()) continue;  // `current` never comes without a snapshot
      feed_.Publish(Change{std::move(event->key), event->version, *kind});
    }
    bool stopping = false;
    {
      MutexLock lock(&mu_);
      app->ready = false;
      app->stream = nullptr;
      app->error = ended.message();
      stopping = stop_;
    }
    stream.reset();
    if (stopping) return;
    // Changes may have been missed: every tier subscriber resyncs (names its versions).
    spdlog::warn(
        "node tier: WATCH of app '{}' at the upstream ended ({}); tier "
        "subscribers resync",
        name, ended.ToString());
    feed_.DropAll("the node tier's WATCH subscription at its upstream was interrupted");
    MutexLock lock(&mu_);
    if (!stop_) cv_.WaitFor(kRetryDelay);
  }
}

}  // namespace foc
