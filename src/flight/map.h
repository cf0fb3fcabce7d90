// MAP: same-machine zero copy (docs/protocol.md, "MAP").
//
// A client on the same machine as the server asks, with the Flight action `MAP` (body: a
// full key), for the immutable Arrow IPC files of the object's current version; it then
// maps them read-only instead of receiving the bytes over gRPC. flamepy never sends MAP.
//
// Who may map: the call must come over loopback (the gRPC peer is `ipv4:127.*`,
// `ipv6:[::1]`, `ipv6:[::ffff:127.*]` or `unix:`), the server must have MAP enabled
// (`cache.zero_copy`, default on), and the caller needs read on the key's app, as for a
// GET (cache.auth). The files are opened by the client with its own credentials: a client
// running as a user who cannot read them falls back to gRPC. Everything else (a remote
// peer, a store without local files, an object whose files cannot be described) is
// refused with a status the client takes as "read over gRPC".
//
// Reply: one Result whose body is a JSON document
//   {"key": "...", "version": V, "epoch": "...", "native": false,
//    "files": [{"path": "/abs/base.arrow", "version": 3, "checksum": "xxh3-64:...",
//               "bytes": 1234}, ...]}
// files[0] is the base, then the live deltas in order.
#pragma once

#include <string>
#include <string_view>

#include <arrow/flight/server.h>
#include <arrow/result.h>

namespace foc {

class Store;

/// `MAP`, the action type.
inline constexpr std::string_view kMapAction = "MAP";

/// True if a gRPC peer string names a connection from this machine (loopback or a Unix
/// domain socket).
bool IsLocalPeer(std::string_view peer);

/// Serves one MAP action: checks the peer and the caller's read right, asks the store for
/// the files and encodes the JSON reply.
arrow::Result<std::string> ServeMap(const arrow::flight::ServerCallContext& context,
                                    Store& store, std::string_view body);

}  // namespace foc
