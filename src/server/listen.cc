#include "server/listen.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>

#include "protocol/endpoint.h"

namespace foc {

std::vector<NetworkInterface> ListNetworkInterfaces() {
  std::map<std::string, NetworkInterface> by_name;
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || !(a->ifa_flags & IFF_UP)) continue;
    auto& iface = by_name[a->ifa_name];
    iface.name = a->ifa_name;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
      iface.ipv4.emplace_back(buf);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
        continue;  // needs a zone to be dialable
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
      iface.ipv6.emplace_back(buf);
    }
  }
  freeifaddrs(list);
  std::vector<NetworkInterface> out;
  out.reserve(by_name.size());
  for (auto& [name, iface] : by_name) out.push_back(std::move(iface));
  return out;
}

namespace {

// The interface rule; "" when the (defaulted) pattern matches nothing usable.
arrow::Result<std::string> InterfaceAddress(
    const Config& config, const std::vector<NetworkInterface>& interfaces) {
  std::regex pattern;
  try {
    pattern = std::regex(config.network_interface, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return arrow::Status::Invalid("cache.network_interface: invalid value '",
                                  config.network_interface,
                                  "': not a regular expression (", e.what(), ")");
  }
  std::vector<const NetworkInterface*> matches;
  for (const auto& iface : interfaces) {
    if (std::regex_match(iface.name, pattern)) matches.push_back(&iface);
  }
  std::sort(matches.begin(), matches.end(),
            [](auto* a, auto* b) { return a->name < b->name; });
  for (auto* iface : matches) {
    if (!iface->ipv4.empty()) return iface->ipv4.front();
  }
  for (auto* iface : matches) {
    if (!iface->ipv6.empty()) return iface->ipv6.front();
  }
  if (!config.network_interface_set) return std::string();
  if (matches.empty()) {
    return arrow::Status::Invalid("cache.network_interface: invalid value '",
                                  config.network_interface,
                                  "': no network interface matches");
  }
  return arrow::Status::Invalid("cache.network_interface: invalid value '",
                                config.network_interface, "': interface ",
                                matches[0]->name, " has no usable address");
}

}  // namespace

std::string ListenPlan::Advertised(int bound_port) const {
  if (!advertised_endpoint.empty()) return advertised_endpoint;
  return DialableUri(tls, advertised_host, bound_port);
}

arrow::Result<ListenPlan> PlanListen(const Config& config,
                                     const std::vector<NetworkInterface>& interfaces,
                                     const std::string& hostname) {
  ARROW_ASSIGN_OR_RAISE(auto endpoint, ParseEndpointUri(config.endpoint));
  ListenPlan plan;
  plan.tls = endpoint.tls;
  plan.port = endpoint.port;
  std::string iface_addr;
  bool bind_from_iface = false;
  if (!config.bind.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto bind, ParseBindAddress(config.bind));
    plan.bind_host = bind.host;
    if (bind.port >= 0) plan.port = bind.port;
    plan.reason = "bind from cache.bind";
  } else if (IsIpLiteral(endpoint.host) || endpoint.host == "localhost") {
    plan.bind_host = endpoint.host;
    plan.reason = "bind from the endpoint's host";
  } else {
    ARROW_ASSIGN_OR_RAISE(iface_addr, InterfaceAddress(config, interfaces));
    if (!iface_addr.empty()) {
      plan.bind_host = iface_addr;
      bind_from_iface = true;
      plan.reason = "bind from network_interface '" + config.network_interface + "'";
    } else {
      plan.bind_host = "0.0.0.0";
      plan.reason = "bind to all addresses";
    }
  }

  if (!config.advertised_endpoint.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto adv, ParseEndpointUri(config.advertised_endpoint));
    plan.advertised_endpoint = DialableUri(adv.tls, adv.host, adv.port);
    plan.reason += ", advertise cache.advertised_endpoint";
    return plan;
  }
  bool wildcard = IsWildcardHost(plan.bind_host);
  if (bind_from_iface) {
    plan.advertised_host = iface_addr;
    plan.reason += ", advertise its address";
    return plan;
  }
  if (wildcard) {
    ARROW_ASSIGN_OR_RAISE(iface_addr, InterfaceAddress(config, interfaces));
    if (!iface_addr.empty()) {
      plan.advertised_host = iface_addr;
      plan.reason += ", advertise network_interface '" + config.network_interface + "'";
    } else if (!IsWildcardHost(endpoint.host)) {
      plan.advertised_host = endpoint.host;
      plan.reason += ", advertise the endpoint's host";
    } else {
      plan.advertised_host = hostname;
      plan.reason += ", advertise the host name";
    }
    return plan;
  }
  plan.advertised_host = plan.bind_host;
  plan.reason += ", advertise the bind host";
  return plan;
}

arrow::Result<int> PickFreePort(const std::string& host) {
  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), "0", &hints, &res); rc != 0) {
    return arrow::Status::IOError("cannot resolve '", host, "': ", gai_strerror(rc));
  }
  int port = -1;
  int err = 0;
  for (auto* ai = res; ai && port < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    sockaddr_storage addr = {};
    socklen_t len = sizeof(addr);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = addr.ss_family == AF_INET6
                 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                 : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    } else {
      err = errno;
    }
    ::close(fd);
  }
  freeaddrinfo(res);
  if (port < 0)
    return arrow::Status::IOError("cannot bind '", host, "': ", std::strerror(err));
  return port;
}

}  // namespace foc
