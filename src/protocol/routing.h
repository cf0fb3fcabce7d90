// Which cluster member a client sends a key to: rendezvous (highest-random-weight)
// hashing.
//
// Every client — the C++ client, the CLI and the Python SDK — must pick the same member
// for the same key and member set, so the score is specified exactly here and checked in
// both languages against the shared vectors in tests/rules/rendezvous.json:
//
//   h(s)         = FNV-1a 64 of the bytes of s (offset 0xcbf29ce484222325, prime
//   0x100000001b3) mix(x)       = the SplitMix64 finaliser: x ^= x >> 30; x *=
//   0xbf58476d1ce4e5b9;
//                  x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31   (mod 2^64)
//   score(m, k)  = mix(h(m) ^ mix(h(k)))
//
// The member with the highest score wins; equal scores go to the smaller member id.
// Removing a member moves only the keys it owned; adding one moves only the keys it now
// wins. Keys are routed by their session (`<app>/<session>`), so an object and the
// session it belongs to live on one member and a session's DELETE reaches the member
// holding its objects.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace foc {

/// score(member, key) as specified above.
uint64_t RendezvousScore(std::string_view member, std::string_view key);

/// The part of a key that routing hashes: `<app>/<session>` of `<app>/<session>/<object>`
/// (a key without a second '/' is returned whole).
std::string_view RoutingKey(std::string_view key);

/// Members ordered by preference for `key` (hashed through RoutingKey): the first is the
/// owner, the rest are the failover order.
std::vector<std::string> RendezvousOrder(std::string_view key,
                                         std::vector<std::string> members);

}  // namespace foc
