// Test helper: a Versity S3 Gateway (versitygw, built by scripts/bootstrap.sh into
// .tools/versitygw-<version>/) on a free loopback port, POSIX backend in a temporary
// directory, stopped (SIGTERM, then SIGKILL) by the destructor. Test code only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "testing/ports.h"

extern char** environ;

namespace foc::testing {

inline constexpr char kS3AccessKey[] = "foc-test-access";
inline constexpr char kS3SecretKey[] = "foc-test-secret-key";

/// The versitygw binary: $FOC_VERSITYGW, else the one bootstrap builds.
inline std::string VersitygwBinary() {
  if (const char* env = std::getenv("FOC_VERSITYGW"); env && *env) return env;
#ifdef FOC_VERSITYGW_BINARY
  return FOC_VERSITYGW_BINARY;
#else
  return "versitygw";
#endif
}

class Versitygw {
 public:
  /// Starts the gateway over `root` (a directory; each subdirectory is a bucket).
  explicit Versitygw(std::string root) : root_(std::move(root)) {
    port_ = FreeLoopbackPort();
    Start();
  }
  ~Versitygw() { Stop(); }
  Versitygw(const Versitygw&) = delete;
  Versitygw& operator=(const Versitygw&) = delete;

  /// Starts it again (same port and directory) after Stop().
  bool Start() {
    if (pid_ > 0) return true;
    const std::string binary = VersitygwBinary();
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    std::vector<std::string> args{binary,     "--access",   kS3AccessKey,
                                  "--secret", kS3SecretKey, "--port",
                                  listen,     "posix",      root_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    if (pid_ <= 0) return false;
    for (int i = 0; i < 200; ++i) {
      if (CanConnect(port_)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }

  /// Creates a bucket (a directory of the POSIX backend).
  void MakeBucket(const std::string& bucket) const {
    std::filesystem::create_directories(root_ + "/" + bucket);
  }

  /// An s3:// URI for `bucket/prefix` on this gateway, credentials in the URI.
  std::string Uri(const std::string& bucket_and_prefix,
                  const std::string& extra = "") const {
    return std::string("s3://") + kS3AccessKey + ":" + kS3SecretKey + "@" +
           bucket_and_prefix + "?endpoint_override=127.0.0.1:" + std::to_string(port_) +
           "&scheme=http" + extra;
  }

 private:
  std::string root_;
  int port_ = -1;
  pid_t pid_ = -1;
};

}  // namespace foc::testing
