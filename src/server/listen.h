// Where the server binds and what it advertises (docs/operations.md, "Bind and
// advertise").
//
// Bind host, first match wins: `cache.bind`; the endpoint's host when it is an IP literal
// or `localhost`; the address of the interface `network_interface` selects; `0.0.0.0`.
// Port: the bind's port, else the endpoint's (default 9090).
//
// Advertised endpoint, first match wins: `cache.advertised_endpoint`; the interface rule
// when the bind host is a wildcard or came from the interface; the bind host; the
// endpoint's host when not a wildcard; the machine's host name. Scheme: `grpc+tls://`
// when TLS is on (both `grpcs://` and `grpc+tls://` mean TLS), else `grpc://`.
//
// Interface rule (fixes upstream's unanchored, nondeterministic choice): the pattern must
// match the whole interface name (std::regex ECMAScript); interfaces are tried in name
// order; the first IPv4 address of the first matching interface that has one wins, else
// its first global IPv6 address. A configured pattern that matches nothing usable is an
// error; the default pattern (`eth0`) is skipped silently when it matches nothing.
#pragma once

#include <string>
#include <vector>

#include <arrow/result.h>

#include "config/config.h"

namespace foc {

struct NetworkInterface {
  std::string name;
  std::vector<std::string> ipv4;  ///< in getifaddrs order
  std::vector<std::string> ipv6;  ///< global/ULA addresses only (no link-local)
};

/// The machine's interfaces (getifaddrs), sorted by name.
std::vector<NetworkInterface> ListNetworkInterfaces();

struct ListenPlan {
  bool tls = false;
  std::string bind_host;            ///< without brackets
  int port = 9090;                  ///< 0 = any free port
  std::string advertised_host;      ///< when advertised_endpoint is empty
  std::string advertised_endpoint;  ///< explicit (normalised scheme), else empty
  std::string reason;               ///< how the hosts were chosen, for the startup log

  /// The advertised URI for the port actually bound.
  std::string Advertised(int bound_port) const;
};

/// Applies the rules above. `hostname` is the fallback advertised host.
arrow::Result<ListenPlan> PlanListen(const Config& config,
                                     const std::vector<NetworkInterface>& interfaces,
                                     const std::string& hostname);

/// Finds a free TCP port on `host` (binds port 0 and releases it).
arrow::Result<int> PickFreePort(const std::string& host);

}  // namespace foc
