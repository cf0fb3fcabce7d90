#include "flight/auth.h"

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(AuthTest, Sha256Hex) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthTest, ParsesIdentitiesAndGrants) {
  const std::string d = Sha256Hex("secret");
  const std::string yaml =
      "identities:\n"
      "  - name: trainer\n"
      "    token_sha256: [" +
      d +
      "]\n"
      "    tls_identity: trainer.example.org\n"
      "    grants: {'train-*': write, shared: read, ops: admin}\n";
  ASSERT_OK_AND_ASSIGN(auto policy, AuthPolicy::Parse(yaml, "tokens.yaml", "none"));
  auto id = policy->ByTokenDigest(d);
  ASSERT_TRUE(id);
  EXPECT_EQ(id, policy->ByTlsIdentity("trainer.example.org"));
  EXPECT_EQ(id->name, "trainer");
  EXPECT_EQ(id->RightOn("train-a"), Right::kWrite);
  EXPECT_EQ(id->RightOn("shared"), Right::kRead);
  EXPECT_EQ(id->RightOn("ops"), Right::kAdmin);
  EXPECT_EQ(id->RightOn("sharedx"), Right::kNone);
  EXPECT_EQ(id->RightOn("train"), Right::kNone);
  EXPECT_FALSE(policy->ByTokenDigest(Sha256Hex("other")));
  EXPECT_EQ(policy->anonymous()->RightOn("anything"), Right::kNone);
}

TEST(AuthTest, AnonymousRule) {
  ASSERT_OK_AND_ASSIGN(auto read, AuthPolicy::Parse("", "", "read"));
  EXPECT_EQ(read->anonymous()->RightOn("x"), Right::kRead);
  ASSERT_OK_AND_ASSIGN(auto write, AuthPolicy::Parse("", "", "write"));
  EXPECT_EQ(write->anonymous()->RightOn("x"), Right::kWrite);
}

TEST(AuthTest, BadFilesAreRefusedWithTheirPlace) {
  for (const std::string& yaml : {
           std::string("identities: {a: b}\n"),
           std::string("identities:\n  - name: a\n    token_sha256: xyz\n"),
           std::string(
               "identities:\n  - name: a\n    tls_identity: c\n    grants: {x: fly}\n"),
           std::string("identities:\n  - name: a\n    grants: {x: read}\n"),
           std::string("identities:\n  - token_sha256: " + Sha256Hex("t") + "\n"),
           std::string("identities:\n  - name: a\n    token_sha256: " + Sha256Hex("t") +
                       "\n  - name: b\n    token_sha256: " + Sha256Hex("t") + "\n"),
           std::string("identities: [\n"),
       }) {
    auto parsed = AuthPolicy::Parse(yaml, "tokens.yaml", "none");
    ASSERT_FALSE(parsed.ok()) << yaml;
    EXPECT_TRUE(parsed.status().IsInvalid()) << yaml;
    EXPECT_NE(parsed.status().message().find("tokens.yaml"), std::string::npos)
        << parsed.status().message();
  }
}

TEST(AuthTest, MissingFileIsAnError) {
  EXPECT_FALSE(AuthPolicy::Load("/nonexistent/tokens.yaml", "none").ok());
  AuthMiddlewareFactory factory("/nonexistent/tokens.yaml", "none");
  EXPECT_FALSE(factory.Reload().ok());
}

}  // namespace
}  // namespace foc
