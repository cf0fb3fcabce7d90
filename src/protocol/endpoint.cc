#include "protocol/endpoint.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace foc {

namespace {

arrow::Result<int> ParsePort(std::string_view text, std::string_view whole) {
  int port = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || port < 0 ||
      port > 65535) {
    return arrow::Status::Invalid("invalid port '", text, "' in '", whole, "'");
  }
  return port;
}

// Splits "host[:port]" / "[v6][:port]" / bare v6 into host and port text.
arrow::Status SplitHostPort(std::string_view text, std::string_view whole,
                            std::string* host, std::string_view* port) {
  *port = {};
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      return arrow::Status::Invalid("unterminated '[' in '", whole, "'");
    }
    *host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return arrow::Status::Invalid("unexpected '", rest, "' in '", whole, "'");
      *port = rest.substr(1);
      if (port->empty()) return arrow::Status::Invalid("empty port in '", whole, "'");
    }
    if (!IsIpLiteral(*host) || host->find(':') == std::string::npos) {
      return arrow::Status::Invalid(
          "'", *host, "' in brackets is not an IPv6 address in '", whole, "'");
    }
    return arrow::Status::OK();
  }
  if (std::count(text.begin(), text.end(), ':') > 1) {  // bare IPv6 literal, no port
    *host = std::string(text);
    if (!IsIpLiteral(*host))
      return arrow::Status::Invalid("invalid host '", text, "' in '", whole, "'");
    return arrow::Status::OK();
  }
  auto colon = text.find(':');
  *host = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) {
    *port = text.substr(colon + 1);
    if (port->empty()) return arrow::Status::Invalid("empty port in '", whole, "'");
  }
  for (char c : *host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
          c == '_')) {
      return arrow::Status::Invalid("invalid host '", *host, "' in '", whole, "'");
    }
  }
  return arrow::Status::OK();
}

}  // namespace

bool IsIpLiteral(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool IsWildcardHost(std::string_view host) {
  std::string h(host);
  unsigned char buf[16] = {};
  if (inet_pton(AF_INET, h.c_str(), buf) == 1)
    return std::all_of(buf, buf + 4, [](auto b) { return b == 0; });
  if (inet_pton(AF_INET6, h.c_str(), buf) == 1)
    return std::all_of(buf, buf + 16, [](auto b) { return b == 0; });
  return false;
}

std::string UriHost(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return "[" + std::string(host) + "]";
  return std::string(host);
}

std::string DialableUri(bool tls, std::string_view host, int port) {
  return std::string(tls ? "grpc+tls://" : "grpc://") + UriHost(host) + ":" +
         std::to_string(port);
}

arrow::Result<EndpointUri> ParseEndpointUri(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    return arrow::Status::Invalid("endpoint '", text,
                                  "' is not of the form scheme://host:port");
  }
  EndpointUri uri;
  uri.scheme = std::string(text.substr(0, sep));
  std::transform(uri.scheme.begin(), uri.scheme.end(), uri.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (uri.scheme == "grpcs" || uri.scheme == "grpc+tls" || uri.scheme == "https") {
    uri.tls = true;
  } else if (uri.scheme != "grpc" && uri.scheme != "grpc+tcp" && uri.scheme != "http") {
    return arrow::Status::Invalid(
        "endpoint '", text, "' has unsupported scheme '", uri.scheme,
        "' (use grpc, grpc+tcp, grpcs, grpc+tls, http or https)");
  }
  std::string_view authority = text.substr(sep + 3);
  if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.find_first_of("/?#@") != std::string_view::npos) {
    return arrow::Status::Invalid("endpoint '", text,
                                  "' must be scheme://host[:port] only");
  }
  std::string_view port;
  ARROW_RETURN_NOT_OK(SplitHostPort(authority, text, &uri.host, &port));
  if (uri.host.empty()) return arrow::Status::Invalid("no host in endpoint '", text, "'");
  if (!port.empty()) {
    ARROW_ASSIGN_OR_RAISE(uri.port, ParsePort(port, text));
  }
  return uri;
}

arrow::Result<std::string> ClientLocation(std::string_view endpoint) {
  ARROW_ASSIGN_OR_RAISE(auto uri, ParseEndpointUri(endpoint));
  return DialableUri(uri.tls, uri.host, uri.port);
}

arrow::Result<BindAddress> ParseBindAddress(std::string_view text) {
  BindAddress bind;
  std::string_view port;
  ARROW_RETURN_NOT_OK(SplitHostPort(text, text, &bind.host, &port));
  if (bind.host.empty())
    return arrow::Status::Invalid("no host in bind address '", text, "'");
  if (!port.empty()) {
    ARROW_ASSIGN_OR_RAISE(bind.port, ParsePort(port, text));
  }
  return bind;
}

}  // namespace foc
