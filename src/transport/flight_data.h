// The protobuf framing of Flight's gRPC messages, for the callback transport
// (callback_transport.h): FlightData both ways, and the few small messages whose only
// field is bytes field 1 (Ticket, PutResult, Result). Arrow's own public
// FlightPayload::SerializeToBuffers() writes FlightData, so our replies carry the same
// bytes as Arrow Flight's gRPC server; reading FlightData is done here because Arrow
// keeps its reader internal.
#pragma once

#include <string>
#include <string_view>

#include <arrow/flight/transport.h>
#include <arrow/flight/types.h>
#include <arrow/result.h>
#include <grpcpp/support/byte_buffer.h>

namespace foc::transport {

/// Buffers smaller than this are copied into the message's slices; larger ones are
/// referenced (zero copy) until gRPC has sent them.
inline constexpr int64_t kZeroCopyBytes = 64 * 1024;

/// The gRPC message of one FlightData (Flight.proto: flight_descriptor = 1,
/// data_header = 2, app_metadata = 3, data_body = 1000), byte for byte what Arrow
/// Flight's gRPC server sends for `payload`, into `out` (grpc::ByteBuffer has no move
/// assignment: out-parameters spare a copy).
arrow::Status EncodeFlightData(const arrow::flight::FlightPayload& payload,
                               grpc::ByteBuffer* out);

/// Parses one FlightData message. Every field is copied into its own freshly allocated
/// (64-byte aligned) buffer, so that Arrow's IPC reader sees aligned bodies whatever the
/// slicing gRPC chose. Unknown fields are skipped; truncated or malformed framing is
/// Invalid.
arrow::Status DecodeFlightData(const grpc::ByteBuffer& message,
                               arrow::flight::internal::FlightData* out);

/// A message of one `bytes` field 1 (PutResult.app_metadata, Result.body, ...). Empty
/// `value`: the empty message, as protobuf writes it.
grpc::ByteBuffer EncodeBytesField1(std::string_view value);

/// The message's bytes as one string (requests are small: tickets, actions, criteria).
std::string ToString(const grpc::ByteBuffer& message);

/// One slice holding a copy of `bytes`.
grpc::ByteBuffer ToByteBuffer(std::string_view bytes);
/// The same into `out`.
void ToByteBuffer(std::string_view bytes, grpc::ByteBuffer* out);

}  // namespace foc::transport
