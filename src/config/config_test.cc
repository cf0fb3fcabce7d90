#include "config/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

namespace fs = std::filesystem;

TEST(SizeTest, UpstreamUnitsWithoutDrift) {
  EXPECT_EQ(*ParseSize("10"), 10);
  EXPECT_EQ(*ParseSize("4096"), 4096);  // upstream's effective limit drifts to 4198
  EXPECT_EQ(*ParseSize("1G"), int64_t{1} << 30);
  EXPECT_EQ(*ParseSize(" 512M "), int64_t{512} << 20);
  EXPECT_EQ(*ParseSize("1500MB"), int64_t{1500} << 20);
  EXPECT_EQ(*ParseSize("8gib"), int64_t{8} << 30);
  EXPECT_EQ(*ParseSize("2Ki"), 2048);
  EXPECT_EQ(*ParseSize("1.5G"), int64_t{3} << 29);
  EXPECT_EQ(*ParseSize("1 T"), int64_t{1} << 40);
  EXPECT_EQ(*ParseSize("1PB"), int64_t{1} << 50);
  EXPECT_EQ(*ParseSize("100b"), 100);
  EXPECT_EQ(*ParseSize("0.5K"), 512);
  EXPECT_EQ(*ParseSize("10737418240"), int64_t{10} << 30);  // RFE426's unquoted number
}

TEST(SizeTest, Errors) {
  EXPECT_STATUS(Invalid, "unknown size unit 'q'", ParseSize("12Q"));
  EXPECT_STATUS(Invalid, "no number", ParseSize("G"));
  EXPECT_STATUS(Invalid, "no number", ParseSize(""));
  EXPECT_STATUS(Invalid, "not a non-negative number", ParseSize("-1G"));
  EXPECT_STATUS(Invalid, "not a number", ParseSize("1.2.3M"));
  EXPECT_STATUS(Invalid, "too large", ParseSize("8192P"));
  EXPECT_STATUS(Invalid, "too large", ParseSize("99999999999999999999"));
}

TEST(SizeTest, FormatRoundTrips) {
  for (int64_t v : {int64_t{1}, int64_t{1023}, int64_t{1024}, int64_t{3} << 29,
                    int64_t{1} << 30, int64_t{5} << 50}) {
    EXPECT_EQ(*ParseSize(FormatSize(v)), v) << FormatSize(v);
  }
  EXPECT_EQ(FormatSize(int64_t{1} << 30), "1G");
}

TEST(LogLevelTest, Names) {
  EXPECT_EQ(*ParseLogLevel("INFO"), "info");
  EXPECT_EQ(*ParseLogLevel("warning"), "warn");
  EXPECT_STATUS(Invalid, "unknown log level", ParseLogLevel("loud"));
}

constexpr const char* kFull = R"(
cluster:
  name: flame
  endpoint: http://127.0.0.1:8080
cache:
  endpoint: grpcs://cache.example:9443
  network_interface: "eth[0-9]+"
  bind: "[::]:9443"
  advertised_endpoint: grpc+tls://cache.example:9443
  storage: fs://cache
  capacity: 100G
  shutdown_grace_seconds: 7.5
  eviction:
    policy: LRU
    max_memory: 512M
    max_objects: 10000
    memory_full: refuse
  tls:
    cert_file: /etc/flame/certs/server.crt
    key_file: /etc/flame/certs/server.key
    ca_file: /etc/flame/certs/ca.crt
  metrics:
    port: 9100
    bind: 0.0.0.0
  log:
    level: debug
    file: logs/foc.log
    max_size: 10M
    max_files: 3
)";

