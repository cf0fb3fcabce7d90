#include "server/connection_watch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "flight/call_guard.h"

namespace foc {
namespace {

// A loopback listener with one accepted connection.
struct Pair {
  int listener = -1, client = -1, accepted = -1, port = 0;
  Pair() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(listener, 4);
    socklen_t len = sizeof(a);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    accepted = accept(listener, nullptr, nullptr);
  }
  ~Pair() {
    for (int fd : {listener, client, accepted}) close(fd);
  }
};

TEST(ConnectionWatchTest, ListsAcceptedSockets) {
  Pair p;
  auto sockets = ListAcceptedSockets();
  EXPECT_TRUE(std::any_of(sockets.begin(), sockets.end(), [&](const AcceptedSocket& s) {
    return s.fd == p.accepted && s.local_port == p.port &&
           s.peer.rfind("ipv4:127.0.0.1:", 0) == 0;
  }));
  // The listener has no peer and is not listed.
  EXPECT_FALSE(std::any_of(sockets.begin(), sockets.end(),
                           [&](const AcceptedSocket& s) { return s.fd == p.listener; }));
}

TEST(ConnectionWatchTest, ClosesIdleConnections) {
  Pair p;
  ConnectionWatchOptions options;
  options.flight_port = p.port;
  options.idle_seconds = 0.05;
  auto guard = std::make_shared<CallGuardFactory>(CallGuardOptions{});
  ConnectionWatch watch(options, guard);
  watch.RunOnce();  // first sight
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  watch.RunOnce();
  char byte = 0;
  EXPECT_EQ(recv(p.client, &byte, 1, 0), 0);  // the server side was shut down
  std::string out;
  guard->Render(&out);
  EXPECT_NE(out.find("foc_connections_closed_total{reason=\"idle\"} 1\n"),
            std::string::npos)
      << out;
}

TEST(ConnectionWatchTest, ClosesHttpConnectionsOpenTooLong) {
  Pair p;
  ConnectionWatchOptions options;
  options.flight_port = 1;  // not ours
  options.http_port = p.port;
  options.http_lifetime_seconds = 0.05;
  ConnectionWatch watch(options, nullptr);
  watch.RunOnce();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  watch.RunOnce();
  char byte = 0;
  EXPECT_EQ(recv(p.client, &byte, 1, 0), 0);
}

}  // namespace
}  // namespace foc
