#include "server/connection_watch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "flight/call_guard.h"

namespace foc {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;

bool Describe(const sockaddr_storage& a, int* port, std::string* text) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    *port = ntohs(in->sin_port);
    *text = std::string("ipv4:") + buf + ":" + std::to_string(*port);
    return true;
  }
  if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    *port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof(buf));
      *text = std::string("ipv4:") + buf + ":" + std::to_string(*port);
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
      *text = std::string("ipv6:[") + buf + "]:" + std::to_string(*port);
    }
    return true;
  }
  return false;
}

}  // namespace

std::vector<AcceptedSocket> ListAcceptedSockets() {
  std::vector<AcceptedSocket> out;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return out;
  const int own = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == own) continue;
    char link[64] = {};
    const std::string path = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(path.c_str(), link, sizeof(link) - 1) <= 0) continue;
    if (std::strncmp(link, "socket:", 7) != 0) continue;
    sockaddr_storage local{}, peer{};
    socklen_t len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    AcceptedSocket s;
    s.fd = fd;
    std::string ignored;
    int peer_port = 0;
    if (!Describe(local, &s.local_port, &ignored)) continue;
    if (!Describe(peer, &peer_port, &s.peer)) continue;
    out.push_back(std::move(s));
  }
  closedir(dir);
  return out;
}

ConnectionWatch::ConnectionWatch(ConnectionWatchOptions options,
                                 std::shared_ptr<CallGuardFactory> guard)
    : options_(options), guard_(std::move(guard)) {}

ConnectionWatch::~ConnectionWatch() { Stop(); }

void ConnectionWatch::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::duration<double>(options_.tick_seconds));
      if (stop_) break;
      lock.unlock();
      RunOnce();
      lock.lock();
    }
  });
}

void ConnectionWatch::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConnectionWatch::Close(const AcceptedSocket& s, const std::string& why,
                            const std::string& detail) {
  // Check the descriptor still is that connection (gRPC may have closed and reused it).
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  int port = 0;
  std::string now;
  if (getpeername(s.fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
      !Describe(peer, &port, &now) || now != s.peer) {
    return;
  }
  ::shutdown(s.fd, SHUT_RDWR);
  if (guard_) guard_->CountCut(why);
  spdlog::info("closing connection from {}: {}", s.peer, detail);
}

void ConnectionWatch::RunOnce() {
  const int64_t now = CallGuardFactory::NowNs();
  auto sockets = ListAcceptedSockets();
  const auto activity = guard_ ? guard_->Snapshot() : decltype(guard_->Snapshot()){};
  std::map<std::string, int64_t> seen;
  struct Flight {
    AcceptedSocket socket;
    int64_t first_seen;
    bool idle;
  };
  std::vector<Flight> flight;
  for (const auto& s : sockets) {
    const bool is_flight = s.local_port == options_.flight_port;
    const bool is_http = options_.http_port != 0 && s.local_port == options_.http_port;
    if (!is_flight && !is_http) continue;
    const std::string id = std::to_string(s.local_port) + "/" + s.peer;
    auto it = first_seen_.find(id);
    const int64_t first = it == first_seen_.end() ? now : it->second;
    seen[id] = first;
    const double age = static_cast<double>(now - first) / kNsPerSecond;
    if (is_http) {
      if (age > options_.http_lifetime_seconds) {
        Close(s, "http",
              "metrics/health request not done within " +
                  std::to_string(options_.http_lifetime_seconds) + " s");
      }
      continue;
    }
    PeerActivity a;
    if (auto f = activity.find(s.peer); f != activity.end()) a = f->second;
    if (a.oldest_stream_progress_ns != 0 &&
        static_cast<double>(now - a.oldest_stream_progress_ns) / kNsPerSecond >
            options_.stalled_seconds) {
      Close(s, "stalled",
            "a stream moved no message for more than " +
                std::to_string(options_.stalled_seconds) +
                " s (cache.limits.stalled_stream_seconds)");
      continue;
    }
    const int64_t last = std::max(first, a.last_active_ns);
    const bool idle = a.active_calls == 0;
    if (idle && static_cast<double>(now - last) / kNsPerSecond > options_.idle_seconds) {
      Close(s, "idle",
            "no call for more than " + std::to_string(options_.idle_seconds) +
                " s (cache.limits.idle_connection_seconds)");
      continue;
    }
    flight.push_back({s, first, idle});
  }
  if (options_.max_connections > 0 &&
      static_cast<int64_t>(flight.size()) > options_.max_connections) {
    // Keep busy connections first, then the oldest; close the rest.
    std::stable_sort(flight.begin(), flight.end(), [](const Flight& a, const Flight& b) {
      if (a.idle != b.idle) return !a.idle;
      return a.first_seen < b.first_seen;
    });
    for (size_t i = static_cast<size_t>(options_.max_connections); i < flight.size();
         ++i) {
      Close(flight[i].socket, "excess",
            "more than " + std::to_string(options_.max_connections) +
                " connections (cache.limits.max_connections)");
    }
  }
  first_seen_ = std::move(seen);
  if (guard_) {
    guard_->Forget(now - static_cast<int64_t>(options_.idle_seconds * 2 * kNsPerSecond));
  }
}

}  // namespace foc