TEST(ConfigTest, EveryKey) {
  Config c;
  ASSERT_OK(ApplyYaml(kFull, "test.yaml", &c));
  EXPECT_EQ(c.endpoint, "grpcs://cache.example:9443");
  EXPECT_EQ(c.network_interface, "eth[0-9]+");
  EXPECT_TRUE(c.network_interface_set);
  EXPECT_EQ(c.bind, "[::]:9443");
  EXPECT_EQ(c.advertised_endpoint, "grpc+tls://cache.example:9443");
  EXPECT_EQ(c.storage, "fs://cache");
  EXPECT_EQ(c.capacity, int64_t{100} << 30);
  EXPECT_EQ(c.shutdown_grace_seconds, 7.5);
  EXPECT_EQ(c.eviction_policy, EvictionPolicy::kLru);
  EXPECT_EQ(c.max_memory, int64_t{512} << 20);
  EXPECT_EQ(c.max_objects, 10000);
  EXPECT_EQ(c.memory_full, MemoryFull::kRefuse);
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->cert_file, "/etc/flame/certs/server.crt");
  EXPECT_EQ(c.tls->key_file, "/etc/flame/certs/server.key");
  EXPECT_EQ(c.tls->ca_file, "/etc/flame/certs/ca.crt");
  EXPECT_EQ(c.metrics.port, 9100);
  EXPECT_EQ(c.metrics.bind, "0.0.0.0");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.file, "logs/foc.log");
  EXPECT_EQ(c.log.max_size, 10 << 20);
  EXPECT_EQ(c.log.max_files, 3);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_OK(Validate(c));
}

TEST(ConfigTest, UpstreamDefaultsAndMemoryOnlyWhenStorageAbsent) {
  Config c;
  ASSERT_OK(ApplyYaml("cache:\n  endpoint: grpc://127.0.0.1:9090\n", "f", &c));
  EXPECT_EQ(c.storage, "none");
  EXPECT_EQ(c.eviction_policy, EvictionPolicy::kLru);
  EXPECT_EQ(c.max_memory, int64_t{1} << 30);
  EXPECT_EQ(c.max_objects, 0);
  EXPECT_EQ(c.network_interface, "eth0");
  EXPECT_FALSE(c.network_interface_set);
  EXPECT_FALSE(c.tls.has_value());
  EXPECT_FALSE(c.metrics.port.has_value());
  EXPECT_EQ(c.log.level, "info");
  // An unquoted number is bytes; Helm's `max_objects: null` is unlimited.
  ASSERT_OK(ApplyYaml(
      "cache:\n  eviction:\n    max_memory: 10737418240\n    max_objects: null\n", "f",
      &c));
  EXPECT_EQ(c.max_memory, int64_t{10} << 30);
  EXPECT_EQ(c.max_objects, 0);
  // The cluster: section is not required.
  EXPECT_OK(ApplyYaml("cache: {}\n", "f", &c));
}

