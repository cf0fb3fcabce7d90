#include "server/listen.h"

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

const std::vector<NetworkInterface> kIfaces = {
    {"eth0", {"10.0.0.5"}, {"fd00::5"}}, {"eth1", {"10.1.0.5"}, {}},
    {"lo", {"127.0.0.1"}, {"::1"}},      {"v6only", {}, {"fd00::9"}},
    {"veth0abc", {"172.17.0.1"}, {}},
};

Config With(std::string endpoint, std::string iface = "", std::string bind = "",
            std::string adv = "") {
  Config c;
  c.endpoint = std::move(endpoint);
  if (!iface.empty()) {
    c.network_interface = std::move(iface);
    c.network_interface_set = true;
  }
  c.bind = std::move(bind);
  c.advertised_endpoint = std::move(adv);
  return c;
}

TEST(ListenTest, LoopbackDefault) {
  ASSERT_OK_AND_ASSIGN(auto p, PlanListen(With("grpc://127.0.0.1:9090"), kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "127.0.0.1");
  EXPECT_EQ(p.port, 9090);
  EXPECT_EQ(p.Advertised(9090), "grpc://127.0.0.1:9090");
}

TEST(ListenTest, UpstreamComposeConfigBindsAndAdvertisesTheInterface) {
  ASSERT_OK_AND_ASSIGN(auto p, PlanListen(With("grpcs://flame-object-cache:9090", "eth0"),
                                          kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "10.0.0.5");
  EXPECT_EQ(p.Advertised(9090), "grpc+tls://10.0.0.5:9090");
  // Defaulted eth0 behaves the same (upstream's default).
  ASSERT_OK_AND_ASSIGN(
      p, PlanListen(With("grpcs://flame-object-cache:9090"), kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "10.0.0.5");
}

TEST(ListenTest, AnchoredDeterministicInterfaceMatch) {
  // `eth0` does not match `veth0abc`; `eth[0-9]` picks eth0 before eth1 (name order).
  ASSERT_OK_AND_ASSIGN(auto p,
                       PlanListen(With("grpc://0.0.0.0:1", "eth[0-9]"), kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "0.0.0.0");
  EXPECT_EQ(p.Advertised(1), "grpc://10.0.0.5:1");
  ASSERT_OK_AND_ASSIGN(p, PlanListen(With("grpc://0.0.0.0:1", "veth.*"), kIfaces, "box"));
  EXPECT_EQ(p.Advertised(1), "grpc://172.17.0.1:1");
  ASSERT_OK_AND_ASSIGN(p, PlanListen(With("grpc://[::]:1", "v6only"), kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "::");
  EXPECT_EQ(p.Advertised(1), "grpc://[fd00::9]:1");
  EXPECT_STATUS(Invalid,
                "cache.network_interface: invalid value 'th0': no network interface",
                PlanListen(With("grpc://0.0.0.0:1", "th0"), kIfaces, "box"));
  EXPECT_STATUS(Invalid, "not a regular expression",
                PlanListen(With("grpc://0.0.0.0:1", "eth("), kIfaces, "box"));
}

TEST(ListenTest, WildcardWithoutInterfaceAdvertisesEndpointHostOrHostname) {
  ASSERT_OK_AND_ASSIGN(auto p, PlanListen(With("grpc://0.0.0.0:9"), {}, "box"));
  EXPECT_EQ(p.Advertised(9), "grpc://box:9");
  ASSERT_OK_AND_ASSIGN(p, PlanListen(With("grpc://cache.example:9"), {}, "box"));
  EXPECT_EQ(p.bind_host, "0.0.0.0");
  EXPECT_EQ(p.Advertised(9), "grpc://cache.example:9");
}

TEST(ListenTest, ExplicitBindAndAdvertise) {
  ASSERT_OK_AND_ASSIGN(
      auto p, PlanListen(With("grpc+tls://c:9090", "", "[::1]:7000"), kIfaces, "box"));
  EXPECT_EQ(p.bind_host, "::1");
  EXPECT_EQ(p.port, 7000);
  EXPECT_EQ(p.Advertised(7000), "grpc+tls://[::1]:7000");
  ASSERT_OK_AND_ASSIGN(
      p, PlanListen(With("grpcs://0.0.0.0:9090", "eth0", "", "grpcs://cache.example:443"),
                    kIfaces, "box"));
  EXPECT_EQ(p.Advertised(9090), "grpc+tls://cache.example:443");
  // Upstream's default http:// endpoint advertises a URI clients can dial.
  ASSERT_OK_AND_ASSIGN(p, PlanListen(With("http://127.0.0.1:9090"), kIfaces, "box"));
  EXPECT_EQ(p.Advertised(9090), "grpc://127.0.0.1:9090");
}

TEST(ListenTest, RealInterfacesAndFreePort) {
  auto ifaces = ListNetworkInterfaces();
  bool has_lo = false;
  for (const auto& i : ifaces) has_lo |= (i.name == "lo" && !i.ipv4.empty());
  EXPECT_TRUE(has_lo);
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort("127.0.0.1"));
  EXPECT_GT(port, 0);
}

}  // namespace
}  // namespace foc
