#include "key/key.h"

#include <set>

#include "testing/gtest_util.h"
#include "testing/rules.h"

namespace foc {
namespace {

TEST(ObjectKeyTest, ParsesThreeComponents) {
  ASSERT_OK_AND_ASSIGN(auto key,
                       ObjectKey::Parse("app/ssn/550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_EQ(key.app(), "app");
  EXPECT_EQ(key.session(), "ssn");
  EXPECT_EQ(key.object(), "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(key.prefix(), "app/ssn");
  EXPECT_EQ(key.str(), "app/ssn/550e8400-e29b-41d4-a716-446655440000");
}

TEST(ObjectKeyTest, AcceptsWhatUpstreamClientsWrite) {
  for (const char* k :
       {"a/b/c", "my-app/session_1/pkg.tar.gz", "a/b/c:d", "a/b/with space",
        "\xc3\xa9t\xc3\xa9/s/\xe6\x97\xa5", "a/b/x*y", "a/b/v1.2"}) {
    EXPECT_OK(ObjectKey::Parse(k)) << k;
  }
}

TEST(ObjectKeyTest, RejectsBadShapesAndComponents) {
  for (const char* k : {"",
                        "a",
                        "a/b",
                        "a/b/c/d",
                        "a//c",
                        "/b/c",
                        "a/b/",
                        "../etc/passwd",
                        "app/../other/object",
                        "app/session/..",
                        "a/./c",
                        "a/b/.",
                        "a/b/.hidden",
                        "a/b/x..y",
                        "a\\b/c/d",
                        "a/b/c\\d",
                        "*/b/c",
                        "a/*/c",
                        "a/b/*",
                        "a/b/\x01",
                        "a/b/\x7f"}) {
    EXPECT_STATUS(Invalid, "Invalid", ObjectKey::Parse(k)) << k;
  }
  EXPECT_STATUS(Invalid, "control", ObjectKey::Parse(std::string("a/b/c\0d", 7)));
  EXPECT_STATUS(Invalid, "UTF-8", ObjectKey::Parse("a/b/\xc3"));
  EXPECT_STATUS(Invalid, "UTF-8", ObjectKey::Parse("a/b/\xc0\xaf"));  // overlong '/'
  EXPECT_STATUS(Invalid, "longer than", ObjectKey::Parse("a/b/" + std::string(201, 'x')));
  EXPECT_OK(ObjectKey::Parse("a/b/" + std::string(200, 'x')));
}

TEST(ObjectKeyTest, ErrorNamesTheOffendingValue) {
  EXPECT_STATUS(Invalid, "'x..y'", ObjectKey::Parse("a/x..y/c"));
  EXPECT_STATUS(Invalid, "'a/b'", ObjectKey::Parse("a/b"));
}

TEST(PutPathTest, SessionOrFullKey) {
  ASSERT_OK_AND_ASSIGN(auto prefix, ParsePutPath("app/ssn"));
  EXPECT_EQ(prefix.app, "app");
  EXPECT_EQ(prefix.session, "ssn");
  EXPECT_FALSE(prefix.has_object());
  ASSERT_OK_AND_ASSIGN(auto full, ParsePutPath("app/ssn/obj"));
  EXPECT_EQ(full.object, "obj");
  EXPECT_STATUS(Invalid, "'*'", ParsePutPath("app/*"));
  EXPECT_STATUS(Invalid, "expected", ParsePutPath("app"));
  EXPECT_STATUS(Invalid, "expected", ParsePutPath("a/b/c/d"));
  EXPECT_STATUS(Invalid, "'..'", ParsePutPath("../bad"));
}

TEST(KeyPatternTest, MatchesByComponentNotByStringPrefix) {
  ASSERT_OK_AND_ASSIGN(auto key, ObjectKey::Parse("app/s/x"));
  ASSERT_OK_AND_ASSIGN(auto other_session, ObjectKey::Parse("app/s2/x"));
  ASSERT_OK_AND_ASSIGN(auto other_app, ObjectKey::Parse("app2/s/x"));
  ASSERT_OK_AND_ASSIGN(auto longer_object, ObjectKey::Parse("app/s/xy"));

  ASSERT_OK_AND_ASSIGN(auto all, KeyPattern::Parse("app/*"));
  EXPECT_EQ(all.kind(), KeyPattern::Kind::kApp);
  EXPECT_TRUE(all.Matches(key));
  EXPECT_TRUE(all.Matches(other_session));
  EXPECT_FALSE(all.Matches(other_app));

  ASSERT_OK_AND_ASSIGN(auto session, KeyPattern::Parse("app/s"));
  EXPECT_TRUE(session.Matches(key));
  EXPECT_FALSE(session.Matches(other_session));

  ASSERT_OK_AND_ASSIGN(auto exact, KeyPattern::Parse("app/s/x"));
  EXPECT_TRUE(exact.Matches(key));
  EXPECT_FALSE(exact.Matches(longer_object));
}

TEST(KeyPatternTest, WildcardOnlyAsWholeSession) {
  EXPECT_STATUS(Invalid, "'*'", KeyPattern::Parse("*/s"));
  EXPECT_STATUS(Invalid, "wildcard", KeyPattern::Parse("app/*/x"));
  EXPECT_STATUS(Invalid, "'*'", KeyPattern::Parse("app/s/*"));
  EXPECT_STATUS(Invalid, "expected", KeyPattern::Parse("app/s*/x/y"));
  EXPECT_STATUS(Invalid, "expected", KeyPattern::Parse("app"));
  EXPECT_OK(
      KeyPattern::Parse("app/s*"));  // '*' inside a longer name is a literal character
}

TEST(TicketTest, KeyAndVersion) {
  ASSERT_OK_AND_ASSIGN(auto t, ParseTicket("a/b/c:42"));
  EXPECT_EQ(t.key.str(), "a/b/c");
  EXPECT_EQ(t.version, 42u);
  ASSERT_OK_AND_ASSIGN(auto bare, ParseTicket("a/b/c"));
  EXPECT_EQ(bare.version, 0u);
  ASSERT_OK_AND_ASSIGN(auto plus, ParseTicket("a/b/c:+7"));
  EXPECT_EQ(plus.version, 7u);
  ASSERT_OK_AND_ASSIGN(auto max, ParseTicket("a/b/c:18446744073709551615"));
  EXPECT_EQ(max.version, UINT64_MAX);
}

TEST(TicketTest, KeysWithColonsAreReadable) {
  ASSERT_OK_AND_ASSIGN(auto t, ParseTicket("a/b/c:d:3"));
  EXPECT_EQ(t.key.str(), "a/b/c:d");
  EXPECT_EQ(t.version, 3u);
  ASSERT_OK_AND_ASSIGN(auto key, ObjectKey::Parse("a/b/c:d"));
  ASSERT_OK_AND_ASSIGN(auto round, ParseTicket(FormatTicket(key, 0)));
  EXPECT_EQ(round.key, key);
}

TEST(TicketTest, LinearizableForm) {
  ASSERT_OK_AND_ASSIGN(auto t, ParseTicket("a/b/c:d:L5"));
  EXPECT_EQ(t.key.str(), "a/b/c:d");
  EXPECT_EQ(t.version, 5u);
  EXPECT_TRUE(t.linearizable);
  ASSERT_OK_AND_ASSIGN(auto plain, ParseTicket("a/b/c:5"));
  EXPECT_FALSE(plain.linearizable);
  for (const char* bad : {"a/b/c:L", "a/b/c:L+1", "a/b/c:l1", "a/b/c:+L1"}) {
    EXPECT_STATUS(Invalid, "version", ParseTicket(bad)) << bad;
  }
}

TEST(TicketTest, BadVersionsAreInvalidArgument) {
  for (const char* t : {"a/b/c:", "a/b/c:x", "a/b/c:-1", "a/b/c: 1", "a/b/c:1 ",
                        "a/b/c:18446744073709551616", "a/b/c:1.0"}) {
    EXPECT_STATUS(Invalid, "version", ParseTicket(t)) << t;
  }
  EXPECT_STATUS(Invalid, "expected", ParseTicket("a/b:1"));
}

// The shared table tests/rules/keys.json, which the Python SDK's tests run too.
TEST(KeyRulesTest, SharedTable) {
  const auto cases = testing::LoadRules("keys.json");
  ASSERT_GT(cases.size(), 50u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.rule + " '" + c.input + "'");
    arrow::Status st;
    if (c.rule == "key") {
      st = ObjectKey::Parse(c.input).status();
    } else if (c.rule == "put_path") {
      st = ParsePutPath(c.input).status();
    } else if (c.rule == "pattern") {
      st = KeyPattern::Parse(c.input).status();
    } else {
      FAIL() << "unknown rule " << c.rule;
    }
    if (c.valid) {
      EXPECT_OK(st);
    } else {
      EXPECT_TRUE(st.IsInvalid()) << st.ToString();
      EXPECT_NE(st.message().find(c.error), std::string::npos)
          << st.ToString() << " lacks: " << c.error;
    }
  }
}

TEST(UuidTest, Version4Format) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuid4();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    EXPECT_OK(ValidateComponent(id, "object id"));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace foc
