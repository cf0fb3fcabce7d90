// The option table: every configuration key of the server, once.
//
// One row per key says where the key can come from (its path under `cache:` in
// flame-cluster.yaml, its FLAME_CACHE_* variable, its command-line flag), how a value is
// parsed into Config (one parser whatever the source, so the same value is accepted or
// refused the same way and the error names the key, variable or flag it came from) and
// how --check-config prints it. config.cc walks YAML, reads the environment, applies
// overrides and formats the effective configuration from this table; src/server/main.cc
// declares its CLI11 flags from it; options_test.cc checks it against the key tables of
// docs/operations.md (key, variable, flag and default columns).
//
// Adding an option: a field in Config (config.h, with its default), one row in
// options.cc, one row in docs/operations.md; options_test fails until all three agree.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/status.h>

#include "config/config.h"

namespace foc {

/// One configuration key.
struct Option {
  /// Dotted path under `cache:` ("eviction.max_memory").
  std::string_view key;
  /// FLAME_CACHE_* variable, or empty.
  std::string_view env;
  /// Command-line flag ("--max-memory"), or empty.
  std::string_view flag;
  /// The Default column of docs/operations.md (checked by options_test; when it is one
  /// `literal`, the test also checks that Config{}'s value prints as that literal).
  std::string_view doc_default;
  /// One line for --help.
  std::string_view help;
  /// Parses `text` into `config`. `where` names the source in errors ("cache.capacity",
  /// "FLAME_CACHE_CAPACITY", "--capacity"). A YAML null arrives as "".
  arrow::Status (*set)(const std::string& where, const std::string& text, Config* config);
  /// The value as --check-config prints it (and `set` reads back); "" = unset.
  std::string (*value)(const Config& config);
  /// True when --check-config leaves the key out (unset, or equal to the default where
  /// printing it would change nothing). Null: always printed.
  bool (*omit)(const Config& config) = nullptr;
  /// YAML may give a list: its items are joined with ',' before `set` (as the variable).
  bool list = false;
};

/// A mapping under `cache:` that is more than a prefix of keys: its presence means
/// something (`tls`, `cluster`, `auth` exist or not), or it is accepted and ignored.
struct OptionSection {
  std::string_view key;
  /// Called when the YAML names the section (may be null).
  void (*enter)(Config* config) = nullptr;
  /// Checks the section after its keys were read (may be null).
  arrow::Status (*leave)(const std::string& where, const Config& config) = nullptr;
  /// Accepted for compatibility and ignored with a warning (upstream's `pprof`).
  bool ignored = false;
  /// Default column of docs/operations.md when the section has a row of its own.
  std::string_view doc_default = {};
};

/// `s` without leading and trailing white space: how every source's value is read.
std::string Trim(std::string_view s);
/// `s` in ASCII lower case (policy names, booleans: case-insensitive).
std::string Lower(std::string_view s);

/// The table, in the order of docs/operations.md.
const std::vector<Option>& ConfigOptions();
/// The sections with a meaning of their own.
const std::vector<OptionSection>& ConfigSections();

}  // namespace foc
