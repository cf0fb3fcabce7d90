// The option table against itself and against docs/operations.md: a key, variable, flag
// or default that changes in one place and not the other fails here.
#include "config/options.h"

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

struct DocRow {
  std::string key, env, flag, default_text;
  bool operator==(const DocRow& o) const {
    return std::tie(key, env, flag, default_text) ==
           std::tie(o.key, o.env, o.flag, o.default_text);
  }
};

std::ostream& operator<<(std::ostream& os, const DocRow& r) {
  return os << "{" << r.key << " | " << r.env << " | " << r.flag << " | "
            << r.default_text << "}";
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The first `code` span of a cell, or "" for "—".
std::string FirstCode(const std::string& cell) {
  std::smatch m;
  if (std::regex_search(cell, m, std::regex("`([^`]*)`"))) return m[1];
  return "";
}

// The cells of the table whose header line starts with `header`.
std::vector<std::vector<std::string>> Table(const std::string& header) {
  std::ifstream in(std::string(FOC_DOCS_DIR) + "/operations.md");
  EXPECT_TRUE(in.good()) << "cannot read " << FOC_DOCS_DIR << "/operations.md";
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside) {
      if (line.rfind(header, 0) == 0) {
        inside = true;
        std::getline(in, line);  // |---|---|
      }
      continue;
    }
    if (line.empty() || line[0] != '|') break;
    std::vector<std::string> cells;
    std::stringstream s(line.substr(1));
    std::string cell;
    while (std::getline(s, cell, '|')) cells.push_back(Trim(cell));
    rows.push_back(cells);
  }
  EXPECT_FALSE(rows.empty()) << "no table '" << header << "' in docs/operations.md";
  return rows;
}

bool IsLimit(const Option& o) { return o.key.rfind("limits.", 0) == 0; }

TEST(OptionsTest, MainKeyTableOfOperationsMdMatchesTheTable) {
  std::vector<DocRow> documented;
  for (const auto& cells : Table("| Key (`cache.`…) | Variable | Flag | Default |")) {
    ASSERT_GE(cells.size(), 5u);
    documented.push_back(
        {FirstCode(cells[0]), FirstCode(cells[1]), FirstCode(cells[2]), cells[3]});
  }
  std::vector<DocRow> table;
  for (const Option& o : ConfigOptions()) {
    if (IsLimit(o)) continue;
    table.push_back({std::string(o.key), std::string(o.env), std::string(o.flag),
                     std::string(o.doc_default)});
  }
  for (const OptionSection& s : ConfigSections()) {
    if (!s.doc_default.empty())
      table.push_back({std::string(s.key), "", "", std::string(s.doc_default)});
  }
  EXPECT_EQ(documented, table)
      << "docs/operations.md \"Keys, variables, flags\" and src/config/options.cc "
         "disagree (same keys, in the same order, with the same variable, flag and "
         "default)";
}

TEST(OptionsTest, LimitsTableOfOperationsMdMatchesTheTable) {
  std::vector<DocRow> documented;
  for (const auto& cells : Table("| Key (`cache.limits.`…) | Default |")) {
    ASSERT_GE(cells.size(), 3u);
    documented.push_back({"limits." + FirstCode(cells[0]), "", "", cells[1]});
  }
  std::vector<DocRow> table;
  for (const Option& o : ConfigOptions()) {
    if (IsLimit(o))
      table.push_back({std::string(o.key), "", "", std::string(o.doc_default)});
  }
  EXPECT_EQ(documented, table);
}

// A default written as one `literal` is what Config{} holds (the struct's initializers
// are the defaults; the table only documents them).
TEST(OptionsTest, LiteralDefaultsAreTheConfigDefaults) {
  Config d;
  d.tls = TlsConfig{};
  d.cluster = Config::Cluster{};
  d.auth = AuthConfig{};
  const std::regex literal("^`([^`]*)`$");
  int checked = 0;
  for (const Option& o : ConfigOptions()) {
    const std::string text(o.doc_default);
    std::smatch m;
    if (!std::regex_match(text, m, literal)) continue;
    EXPECT_EQ(o.value(d), m[1].str()) << o.key;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(OptionsTest, NamesAreUniqueAndWellFormed) {
  std::set<std::string_view> keys, envs, flags;
  for (const Option& o : ConfigOptions()) {
    EXPECT_TRUE(keys.insert(o.key).second) << o.key;
    if (!o.env.empty()) {
      EXPECT_TRUE(envs.insert(o.env).second) << o.env;
      EXPECT_EQ(o.env.rfind("FLAME_CACHE_", 0), 0u) << o.env;
    }
    if (!o.flag.empty()) {
      EXPECT_TRUE(flags.insert(o.flag).second) << o.flag;
      EXPECT_EQ(o.flag.rfind("--", 0), 0u) << o.flag;
    }
    EXPECT_FALSE(o.help.empty()) << o.key;
    EXPECT_NE(o.set, nullptr) << o.key;
    EXPECT_NE(o.value, nullptr) << o.key;
  }
  for (const OptionSection& s : ConfigSections())
    EXPECT_FALSE(keys.count(s.key)) << s.key;
}

// Every source goes through the same parser: one bad value, three sources, three errors
// each naming its own source.
TEST(OptionsTest, EverySourceParsesAlike) {
  for (const Option& o : ConfigOptions()) {
    if (o.env.empty() || o.flag.empty()) continue;
    const std::string good = o.value(Config{});
    if (good.empty()) continue;
    Config from_env, from_flag;
    EXPECT_OK(ApplyEnvironment({{std::string(o.env), good}}, &from_env)) << o.key;
    EXPECT_OK(ApplyOverrides({{std::string(o.flag), good}}, &from_flag)) << o.key;
    EXPECT_EQ(o.value(from_env), good) << o.key;
    EXPECT_EQ(o.value(from_flag), good) << o.key;
  }
  Config c;
  EXPECT_STATUS(Invalid, "--max-objects: invalid value 'x'",
                ApplyOverrides({{"--max-objects", "x"}}, &c));
  EXPECT_STATUS(Invalid, "--no-such-flag: unknown option",
                ApplyOverrides({{"--no-such-flag", "1"}}, &c));
}

TEST(OptionsTest, PolicyNamesRoundTrip) {
  for (auto p : {EvictionPolicy::kLru, EvictionPolicy::kNone}) {
    Config c;
    ASSERT_OK(ApplyOverrides({{"--eviction-policy", std::string(Name(p))}}, &c));
    EXPECT_EQ(c.eviction_policy, p);
  }
  for (auto p : {MemoryFull::kEvict, MemoryFull::kRefuse}) {
    Config c;
    ASSERT_OK(ApplyOverrides({{"--memory-full", std::string(Name(p))}}, &c));
    EXPECT_EQ(c.memory_full, p);
  }
}

TEST(OptionsTest, FormatSecondsIsShortestExact) {
  EXPECT_EQ(FormatSeconds(20), "20");
  EXPECT_EQ(FormatSeconds(0.5), "0.5");
  EXPECT_EQ(FormatSeconds(0.1), "0.1");
  EXPECT_EQ(FormatSeconds(2.5), "2.5");
}

}  // namespace
}  // namespace foc
