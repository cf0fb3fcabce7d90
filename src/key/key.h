// Object keys and key patterns: the one key model of flame-object-cache.
//
// A stored object is addressed by a full key `<app>/<session>/<object>`. DoPut accepts a
// session prefix `<app>/<session>` (the server picks the object id) or a full key; DELETE
// accepts a pattern: a full key, a session prefix, or `<app>/*` (every session of an
// app).
//
// One validator applies everywhere (upstream has three that disagree). A component is
// valid when it is 1..kMaxComponentBytes bytes of UTF-8 and
//   * contains no `/`, no `\`, no NUL and no ASCII control character (0x01-0x1F, 0x7F);
//   * does not contain `..` (as flamepy and upstream refuse) and does not start with `.`
//     (so `.` and `..` are impossible, and names beginning with `.` stay free for the
//     storage engine's own files: temporary files, quarantine, the version-floor log);
//   * is not `*`, except as the session of a DELETE pattern `<app>/*`.
// Every key that can be written can be read back: `:` is allowed in components because
// tickets are split at their *last* `:` (see ParseTicket).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/status.h>

namespace foc {

/// Longest key component in bytes. Components become file names (`<id>.deltas`), so
/// they must stay well below NAME_MAX (255).
inline constexpr size_t kMaxComponentBytes = 200;

/// The wildcard session of a DELETE pattern.
inline constexpr std::string_view kWildcardSession = "*";

/// True if `s` is valid UTF-8 (Arrow's validator: overlong forms, surrogates and values
/// past U+10FFFF are not). The one UTF-8 check of the code base: keys here, error
/// messages in flight/status.cc.
bool IsValidUtf8(std::string_view s);

/// Checks one key component; `what` names it in the error ("app", "session", "object").
arrow::Status ValidateComponent(std::string_view component, std::string_view what);

/// A validated full key `<app>/<session>/<object>`.
class ObjectKey {
 public:
  /// Parses and validates a full key; InvalidArgument names the offending value.
  static arrow::Result<ObjectKey> Parse(std::string_view full_key);
  /// Builds a key from validated components.
  static arrow::Result<ObjectKey> Make(std::string_view app, std::string_view session,
                                       std::string_view object);

  const std::string& str() const { return full_; }
  std::string_view app() const { return std::string_view(full_).substr(0, app_len_); }
  std::string_view session() const {
    return std::string_view(full_).substr(app_len_ + 1, session_len_);
  }
  std::string_view object() const {
    return std::string_view(full_).substr(app_len_ + session_len_ + 2);
  }
  /// `<app>/<session>`.
  std::string_view prefix() const {
    return std::string_view(full_).substr(0, app_len_ + 1 + session_len_);
  }

  bool operator==(const ObjectKey& other) const { return full_ == other.full_; }
  bool operator<(const ObjectKey& other) const { return full_ < other.full_; }

 private:
  ObjectKey(std::string full, size_t app_len, size_t session_len)
      : full_(std::move(full)), app_len_(app_len), session_len_(session_len) {}
  std::string full_;
  size_t app_len_;
  size_t session_len_;
};

/// What a DoPut descriptor path names: a session (the server generates the object id) or
/// a full key (create or replace that object).
struct PutTarget {
  std::string app;
  std::string session;
  std::string object;  ///< empty: the server generates a UUID v4
  bool has_object() const { return !object.empty(); }
};

/// Parses a DoPut path: `<app>/<session>` or `<app>/<session>/<object>`. No wildcard.
arrow::Result<PutTarget> ParsePutPath(std::string_view path);

/// A DELETE pattern: `<app>/*`, `<app>/<session>` or a full key.
class KeyPattern {
 public:
  enum class Kind { kApp, kSession, kObject };

  static arrow::Result<KeyPattern> Parse(std::string_view pattern);

  Kind kind() const { return kind_; }
  /// The pattern as given, e.g. `app/*`.
  const std::string& str() const { return text_; }
  /// Every key this pattern matches starts with this string (`app/`, `app/s/`, or the
  /// key).
  const std::string& key_prefix() const { return key_prefix_; }
  bool Matches(const ObjectKey& key) const;

 private:
  KeyPattern(Kind kind, std::string text, std::string key_prefix)
      : kind_(kind), text_(std::move(text)), key_prefix_(std::move(key_prefix)) {}
  Kind kind_;
  std::string text_;
  std::string key_prefix_;
};

/// A DoGet ticket: `<key>:<version>` or a bare `<key>` (version 0 = unconditional read),
/// or `<key>:L<version>`, a linearizable read (docs/protocol.md): the server brings its
/// view of the key up to date with the version authority (cluster mode: a quorum read of
/// the record in etcd) before answering. flamepy never sends the `L` form.
struct Ticket {
  ObjectKey key;
  uint64_t version;
  bool linearizable = false;
};

/// Parses a ticket. A ticket without `:` is a bare key (version 0). Otherwise the version
/// is what follows the *last* `:` and must be a decimal uint64 (InvalidArgument if not),
/// so keys containing `:` are readable as `<key>:<version>` (upstream splits at the first
/// `:` and cannot read them). Tickets the server hands out (ListFlights, GetFlightInfo)
/// carry `:0`. A version written `L<digits>` asks for a linearizable read.
arrow::Result<Ticket> ParseTicket(std::string_view ticket);

/// Formats the ticket for `key` at `version`.
std::string FormatTicket(const ObjectKey& key, uint64_t version);

/// A random UUID v4, lowercase and hyphenated (36 characters): generated object ids.
std::string NewUuid4();

}  // namespace foc
