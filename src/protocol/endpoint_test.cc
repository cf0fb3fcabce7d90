#include "protocol/endpoint.h"

#include <gtest/gtest.h>

#include "testing/gtest_util.h"
#include "testing/rules.h"

namespace foc {
namespace {

TEST(EndpointTest, ParsesSchemesHostsAndPorts) {
  ASSERT_OK_AND_ASSIGN(auto e, ParseEndpointUri("grpc://127.0.0.1:9090"));
  EXPECT_EQ(e.scheme, "grpc");
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 9090);
  EXPECT_FALSE(e.tls);
  ASSERT_OK_AND_ASSIGN(e, ParseEndpointUri("grpcs://flame-object-cache"));
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.port, 9090);  // upstream's default port
  ASSERT_OK_AND_ASSIGN(e, ParseEndpointUri("GRPC+TLS://[::1]:0"));
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 0);
  ASSERT_OK_AND_ASSIGN(e, ParseEndpointUri("http://127.0.0.1:9090/"));
  EXPECT_FALSE(e.tls);
  ASSERT_OK_AND_ASSIGN(e, ParseEndpointUri("grpc+tcp://0.0.0.0:1"));
  EXPECT_EQ(e.host, "0.0.0.0");
}

TEST(EndpointTest, RejectsMalformed) {
  EXPECT_STATUS(Invalid, "scheme://host:port", ParseEndpointUri("127.0.0.1:9090"));
  EXPECT_STATUS(Invalid, "unsupported scheme 'ftp'", ParseEndpointUri("ftp://h:1"));
  EXPECT_STATUS(Invalid, "no host", ParseEndpointUri("grpc://:9090"));
  EXPECT_STATUS(Invalid, "invalid port '70000'", ParseEndpointUri("grpc://h:70000"));
  EXPECT_STATUS(Invalid, "invalid port 'x'", ParseEndpointUri("grpc://h:x"));
  EXPECT_STATUS(Invalid, "host[:port] only", ParseEndpointUri("grpc://h:1/path"));
  EXPECT_STATUS(Invalid, "not an IPv6", ParseEndpointUri("grpc://[nope]:1"));
  EXPECT_STATUS(Invalid, "invalid host", ParseEndpointUri("grpc://a b:1"));
}

// The shared table tests/rules/endpoints.json, which the Python SDK's tests run too.
TEST(EndpointRulesTest, SharedTable) {
  const auto cases = testing::LoadRules("endpoints.json");
  ASSERT_GT(cases.size(), 20u);
  for (const auto& c : cases) {
    SCOPED_TRACE("'" + c.input + "'");
    auto location = ClientLocation(c.input);
    if (c.valid) {
      ASSERT_OK(location.status());
      EXPECT_EQ(*location, c.location);
      ASSERT_OK_AND_ASSIGN(auto uri, ParseEndpointUri(c.input));
      EXPECT_EQ(uri.tls, c.tls);
    } else {
      EXPECT_TRUE(location.status().IsInvalid()) << location.status().ToString();
      EXPECT_NE(location.status().message().find(c.error), std::string::npos)
          << location.status().ToString() << " lacks: " << c.error;
    }
  }
}

TEST(EndpointTest, BindAddresses) {
  ASSERT_OK_AND_ASSIGN(auto b, ParseBindAddress("0.0.0.0"));
  EXPECT_EQ(b.host, "0.0.0.0");
  EXPECT_EQ(b.port, -1);
  ASSERT_OK_AND_ASSIGN(b, ParseBindAddress("10.1.2.3:7000"));
  EXPECT_EQ(b.port, 7000);
  ASSERT_OK_AND_ASSIGN(b, ParseBindAddress("::"));
  EXPECT_EQ(b.host, "::");
  ASSERT_OK_AND_ASSIGN(b, ParseBindAddress("[fd00::2]:9"));
  EXPECT_EQ(b.host, "fd00::2");
  EXPECT_EQ(b.port, 9);
  EXPECT_STATUS(Invalid, "invalid host", ParseBindAddress("fd00::zz"));
  EXPECT_STATUS(Invalid, "no host", ParseBindAddress(":9"));
}

TEST(EndpointTest, Helpers) {
  EXPECT_TRUE(IsWildcardHost("0.0.0.0"));
  EXPECT_TRUE(IsWildcardHost("::"));
  EXPECT_FALSE(IsWildcardHost("127.0.0.1"));
  EXPECT_FALSE(IsWildcardHost("localhost"));
  EXPECT_TRUE(IsIpLiteral("fe80::1"));
  EXPECT_FALSE(IsIpLiteral("example.org"));
  EXPECT_EQ(DialableUri(true, "::1", 5), "grpc+tls://[::1]:5");
  EXPECT_EQ(DialableUri(false, "10.0.0.1", 9090), "grpc://10.0.0.1:9090");
}

}  // namespace
}  // namespace foc
