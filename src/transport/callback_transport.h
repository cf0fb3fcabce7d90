// Arrow Flight served on gRPC's callback API.
//
// Arrow Flight's own gRPC server is synchronous: each call's messages pass between gRPC's
// poller threads and a handler thread. On this 2-core machine that hand-off is where a
// small call's time goes (docs/benchmarks.md, "Where a small call's time goes": at four
// clients a callback-API server answers 1.4-1.75x as many not-modified checks with half
// the CPU). This transport serves the same FlightService
// (arrow::flight::FlightServerBase) through the same public handler interface, on
// Debian's gRPC (libgrpc++) callback API:
//
//  * Unary-request calls (DoGet, GetFlightInfo, GetSchema, PollFlightInfo, DoAction,
//    ListActions, ListFlights, Handshake) run their handler on the gRPC thread that
//    delivered the request and pull the reply messages one write at a time: no hand-off.
//  * Writes (DoPut, DoAction) run on a worker thread. A DoPut is buffered until the
//    client half-closes and then handed over whole; one that outgrows kInlineUploadBytes
//    first streams through its worker with back-pressure (at most 2 MiB read ahead), so
//    memory stays bounded. With `inline_writes` (memory-only storage) writes run on the
//    receiving thread instead.
//  * DoExchange (WATCH) runs on a worker thread from the start: it lives long and blocks.
//
// The wire is Arrow Flight's: FlightData is written by Arrow's
// FlightPayload::SerializeToBuffers; errors carry the same gRPC codes and x-arrow-status
// trailers as Arrow's gRPC server (tests/python/test_transport.py compares the two
// transports call by call). Middleware (metrics, auth, call guard) runs as under Arrow:
// StartCall before the handler, CallCompleted with the final status.
//
// Arrow's own gRPC is built into the pyarrow wheel with hidden symbols, so Debian's gRPC
// serves here beside it in the same process. The server's main picks the transport
// (`cache.transport`, docs/operations.md).
#pragma once

#include <functional>
#include <string>

#include <arrow/flight/server.h>

#include <arrow/flight/types.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace foc::transport {

/// Uploads up to this size are buffered and stored by the thread that received their
/// end; larger ones stream through a worker thread.
inline constexpr int64_t kInlineUploadBytes = int64_t{256} * 1024;

/// Called on the receiving thread for every message of an upload or WATCH stream as it
/// arrives, before its handler may have started (an upload waits in a buffer until it
/// ends): the server's call guard marks the stream as moving (flight/call_guard.h), so
/// that a slow but live upload is not cut as stalled.
using MessageHook = std::function<void(const arrow::flight::ServerCallContext&)>;

struct CallbackTransportOptions {
  MessageHook on_message;
  /// Run writes (DoPut up to kInlineUploadBytes, DoAction) on the gRPC thread that
  /// received them. Only for a store whose writes never wait on a disk (memory-only): a
  /// durable put waits for fsync, and gRPC runs the reactions of every call on few
  /// threads, so inline durable puts would wait for one another (no two fsyncs at once,
  /// none shared by group commit) and hold up every other call meanwhile. Off: writes run
  /// on worker threads.
  bool inline_writes = false;
};

/// Registers the transport with Arrow Flight's transport registry under the schemes
/// `foc-grpc` and `foc-grpc+tls`. Idempotent: the first call's options are kept.
arrow::Status RegisterCallbackTransport(CallbackTransportOptions options = {});

/// The location that makes FlightServerBase::Init serve on this transport:
/// `foc-grpc://host:port`, or `foc-grpc+tls://` with TLS (then the certificates of
/// FlightServerOptions apply as under Arrow's gRPC server). The server's location()
/// reports the ordinary `grpc://` / `grpc+tls://` form.
arrow::Result<arrow::flight::Location> CallbackLocation(const std::string& host, int port,
                                                        bool tls);

}  // namespace foc::transport
