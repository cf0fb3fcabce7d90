#include "cluster/membership.h"

#include <utility>

namespace foc::cluster {

std::string Membership::MemberKey(const std::string& prefix, const std::string& id) {
  return prefix + "/members/" + id;
}

Membership::Membership(EtcdClient* etcd, MembershipOptions options)
    : etcd_(etcd),
      options_(std::move(options)),
      members_prefix_(options_.prefix + "/members/") {}

Membership::~Membership() { Leave(); }

arrow::Result<std::unique_ptr<Membership>> Membership::Join(EtcdClient* etcd,
                                                            MembershipOptions options) {
  if (etcd == nullptr) return arrow::Status::Invalid("membership needs an etcd client");
  if (options.id.empty() || options.id.find('/') != std::string::npos) {
    return arrow::Status::Invalid("member id '", options.id,
                                  "' must be non-empty and contain no '/'");
  }
  if (options.ttl.count() < 2) {
    return arrow::Status::Invalid("member lease TTL must be at least 2 s");
  }
  if (options.renew_interval.count() <= 0) {
    options.renew_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(options.ttl) / 3;
  }
  std::unique_ptr<Membership> m(new Membership(etcd, std::move(options)));
  ARROW_RETURN_NOT_OK(m->Register());
  ARROW_RETURN_NOT_OK(m->Resync());
  m->renewer_ = std::thread([p = m.get()] { p->RenewLoop(); });
  return m;
}

arrow::Status Membership::Register() {
  ARROW_ASSIGN_OR_RAISE(int64_t lease, etcd_->GrantLease(options_.ttl.count()));
  auto put =
      etcd_->Put(MemberKey(options_.prefix, options_.id), options_.endpoint, lease);
  if (!put.ok()) {
    (void)etcd_->RevokeLease(lease);
    return put.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  lease_ = lease;
  return arrow::Status::OK();
}

arrow::Status Membership::Resync() {
  const std::string end = PrefixRangeEnd(members_prefix_);
  ARROW_ASSIGN_OR_RAISE(auto range, etcd_->Range(members_prefix_, end));
  MemberMap fresh;
  for (const auto& kv : range.kvs) {
    fresh[kv.key.substr(members_prefix_.size())] = kv.value;
  }
  ARROW_ASSIGN_OR_RAISE(auto watch, etcd_->Watch(
                                        members_prefix_, end, range.revision + 1,
                                        [this](const std::vector<WatchEvent>& events,
                                               int64_t) { Apply(events); },
                                        [this](const arrow::Status&) {
                                          std::lock_guard<std::mutex> lock(mu_);
                                          watch_broken_ = true;
                                          wake_.notify_all();
                                        }));
  // The old watch is cancelled outside mu_: its thread may be waiting for mu_ in Apply.
  std::unique_ptr<EtcdWatch> old = std::move(watch_);
  if (old) old->Cancel();
  std::function<void(const MemberMap&)> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    members_ = fresh;
    watch_broken_ = false;
    callback = on_change_;
  }
  watch_ = std::move(watch);
  if (callback) callback(fresh);
  return arrow::Status::OK();
}

void Membership::Apply(const std::vector<WatchEvent>& events) {
  MemberMap snapshot;
  std::function<void(const MemberMap&)> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& ev : events) {
      if (ev.kv.key.rfind(members_prefix_, 0) != 0) continue;
      std::string id = ev.kv.key.substr(members_prefix_.size());
      if (ev.type == WatchEvent::Type::kPut) {
        members_[id] = ev.kv.value;
      } else {
        members_.erase(id);
      }
    }
    snapshot = members_;
    callback = on_change_;
  }
  if (callback) callback(snapshot);
}

void Membership::RenewLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.renew_interval, [this] { return stopping_; });
    if (stopping_) break;
    const int64_t lease = lease_;
    const bool broken = watch_broken_;
    lock.unlock();
    auto renewed = etcd_->KeepAlive(lease);
    if (!renewed.ok() && renewed.status().IsKeyError()) {
      // etcd forgot the lease (it expired during an outage): register again.
      (void)Register();
    }
    if (broken) (void)Resync();  // retried next round if etcd is still away
    lock.lock();
  }
}

void Membership::Leave() {
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !renewer_.joinable() && !watch_) return;
    stopping_ = true;
    lease = lease_;
    lease_ = 0;
    wake_.notify_all();
  }
  if (renewer_.joinable()) renewer_.join();
  if (watch_) {
    watch_->Cancel();
    watch_.reset();
  }
  if (lease != 0) (void)etcd_->RevokeLease(lease);
}

void Membership::AbandonForTesting() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    lease_ = 0;  // never revoked: the key lingers until the lease expires
    wake_.notify_all();
  }
  if (renewer_.joinable()) renewer_.join();
  if (watch_) {
    watch_->Cancel();
    watch_.reset();
  }
}

void Membership::OnChange(std::function<void(const MemberMap&)> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_change_ = std::move(callback);
}

MemberMap Membership::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

int64_t Membership::lease() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lease_;
}

}  // namespace foc::cluster