TEST(ConfigTest, ErrorsNameKeyAndValue) {
  Config c;
  EXPECT_STATUS(Invalid, "cache.eviction.max_memory: invalid value '12Q'",
                ApplyYaml("cache:\n  eviction:\n    max_memory: 12Q\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.eviction.max_objects: invalid value '-3'",
                ApplyYaml("cache:\n  eviction:\n    max_objects: -3\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.eviction.policy: invalid value 'fifo'",
                ApplyYaml("cache:\n  eviction:\n    policy: fifo\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.eviction.memory_full: invalid value 'drop'",
                ApplyYaml("cache:\n  eviction:\n    memory_full: drop\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.endpoint: invalid value 'tcp://x:1'",
                ApplyYaml("cache:\n  endpoint: tcp://x:1\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.bind: invalid value 'a b'",
                ApplyYaml("cache:\n  bind: a b\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.metrics.port: invalid value '99999'",
                ApplyYaml("cache:\n  metrics:\n    port: 99999\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.log.level: invalid value 'loud'",
                ApplyYaml("cache:\n  log:\n    level: loud\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.capacity: invalid value '0'",
                ApplyYaml("cache:\n  capacity: 0\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.shutdown_grace_seconds: invalid value 'soon'",
                ApplyYaml("cache:\n  shutdown_grace_seconds: soon\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.tls: cert_file and key_file are both required",
                ApplyYaml("cache:\n  tls:\n    cert_file: a.crt\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.eviction: expected a mapping",
                ApplyYaml("cache:\n  eviction: lru\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.endpoint: expected a single value",
                ApplyYaml("cache:\n  endpoint: [a, b]\n", "f", &c));
  EXPECT_STATUS(Invalid, "f: no 'cache:' section",
                ApplyYaml("cluster:\n  name: x\n", "f", &c));
  EXPECT_STATUS(Invalid, "f: not valid YAML", ApplyYaml("cache: [\n", "f", &c));
}

TEST(ConfigTest, UnknownKeysWarn) {
  Config c;
  ASSERT_OK(ApplyYaml(
      "cache:\n  capacityy: 1G\n  eviction:\n    batch: 10\n  pprof:\n    port: 6060\n",
      "f", &c));
  ASSERT_EQ(c.warnings.size(), 3u);
  EXPECT_NE(c.warnings[0].find("cache.capacityy"), std::string::npos);
  EXPECT_NE(c.warnings[1].find("cache.eviction.batch"), std::string::npos);
  EXPECT_NE(c.warnings[2].find("cache.pprof"), std::string::npos);
}

TEST(ConfigTest, CrossFieldValidation) {
  Config c;
  c.endpoint = "grpc+tls://127.0.0.1:1";
  EXPECT_STATUS(Invalid, "uses TLS but cache.tls.cert_file", Validate(c));
  c.endpoint = "grpcs://127.0.0.1:1";
  EXPECT_STATUS(Invalid, "uses TLS but", Validate(c));
  c.tls = TlsConfig{"a", "b", ""};
  EXPECT_OK(Validate(c));
  c.advertised_endpoint = "grpc://h:1";
  EXPECT_STATUS(Invalid, "disagree about TLS", Validate(c));
  c.advertised_endpoint.clear();
  c.endpoint = "grpc://127.0.0.1:1";
  c.tls->ca_file = "ca";
  EXPECT_STATUS(Invalid, "cache.tls.ca_file 'ca' requires a TLS endpoint", Validate(c));
}

TEST(ConfigTest, UpstreamCredentialsAndZeroCopy) {
  Config c;
  ASSERT_OK(
      ApplyYaml("cache:\n  upstream: grpcs://10.0.0.5:9090\n  upstream_token_file: t\n"
                "  upstream_ca_file: /ca.pem\n  upstream_cert_file: c.pem\n"
                "  upstream_key_file: k.pem\n  zero_copy: false\n",
                "f", &c));
  EXPECT_EQ(c.upstream_token_file, "t");
  EXPECT_EQ(c.upstream_ca_file, "/ca.pem");
  EXPECT_EQ(c.upstream_cert_file, "c.pem");
  EXPECT_EQ(c.upstream_key_file, "k.pem");
  EXPECT_FALSE(c.zero_copy);
  EXPECT_OK(Validate(c));
  Config back;
  ASSERT_OK(ApplyYaml(FormatConfig(c), "formatted", &back));
  EXPECT_EQ(back.upstream_key_file, "k.pem");
  EXPECT_FALSE(back.zero_copy);
  c.upstream_key_file.clear();
  EXPECT_STATUS(Invalid, "both required", Validate(c));
  c.upstream_cert_file.clear();
  c.upstream = "grpc://10.0.0.5:9090";
  EXPECT_STATUS(Invalid, "need a TLS upstream", Validate(c));
  c.upstream.clear();
  EXPECT_STATUS(Invalid, "need cache.upstream", Validate(c));
  EXPECT_STATUS(Invalid, "cache.zero_copy: invalid value 'maybe'",
                ApplyYaml("cache:\n  zero_copy: maybe\n", "f", &c));
  EXPECT_STATUS(Invalid, "cache.upstream_ca_file: invalid value ''",
                ApplyYaml("cache:\n  upstream_ca_file: ''\n", "f", &c));
}

TEST(ConfigTest, Transport) {
  Config c;
  EXPECT_EQ(c.transport, Transport::kAuto);
  ASSERT_OK(ApplyYaml("cache:\n  transport: Arrow\n", "f", &c));
  EXPECT_EQ(c.transport, Transport::kArrow);
  Config back;
  ASSERT_OK(ApplyYaml(FormatConfig(c), "formatted", &back));
  EXPECT_EQ(back.transport, Transport::kArrow);
  ASSERT_OK(ApplyYaml("cache:\n  transport: callback\n", "f", &c));
  EXPECT_EQ(c.transport, Transport::kCallback);
  EXPECT_STATUS(Invalid, "cache.transport: invalid value 'async'",
                ApplyYaml("cache:\n  transport: async\n", "f", &c));
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  Config c;
  ASSERT_OK(ApplyYaml(kFull, "f", &c));
  Environment env = {{"FLAME_HOME", "/opt/flame"},
                     {"FLAME_CACHE_STORAGE", "/data/cache"},
                     {"FLAME_CACHE_EVICTION_POLICY", "none"},
                     {"FLAME_CACHE_MAX_MEMORY", "2G"},
                     {"FLAME_CACHE_MAX_OBJECTS", "5"},
                     {"FLAME_CACHE_MEMORY_FULL", "evict"},
                     {"FLAME_CACHE_CAPACITY", "1T"},
                     {"FLAME_CACHE_BIND", "127.0.0.1:7"},
                     {"FLAME_CACHE_ADVERTISED_ENDPOINT", "grpc+tls://h:7"},
                     {"FLAME_CACHE_NETWORK_INTERFACE", "lo"},
                     {"FLAME_CACHE_METRICS_PORT", "0"},
                     {"FLAME_CACHE_LOG_LEVEL", "warn"},
                     {"FLAME_CACHE_LOG_FILE", "/tmp/x.log"},
                     {"FLAME_CACHE_SHUTDOWN_GRACE_SECONDS", "3"}};
  ASSERT_OK(ApplyEnvironment(env, &c));
  EXPECT_EQ(c.flame_home, "/opt/flame");
  EXPECT_EQ(c.storage, "/data/cache");
  EXPECT_EQ(c.eviction_policy, EvictionPolicy::kNone);
  EXPECT_EQ(c.max_memory, int64_t{2} << 30);
  EXPECT_EQ(c.max_objects, 5);
  EXPECT_EQ(c.memory_full, MemoryFull::kEvict);
  EXPECT_EQ(c.capacity, int64_t{1} << 40);
  EXPECT_EQ(c.bind, "127.0.0.1:7");
  EXPECT_EQ(c.advertised_endpoint, "grpc+tls://h:7");
  EXPECT_EQ(c.network_interface, "lo");
  EXPECT_EQ(c.metrics.port, 0);
  EXPECT_EQ(c.log.level, "warn");
  EXPECT_EQ(c.log.file, "/tmp/x.log");
  EXPECT_EQ(c.shutdown_grace_seconds, 3);
  // Empty values are ignored (upstream: FLAME_CACHE_STORAGE).
  ASSERT_OK(ApplyEnvironment(
      {{"FLAME_CACHE_STORAGE", ""}, {"FLAME_CACHE_MAX_MEMORY", " "}}, &c));
  EXPECT_EQ(c.storage, "/data/cache");
}

TEST(ConfigTest, InvalidEnvironmentNamesVariable) {
  Config c;
  // Upstream silently fell back to 1 GiB or ignored these; we stop.
  EXPECT_STATUS(Invalid, "FLAME_CACHE_MAX_MEMORY: invalid value 'lots'",
                ApplyEnvironment({{"FLAME_CACHE_MAX_MEMORY", "lots"}}, &c));
  EXPECT_STATUS(Invalid, "FLAME_CACHE_MAX_OBJECTS: invalid value 'x'",
                ApplyEnvironment({{"FLAME_CACHE_MAX_OBJECTS", "x"}}, &c));
  EXPECT_STATUS(Invalid, "FLAME_CACHE_EVICTION_POLICY: invalid value 'mru'",
                ApplyEnvironment({{"FLAME_CACHE_EVICTION_POLICY", "mru"}}, &c));
  EXPECT_STATUS(Invalid, "FLAME_CACHE_CAPACITY: invalid value '1X'",
                ApplyEnvironment({{"FLAME_CACHE_CAPACITY", "1X"}}, &c));
  EXPECT_STATUS(Invalid, "FLAME_CACHE_METRICS_PORT: invalid value '-1'",
                ApplyEnvironment({{"FLAME_CACHE_METRICS_PORT", "-1"}}, &c));
  EXPECT_STATUS(Invalid, "FLAME_CACHE_LOG_LEVEL: invalid value 'x'",
                ApplyEnvironment({{"FLAME_CACHE_LOG_LEVEL", "x"}}, &c));
}

TEST(ConfigTest, CommandLineOverridesEnvironment) {
  ConfigOverrides o;
  o["--endpoint"] = "grpc://127.0.0.1:0";
  o["--storage"] = "none";
  o["--max-memory"] = "64M";
  o["--max-objects"] = "9";
  o["--eviction-policy"] = "none";
  o["--memory-full"] = "refuse";
  o["--capacity"] = "1G";
  o["--log-level"] = "error";
  o["--log-file"] = "foc.log";
  o["--bind"] = "0.0.0.0";
  o["--advertise"] = "grpc://me:1";
  o["--network-interface"] = "lo";
  o["--metrics-port"] = "0";
  o["--metrics-bind"] = "127.0.0.1";
  o["--shutdown-grace"] = "0.5";
  ASSERT_OK_AND_ASSIGN(
      auto c, LoadConfig("", {{"FLAME_CACHE_MAX_MEMORY", "2G"}}, o, "/nonexistent"));
  EXPECT_EQ(c.endpoint, "grpc://127.0.0.1:0");
  EXPECT_EQ(c.storage, "none");
  EXPECT_EQ(c.max_memory, 64 << 20);
  EXPECT_EQ(c.max_objects, 9);
  EXPECT_EQ(c.eviction_policy, EvictionPolicy::kNone);
  EXPECT_EQ(c.memory_full, MemoryFull::kRefuse);
  EXPECT_EQ(c.capacity, 1 << 30);
  EXPECT_EQ(c.log.level, "error");
  EXPECT_EQ(c.log.file, "foc.log");
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.advertised_endpoint, "grpc://me:1");
  EXPECT_EQ(c.metrics.port, 0);
  EXPECT_EQ(c.metrics.bind, "127.0.0.1");
  EXPECT_FALSE(c.metrics.best_effort);  // the flag chose the port: a busy one is fatal
  EXPECT_EQ(c.shutdown_grace_seconds, 0.5);
  o = {};
  o["--max-memory"] = "1Z";
  EXPECT_STATUS(Invalid, "--max-memory: invalid value '1Z'",
                LoadConfig("", {}, o, "/nonexistent"));
}

TEST(ConfigTest, BuiltInDefaultServesMetricsOnLoopbackBestEffort) {
  ASSERT_OK_AND_ASSIGN(auto c, LoadConfig("", {}, {}, "/nonexistent"));
  EXPECT_EQ(c.metrics.port, kDefaultMetricsPort);
  EXPECT_EQ(c.metrics.bind, "127.0.0.1");
  EXPECT_TRUE(c.metrics.best_effort);
  ASSERT_OK_AND_ASSIGN(
      c, LoadConfig("", {{"FLAME_CACHE_METRICS_PORT", "9200"}}, {}, "/nonexistent"));
  EXPECT_EQ(c.metrics.port, 9200);
  EXPECT_FALSE(c.metrics.best_effort);
}

TEST(ConfigTest, RustLogIsTheLowestLevelSource) {
  ASSERT_OK_AND_ASSIGN(auto c,
                       LoadConfig("", {{"RUST_LOG", "debug"}}, {}, "/nonexistent"));
  EXPECT_EQ(c.log.level, "debug");
  ASSERT_OK_AND_ASSIGN(
      c, LoadConfig("", {{"RUST_LOG", "foc=debug,h2=error"}}, {}, "/nonexistent"));
  EXPECT_EQ(c.log.level, "info");
  ASSERT_OK_AND_ASSIGN(
      c, LoadConfig("", {{"RUST_LOG", "debug"}, {"FLAME_CACHE_LOG_LEVEL", "error"}}, {},
                    "/nonexistent"));
  EXPECT_EQ(c.log.level, "error");
}

class SearchOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/foc-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "home/.flame");
    fs::create_directories(dir_ / "etc");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  fs::path dir_;
};

TEST_F(SearchOrderTest, ExplicitThenHomeThenSystemThenDefault) {
  auto home_cfg = dir_ / "home/.flame/flame-cluster.yaml";
  auto sys_cfg = dir_ / "etc/flame-cluster.yaml";
  auto own_cfg = dir_ / "own.yaml";
  Write(home_cfg, "cache:\n  endpoint: grpc://127.0.0.1:1001\n");
  Write(sys_cfg, "cache:\n  endpoint: grpc://127.0.0.1:1002\n");
  Write(own_cfg, "cache:\n  endpoint: grpc://127.0.0.1:1003\n");
  Environment env = {{"HOME", (dir_ / "home").string()}};
  std::string sys = sys_cfg.string();

  ASSERT_OK_AND_ASSIGN(auto c, LoadConfig(own_cfg.string(), env, {}, sys));
  EXPECT_EQ(c.endpoint, "grpc://127.0.0.1:1003");
  EXPECT_EQ(c.source, own_cfg.string());
  ASSERT_OK_AND_ASSIGN(c, LoadConfig("", env, {}, sys));
  EXPECT_EQ(c.endpoint, "grpc://127.0.0.1:1001");
  fs::remove(home_cfg);
  ASSERT_OK_AND_ASSIGN(c, LoadConfig("", env, {}, sys));
  EXPECT_EQ(c.endpoint, "grpc://127.0.0.1:1002");
  fs::remove(sys_cfg);
  ASSERT_OK_AND_ASSIGN(c, LoadConfig("", env, {}, sys));
  EXPECT_EQ(c.source, "");
  EXPECT_EQ(c.endpoint, "grpc://127.0.0.1:9090");
  EXPECT_EQ(c.storage, (dir_ / "home/.flame/cache").string());
  ASSERT_OK_AND_ASSIGN(
      c, LoadConfig("", {{"HOME", "/h"}, {"FLAME_HOME", "/opt/f"}}, {}, sys));
  EXPECT_EQ(c.storage, "fs://cache");
  EXPECT_EQ(c.flame_home, "/opt/f");
  ASSERT_OK_AND_ASSIGN(c, LoadConfig("", {}, {}, sys));
  EXPECT_EQ(c.storage, "/var/lib/flame/cache");

  EXPECT_STATUS(Invalid, "is not a file",
                LoadConfig((dir_ / "missing.yaml").string(), env, {}, sys));
  fs::create_directories(home_cfg);  // a directory where the file should be
  EXPECT_STATUS(Invalid, "not a regular file", LoadConfig("", env, {}, sys));
}

TEST(ConfigTest, FormatLoadsBackTheSameValues) {
  Config a;
  ASSERT_OK(ApplyYaml(kFull, "f", &a));
  std::string text = FormatConfig(a);
  Config b;
  ASSERT_OK(ApplyYaml(text, "formatted", &b)) << text;
  EXPECT_EQ(FormatConfig(b), text);
  EXPECT_EQ(b.max_memory, a.max_memory);
  EXPECT_EQ(b.tls->ca_file, a.tls->ca_file);
  EXPECT_EQ(b.metrics.port, a.metrics.port);
  EXPECT_TRUE(b.warnings.empty());
}

}  // namespace
}  // namespace foc
