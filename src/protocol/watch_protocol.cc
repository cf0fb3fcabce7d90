#include "protocol/watch_protocol.h"

#include <bson/bson.h>

namespace foc {
namespace {

// Owns a bson_t for the duration of an encode.
struct Doc {
  bson_t b;
  Doc() { bson_init(&b); }
  ~Doc() { bson_destroy(&b); }
  std::string Bytes() const {
    return std::string(reinterpret_cast<const char*>(bson_get_data(&b)), b.len);
  }
};

bool AppendString(bson_t* b, const char* name, std::string_view s) {
  return bson_append_utf8(b, name, -1, s.data(), static_cast<int>(s.size()));
}

arrow::Status InitIter(std::string_view data, bson_t* b, bson_iter_t* it,
                       std::string_view what) {
  if (!bson_init_static(b, reinterpret_cast<const uint8_t*>(data.data()), data.size()) ||
      !bson_validate(b, BSON_VALIDATE_NONE, nullptr) || !bson_iter_init(it, b)) {
    return arrow::Status::Invalid(what, " is not a valid BSON document");
  }
  return arrow::Status::OK();
}

std::string IterString(const bson_iter_t* it) {
  uint32_t len = 0;
  const char* s = bson_iter_utf8(it, &len);
  return std::string(s, len);
}

// int64 or int32 (Python's bson encodes small ints as int32).
bool IterInt(const bson_iter_t* it, int64_t* out) {
  if (BSON_ITER_HOLDS_INT64(it)) {
    *out = bson_iter_int64(it);
    return true;
  }
  if (BSON_ITER_HOLDS_INT32(it)) {
    *out = bson_iter_int32(it);
    return true;
  }
  return false;
}

}  // namespace

arrow::Result<std::string> EncodeWatchCommand(const WatchRequest& r) {
  Doc doc;
  bson_t patterns, since;
  bool ok = bson_append_array_begin(&doc.b, "patterns", -1, &patterns);
  for (size_t i = 0; ok && i < r.patterns.size(); ++i) {
    ok = AppendString(&patterns, std::to_string(i).c_str(), r.patterns[i]);
  }
  ok = ok && bson_append_array_end(&doc.b, &patterns);
  if (ok && !r.since.empty()) {
    ok = bson_append_array_begin(&doc.b, "since", -1, &since);
    for (size_t i = 0; ok && i < r.since.size(); ++i) {
      bson_t entry;
      ok = bson_append_document_begin(&since, std::to_string(i).c_str(), -1, &entry) &&
           AppendString(&entry, "key", r.since[i].first) &&
           bson_append_int64(&entry, "version", -1,
                             static_cast<int64_t>(r.since[i].second)) &&
           bson_append_document_end(&since, &entry);
    }
    ok = ok && bson_append_array_end(&doc.b, &since);
  }
  ok = ok && bson_append_bool(&doc.b, "snapshot", -1, r.snapshot);
  if (ok && r.max_queue) ok = bson_append_int64(&doc.b, "max_queue", -1, r.max_queue);
  if (ok && r.heartbeat_ms) {
    ok = bson_append_int64(&doc.b, "heartbeat_ms", -1, r.heartbeat_ms);
  }
  if (!ok) return arrow::Status::Invalid("WATCH request does not fit in a BSON document");
  return std::string(kWatchCommandPrefix) + doc.Bytes();
}

arrow::Result<WatchRequest> DecodeWatchCommand(std::string_view command) {
  if (!command.starts_with(kWatchCommandPrefix)) {
    return arrow::Status::Invalid("not a WATCH command (expected prefix 'WATCH:')");
  }
  bson_t b;
  bson_iter_t it;
  ARROW_RETURN_NOT_OK(
      InitIter(command.substr(kWatchCommandPrefix.size()), &b, &it, "WATCH request"));
  WatchRequest r;
  bool has_patterns = false;
  while (bson_iter_next(&it)) {
    const std::string_view name = bson_iter_key(&it);
    if (name == "patterns" && BSON_ITER_HOLDS_ARRAY(&it)) {
      has_patterns = true;
      bson_iter_t child;
      if (!bson_iter_recurse(&it, &child)) break;
      while (bson_iter_next(&child)) {
        if (!BSON_ITER_HOLDS_UTF8(&child)) {
          return arrow::Status::Invalid("WATCH request: patterns must be strings");
        }
        r.patterns.push_back(IterString(&child));
      }
    } else if (name == "since" && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t child;
      if (!bson_iter_recurse(&it, &child)) break;
      while (bson_iter_next(&child)) {
        bson_iter_t field;
        if (!BSON_ITER_HOLDS_DOCUMENT(&child) || !bson_iter_recurse(&child, &field)) {
          return arrow::Status::Invalid(
              "WATCH request: since entries must be {key, version} documents");
        }
        std::string key;
        int64_t version = -1;
        bool has_key = false;
        while (bson_iter_next(&field)) {
          const std::string_view f = bson_iter_key(&field);
          if (f == "key" && BSON_ITER_HOLDS_UTF8(&field)) {
            key = IterString(&field);
            has_key = true;
          } else if (f == "version") {
            if (!IterInt(&field, &version)) version = -1;
          }
        }
        if (!has_key || version < 0) {
          return arrow::Status::Invalid(
              "WATCH request: each since entry needs a string key and a version >= 0");
        }
        r.since.emplace_back(std::move(key), static_cast<uint64_t>(version));
      }
    } else if (name == "snapshot" && BSON_ITER_HOLDS_BOOL(&it)) {
      r.snapshot = bson_iter_bool(&it);
    } else if (name == "max_queue") {
      if (!IterInt(&it, &r.max_queue) || r.max_queue < 0) {
        return arrow::Status::Invalid("WATCH request: max_queue must be an integer >= 0");
      }
    } else if (name == "heartbeat_ms") {
      if (!IterInt(&it, &r.heartbeat_ms) || r.heartbeat_ms < 0) {
        return arrow::Status::Invalid(
            "WATCH request: heartbeat_ms must be an integer >= 0");
      }
    }
  }
  if (!has_patterns || r.patterns.empty()) {
    return arrow::Status::Invalid("WATCH request names no key pattern");
  }
  return r;
}

arrow::Result<std::shared_ptr<arrow::Buffer>> EncodeWatchMessage(const WatchMessage& m) {
  Doc doc;
  bool ok = AppendString(&doc.b, "type", m.type);
  if (ok && !m.key.empty()) ok = AppendString(&doc.b, "key", m.key);
  if (ok && m.type == kWatchChange) {
    ok = bson_append_int64(&doc.b, "version", -1, static_cast<int64_t>(m.version));
  }
  if (ok && !m.kind.empty()) ok = AppendString(&doc.b, "kind", m.kind);
  if (ok && !m.epoch.empty()) ok = AppendString(&doc.b, "epoch", m.epoch);
  if (ok && !m.reason.empty()) ok = AppendString(&doc.b, "reason", m.reason);
  if (!ok) return arrow::Status::Invalid("WATCH message does not fit in a BSON document");
  return arrow::Buffer::FromString(doc.Bytes());
}

arrow::Result<WatchMessage> DecodeWatchMessage(std::string_view data) {
  bson_t b;
  bson_iter_t it;
  ARROW_RETURN_NOT_OK(InitIter(data, &b, &it, "WATCH message"));
  WatchMessage m;
  while (bson_iter_next(&it)) {
    const std::string_view name = bson_iter_key(&it);
    int64_t v = 0;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
      if (name == "type") m.type = IterString(&it);
      if (name == "key") m.key = IterString(&it);
      if (name == "kind") m.kind = IterString(&it);
      if (name == "epoch") m.epoch = IterString(&it);
      if (name == "reason") m.reason = IterString(&it);
    } else if (name == "version" && IterInt(&it, &v)) {
      m.version = static_cast<uint64_t>(v);
    }
  }
  if (m.type.empty()) return arrow::Status::Invalid("WATCH message has no type");
  return m;
}

}  // namespace foc
