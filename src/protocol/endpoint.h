// Endpoint URIs and bind addresses: the one parser of `scheme://host[:port]` for the
// server's configuration (`endpoint`, `advertise`) and for the clients (C++ client, CLI).
// The Python SDK's `flame_object_cache.endpoints.parse_endpoint` follows the same rules;
// both are checked against the shared table tests/rules/endpoints.json.
#pragma once

#include <string>
#include <string_view>

#include <arrow/result.h>

namespace foc {

/// A parsed `scheme://host[:port]` endpoint.
struct EndpointUri {
  std::string scheme;  ///< lower-cased: grpc, grpc+tcp, grpcs, grpc+tls, http, https
  std::string host;    ///< without brackets for IPv6 literals
  int port = 9090;     ///< 9090 when absent (upstream's default)
  bool tls = false;    ///< grpcs, grpc+tls, https
};

/// Parses an endpoint. Accepts the schemes above; `http`/`https` are accepted because
/// upstream's default is `http://127.0.0.1:9090` (they mean plaintext gRPC / TLS). A
/// path, a query or user info are errors; the host is required; IPv6 literals are
/// bracketed.
arrow::Result<EndpointUri> ParseEndpointUri(std::string_view text);

/// A bind address: host and optional port (-1 = none given).
struct BindAddress {
  std::string host;  ///< without brackets
  int port = -1;
};

/// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal.
arrow::Result<BindAddress> ParseBindAddress(std::string_view text);

/// True for IPv4 or IPv6 literals (no brackets).
bool IsIpLiteral(std::string_view host);
/// True for 0.0.0.0 and :: (listen on every address).
bool IsWildcardHost(std::string_view host);
/// `host` bracketed when it is an IPv6 literal, for use in a URI.
std::string UriHost(std::string_view host);
/// `grpc://host:port` or `grpc+tls://host:port` (IPv6 bracketed).
std::string DialableUri(bool tls, std::string_view host, int port);

/// What a client dials for `endpoint`: the Arrow Flight location (`grpc://host:port` or
/// `grpc+tls://host:port`) of any accepted spelling, e.g. `grpcs://h` ->
/// `grpc+tls://h:9090`, `http://h:1` -> `grpc://h:1`. InvalidArgument for anything
/// ParseEndpointUri refuses (unknown scheme, path, bad port, ...).
arrow::Result<std::string> ClientLocation(std::string_view endpoint);

}  // namespace foc
