#include "protocol/routing.h"

#include <algorithm>

namespace foc {

namespace {

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t RendezvousScore(std::string_view member, std::string_view key) {
  return Mix(Fnv1a64(member) ^ Mix(Fnv1a64(key)));
}

std::string_view RoutingKey(std::string_view key) {
  size_t first = key.find('/');
  if (first == std::string_view::npos) return key;
  size_t second = key.find('/', first + 1);
  return second == std::string_view::npos ? key : key.substr(0, second);
}

std::vector<std::string> RendezvousOrder(std::string_view key,
                                         std::vector<std::string> members) {
  const std::string_view routed = RoutingKey(key);
  std::vector<std::pair<uint64_t, std::string>> scored;
  scored.reserve(members.size());
  for (auto& m : members) scored.emplace_back(RendezvousScore(m, routed), std::move(m));
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> out;
  out.reserve(scored.size());
  for (auto& s : scored) out.push_back(std::move(s.second));
  return out;
}

}  // namespace foc
