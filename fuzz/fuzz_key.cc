// Key, pattern, put-path and ticket parsing (src/key/): any bytes a client can send as a
// DoGet ticket, a DoPut path or command, or a DELETE body. Every accepted value must
// round-trip through its own text form.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "key/key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ticket = foc::ParseTicket(text); ticket.ok()) {
    const std::string again = foc::FormatTicket(ticket->key, ticket->version);
    auto reparsed = foc::ParseTicket(again);
    if (!reparsed.ok() || !(reparsed->key == ticket->key) ||
        reparsed->version != ticket->version)
      std::abort();
  }
  if (auto key = foc::ObjectKey::Parse(text); key.ok()) {
    if (key->str() != text) std::abort();
    auto again = foc::ObjectKey::Make(key->app(), key->session(), key->object());
    if (!again.ok() || !(*again == *key)) std::abort();
  }
  if (auto pattern = foc::KeyPattern::Parse(text); pattern.ok()) {
    if (!std::string_view(pattern->key_prefix()).size()) std::abort();
    if (auto key = foc::ObjectKey::Parse(text); key.ok() && !pattern->Matches(*key))
      std::abort();
  }
  (void)foc::ParsePutPath(text);
  return 0;
}
