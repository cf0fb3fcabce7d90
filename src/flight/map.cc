#include "flight/map.h"

#include <cstdio>

#include <arrow/flight/types.h>

#include "flight/auth.h"
#include "key/key.h"
#include "store/store.h"

namespace foc {
namespace fl = arrow::flight;

namespace {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(ch);  // UTF-8 passes through
    }
  }
  out->push_back('"');
}

}  // namespace

bool IsLocalPeer(std::string_view peer) {
  return peer.starts_with("ipv4:127.") || peer.starts_with("ipv6:[::1]:") ||
         peer.starts_with("ipv6:%5B::1%5D:") || peer.starts_with("ipv6:[::ffff:127.") ||
         peer.starts_with("unix:");
}

arrow::Result<std::string> ServeMap(const fl::ServerCallContext& context, Store& store,
                                    std::string_view body) {
  ARROW_ASSIGN_OR_RAISE(ObjectKey key, ObjectKey::Parse(body));
  ARROW_RETURN_NOT_OK(Authorize(context, key.app(), Right::kRead, "MAP " + key.str()));
  if (!IsLocalPeer(context.peer())) {
    return arrow::Status::NotImplemented(
        "MAP is only for clients on the server's machine (loopback or a Unix socket); "
        "read over gRPC");
  }
  ARROW_ASSIGN_OR_RAISE(LocalObject local, store.MapLocal(key));
  std::string out = "{\"key\":";
  AppendJsonString(&out, local.key.str());
  out += ",\"version\":" + std::to_string(local.version) + ",\"epoch\":";
  AppendJsonString(&out, store.epoch());
  out += local.native ? ",\"native\":true" : ",\"native\":false";
  out += ",\"files\":[";
  for (size_t i = 0; i < local.files.size(); ++i) {
    const LocalObjectFile& f = local.files[i];
    if (i > 0) out += ',';
    out += "{\"path\":";
    AppendJsonString(&out, f.path);
    out += ",\"version\":" + std::to_string(f.version) + ",\"checksum\":";
    AppendJsonString(&out, f.checksum);
    out += ",\"bytes\":" + std::to_string(f.bytes) + "}";
  }
  out += "]}";
  return out;
}

}  // namespace foc
