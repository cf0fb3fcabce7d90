#include "key/key.h"

#include <charconv>
#include <mutex>
#include <random>
#include <vector>

#include <arrow/util/utf8.h>

namespace foc {

bool IsValidUtf8(std::string_view s) {
  static std::once_flag once;
  std::call_once(once, arrow::util::InitializeUTF8);
  return arrow::util::ValidateUTF8(s);
}

namespace {

arrow::Status Invalid(std::string_view what, std::string_view component,
                      std::string_view reason) {
  return arrow::Status::Invalid("Invalid ", what, " '", component, "': ", reason);
}

// Splits on '/' into at most 4 parts (a 4th part means "too many").
std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find('/', start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos || parts.size() == 4) break;
    start = pos + 1;
  }
  return parts;
}

}  // namespace

arrow::Status ValidateComponent(std::string_view c, std::string_view what) {
  if (c.empty()) return arrow::Status::Invalid("Invalid ", what, ": empty component");
  if (c.size() > kMaxComponentBytes) {
    return Invalid(what, c.substr(0, 40),
                   "longer than " + std::to_string(kMaxComponentBytes) + " bytes");
  }
  if (c == kWildcardSession) {
    return Invalid(what, c, "'*' is only allowed as the session of a DELETE pattern");
  }
  if (c.front() == '.') return Invalid(what, c, "must not start with '.'");
  if (c.find("..") != std::string_view::npos)
    return Invalid(what, c, "must not contain '..'");
  for (const char ch : c) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '/') return Invalid(what, c, "must not contain '/'");
    if (ch == '\\') return Invalid(what, c, "must not contain '\\'");
    if (u < 0x20 || u == 0x7F)
      return Invalid(what, c, "must not contain control characters");
  }
  if (!IsValidUtf8(c)) return Invalid(what, c, "not valid UTF-8");
  return arrow::Status::OK();
}

arrow::Result<ObjectKey> ObjectKey::Make(std::string_view app, std::string_view session,
                                         std::string_view object) {
  ARROW_RETURN_NOT_OK(ValidateComponent(app, "app"));
  ARROW_RETURN_NOT_OK(ValidateComponent(session, "session"));
  ARROW_RETURN_NOT_OK(ValidateComponent(object, "object id"));
  std::string full;
  full.reserve(app.size() + session.size() + object.size() + 2);
  full.append(app).append("/").append(session).append("/").append(object);
  return ObjectKey(std::move(full), app.size(), session.size());
}

arrow::Result<ObjectKey> ObjectKey::Parse(std::string_view full_key) {
  const auto parts = Split(full_key);
  if (parts.size() != 3) {
    return arrow::Status::Invalid("Invalid key '", full_key,
                                  "': expected '<app>/<session>/<object>'");
  }
  return Make(parts[0], parts[1], parts[2]);
}

arrow::Result<PutTarget> ParsePutPath(std::string_view path) {
  const auto parts = Split(path);
  if (parts.size() != 2 && parts.size() != 3) {
    return arrow::Status::Invalid(
        "Invalid path '", path,
        "': expected '<app>/<session>' or '<app>/<session>/<object>'");
  }
  ARROW_RETURN_NOT_OK(ValidateComponent(parts[0], "app"));
  ARROW_RETURN_NOT_OK(ValidateComponent(parts[1], "session"));
  PutTarget target{std::string(parts[0]), std::string(parts[1]), {}};
  if (parts.size() == 3) {
    ARROW_RETURN_NOT_OK(ValidateComponent(parts[2], "object id"));
    target.object = std::string(parts[2]);
  }
  return target;
}

arrow::Result<KeyPattern> KeyPattern::Parse(std::string_view pattern) {
  const auto parts = Split(pattern);
  if (parts.size() != 2 && parts.size() != 3) {
    return arrow::Status::Invalid(
        "Invalid pattern '", pattern,
        "': expected '<app>/*', '<app>/<session>' or '<app>/<session>/<object>'");
  }
  ARROW_RETURN_NOT_OK(ValidateComponent(parts[0], "app"));
  std::string text(pattern);
  if (parts.size() == 2) {
    if (parts[1] == kWildcardSession) {
      return KeyPattern(Kind::kApp, text, std::string(parts[0]) + "/");
    }
    ARROW_RETURN_NOT_OK(ValidateComponent(parts[1], "session"));
    return KeyPattern(Kind::kSession, text, text + "/");
  }
  if (parts[1] == kWildcardSession) {
    return arrow::Status::Invalid("Invalid pattern '", pattern,
                                  "': the wildcard session '*' cannot have an object id");
  }
  ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Make(parts[0], parts[1], parts[2]));
  return KeyPattern(Kind::kObject, text, key.str());
}

bool KeyPattern::Matches(const ObjectKey& key) const {
  if (kind_ == Kind::kObject) return key.str() == key_prefix_;
  return key.str().starts_with(key_prefix_);
}

arrow::Result<Ticket> ParseTicket(std::string_view ticket) {
  const size_t colon = ticket.rfind(':');
  if (colon == std::string_view::npos) {
    ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(ticket));
    return Ticket{std::move(key), 0};
  }
  const std::string_view digits = ticket.substr(colon + 1);
  uint64_t version = 0;
  const char* begin = digits.data();
  const char* end = digits.data() + digits.size();
  bool linearizable = false;
  if (!digits.empty() && *begin == 'L') {  // our linearizable form (key.h)
    linearizable = true;
    ++begin;
  } else if (!digits.empty() && *begin == '+') {
    ++begin;  // upstream accepts a leading '+'
  }
  const auto [ptr, ec] = std::from_chars(begin, end, version);
  if (begin == end || ec != std::errc() || ptr != end) {
    return arrow::Status::Invalid("Invalid ticket '", ticket, "': version '", digits,
                                  "' is not an unsigned 64-bit decimal number "
                                  "(tickets are '<key>', '<key>:<version>' or "
                                  "'<key>:L<version>')");
  }
  ARROW_ASSIGN_OR_RAISE(auto key, ObjectKey::Parse(ticket.substr(0, colon)));
  return Ticket{std::move(key), version, linearizable};
}

std::string FormatTicket(const ObjectKey& key, uint64_t version) {
  return key.str() + ":" + std::to_string(version);
}

std::string NewUuid4() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  auto put = [&](uint64_t v, int from_nibble, int count) {
    for (int i = 0; i < count; ++i) {
      out.push_back(kHex[(v >> (4 * (from_nibble - i))) & 0xF]);
    }
  };
  put(hi, 15, 8);
  out.push_back('-');
  put(hi, 7, 4);
  out.push_back('-');
  put(hi, 3, 4);
  out.push_back('-');
  put(lo, 15, 4);
  out.push_back('-');
  put(lo, 11, 12);
  return out;
}

}  // namespace foc
