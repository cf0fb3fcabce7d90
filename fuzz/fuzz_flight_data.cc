// FlightData framing as the callback transport reads it from a client (transport/
// flight_data.h): the bytes of one gRPC message, split into two slices at a point the
// input chooses (gRPC hands messages over in slices), decoded, and — when the framing is
// valid — opened as an Arrow IPC message, as Arrow's DoPut reader does next. Lengths and
// tags come from the client; nothing may read outside the message or allocate more than
// it holds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <arrow/flight/transport.h>
#include <arrow/ipc/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "transport/flight_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = data[0] % (size + 1);  // where the second slice starts
  const uint8_t* message = data + 1;
  const size_t length = size - 1;
  std::vector<grpc::Slice> slices;
  const size_t first = split < length ? split : length;
  slices.emplace_back(message, first);
  if (length > first) slices.emplace_back(message + first, length - first);
  grpc::ByteBuffer buffer(slices.data(), slices.size());
  arrow::flight::internal::FlightData decoded;
  if (!foc::transport::DecodeFlightData(buffer, &decoded).ok()) return 0;
  if (decoded.metadata) {
    auto opened = decoded.OpenMessage();
    (void)opened;
  }
  return 0;
}
