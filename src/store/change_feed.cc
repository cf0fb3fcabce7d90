#include "store/change_feed.h"

#include <algorithm>
#include <atomic>

#include "base/check.h"

namespace foc {

std::string_view ChangeKindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kPut:
      return "put";
    case ChangeKind::kPatch:
      return "patch";
    case ChangeKind::kDelete:
      return "delete";
  }
  return "put";
}

arrow::Result<ChangeKind> ParseChangeKind(std::string_view name) {
  if (name == "put") return ChangeKind::kPut;
  if (name == "patch") return ChangeKind::kPatch;
  if (name == "delete") return ChangeKind::kDelete;
  return arrow::Status::Invalid("unknown change kind '", name,
                                "' (expected put, patch or delete)");
}

// Shared by the feed and its subscriptions, so either may go first.
struct Subscription::Core {
  mutable Mutex mu;
  std::vector<Subscription*> subscribers FOC_GUARDED_BY(mu);
  bool closed FOC_GUARDED_BY(mu) = false;
  std::atomic<int64_t> count{0};  // subscribers.size(), read without mu
  std::atomic<int64_t> published{0};
  std::atomic<int64_t> delivered{0};
  std::atomic<int64_t> dropped{0};
};

Subscription::Subscription(std::shared_ptr<Core> core, std::vector<KeyPattern> patterns,
                           size_t max_queue)
    : feed_(std::move(core)), patterns_(std::move(patterns)), max_queue_(max_queue) {}

Subscription::~Subscription() {
  MutexLock lock(&feed_->mu);
  auto& subs = feed_->subscribers;
  subs.erase(std::remove(subs.begin(), subs.end(), this), subs.end());
  feed_->count = static_cast<int64_t>(subs.size());
}

bool Subscription::Matches(const ObjectKey& key) const {
  for (const auto& p : patterns_) {
    if (p.Matches(key)) return true;
  }
  return false;
}

void Subscription::Offer(const Change& change, int64_t* delivered, int64_t* dropped) {
  MutexLock lock(&mu_);
  if (!final_.ok()) return;
  if (queue_.size() >= max_queue_) {
    final_ = arrow::Status::CapacityError(
        "watch subscriber fell behind: more than ", max_queue_,
        " changes were waiting to be sent, so it was dropped and later changes were not "
        "delivered; resync: subscribe again naming the versions you have");
    queue_.clear();
    queue_.shrink_to_fit();
    ++*dropped;
  } else {
    queue_.push_back(change);
    ++*delivered;
  }
  // Bounded: a queue never holds more than max_queue_ Changes.
  FOC_DCHECK_LE(queue_.size(), max_queue_);
  cv_.Signal();
}

void Subscription::End(arrow::Status final_status) {
  MutexLock lock(&mu_);
  if (final_.ok()) final_ = std::move(final_status);
  cv_.Signal();
}

arrow::Status Subscription::Next(std::chrono::milliseconds timeout,
                                 std::vector<Change>* out) {
  MutexLock lock(&mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (queue_.empty() && final_.ok() && cv_.WaitUntil(deadline)) {
  }
  // Queued changes first: a closed feed still hands out what was committed before.
  if (!queue_.empty()) {
    out->insert(out->end(), std::make_move_iterator(queue_.begin()),
                std::make_move_iterator(queue_.end()));
    queue_.clear();
    return arrow::Status::OK();
  }
  return final_;
}

ChangeFeed::ChangeFeed() : core_(std::make_shared<Subscription::Core>()) {}

ChangeFeed::~ChangeFeed() { Close(); }

arrow::Result<std::unique_ptr<Subscription>> ChangeFeed::Subscribe(
    std::vector<KeyPattern> patterns, size_t max_queue) {
  if (patterns.empty()) return arrow::Status::Invalid("subscribe: no key pattern");
  if (max_queue == 0) return arrow::Status::Invalid("subscribe: queue limit must be > 0");
  std::unique_ptr<Subscription> sub(
      new Subscription(core_, std::move(patterns), max_queue));
  MutexLock lock(&core_->mu);
  if (core_->closed) {
    // Not registered: the destructor's removal finds nothing.
    return arrow::Status::Cancelled("the change feed is closed (server shutting down)");
  }
  core_->subscribers.push_back(sub.get());
  core_->count = static_cast<int64_t>(core_->subscribers.size());
  return sub;
}

void ChangeFeed::Publish(const Change& change) {
  core_->published++;
  if (core_->count.load(std::memory_order_acquire) == 0) return;
  auto key = ObjectKey::Parse(change.key);
  if (!key.ok()) return;  // the store only publishes valid keys
  int64_t delivered = 0, dropped = 0;
  {
    MutexLock lock(&core_->mu);
    for (Subscription* s : core_->subscribers) {
      if (s->Matches(*key)) s->Offer(change, &delivered, &dropped);
    }
  }
  core_->delivered += delivered;
  core_->dropped += dropped;
}

void ChangeFeed::Close() {
  MutexLock lock(&core_->mu);
  core_->closed = true;
  for (Subscription* s : core_->subscribers) {
    s->End(arrow::Status::Cancelled("the server is shutting down; subscribe again"));
  }
}

void ChangeFeed::DropAll(const std::string& reason) {
  MutexLock lock(&core_->mu);
  for (Subscription* s : core_->subscribers) {
    s->End(arrow::Status::CapacityError(reason,
                                        "; resync: subscribe again naming the "
                                        "versions you have"));
    ++core_->dropped;
  }
}

ChangeFeedStats ChangeFeed::stats() const {
  ChangeFeedStats s;
  s.subscribers = core_->count;
  s.published = core_->published;
  s.delivered = core_->delivered;
  s.dropped = core_->dropped;
  return s;
}

}  // namespace foc
