// Loads the shared rule tables of tests/rules/ (keys.json, endpoints.json) for the C++
// tests; the Python SDK tests read the same files (tests/rules/README.md). The tables are
// JSON, which yaml-cpp reads as YAML. Test-only: include from *_test.cc files whose
// target defines FOC_RULES_DIR and links yaml-cpp.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace foc::testing {

/// One case of a rule table. `input` holds bytes: from "input", or decoded from
/// "input_hex" for inputs that are not valid UTF-8.
struct RuleCase {
  std::string
      rule;  ///< keys.json: "key", "put_path" or "pattern"; empty in endpoints.json
  std::string input;
  bool valid = false;
  std::string error;     ///< a substring of the error message when !valid
  std::string location;  ///< endpoints.json: what a client dials
  bool tls = false;      ///< endpoints.json
};

inline std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

/// The cases of `tests/rules/<name>`; throws (failing the test) if the file is
/// unreadable.
inline std::vector<RuleCase> LoadRules(const std::string& name) {
  const std::string path = std::string(FOC_RULES_DIR) + "/" + name;
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot read " + path);
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<RuleCase> cases;
  for (const auto& node : doc.at("cases")) {
    RuleCase c;
    c.rule = node.value("rule", "");
    c.input = node.contains("input_hex")
                  ? FromHex(node.at("input_hex").get<std::string>())
                  : node.at("input").get<std::string>();
    c.valid = node.at("valid").get<bool>();
    c.error = node.value("error", "");
    c.location = node.value("location", "");
    c.tls = node.value("tls", false);
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace foc::testing
