// A real etcd server for tests (test code only): Debian's `etcd` (package etcd-server,
// which scripts/bootstrap.sh installs) started on free loopback ports with a temporary
// data directory, stopped (SIGKILL) and removed when the object goes away.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <arrow/status.h>

#include "testing/ports.h"

namespace foc::testing {

class EtcdServer {
 public:
  EtcdServer() = default;
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;
  ~EtcdServer() {
    Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  /// Starts etcd and waits (up to 20 s) until /health answers. Starting again after Stop
  /// keeps the data directory (a restart).
  arrow::Status Start() {
    if (dir_.empty()) {
      std::string tmpl =
          (std::filesystem::temp_directory_path() / "foc-etcd-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr)
        return arrow::Status::IOError("mkdtemp failed");
      dir_ = tmpl;
      client_port_ = FreeLoopbackPort();
      peer_port_ = FreeLoopbackPort();
    }
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {"etcd",
                                     "--name=test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=test=" + peer,
                                     "--log-outputs=" + dir_ + "/etcd.log",
                                     "--logger=zap"};
    pid_ = ::fork();
    if (pid_ < 0) return arrow::Status::IOError("fork failed");
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("etcd", argv.data());
      ::_exit(127);
    }
    httplib::Client probe(client);
    probe.set_connection_timeout(0, 200000);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return arrow::Status::IOError(
            "etcd exited at start (is Debian's etcd-server installed? "
            "scripts/bootstrap.sh "
            "installs it); log: ",
            dir_, "/etcd.log");
      }
      auto res = probe.Get("/health");
      if (res && res->status == 200) return arrow::Status::OK();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Stop();
    return arrow::Status::IOError("etcd did not become healthy within 20 s");
  }

  /// SIGKILLs etcd (data directory kept).
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(client_port_);
  }

 private:
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace foc::testing
