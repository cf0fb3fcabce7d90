#include "transport/flight_data.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/memory_pool.h>
#include <grpcpp/support/slice.h>

namespace foc::transport {
namespace {

namespace fl = arrow::flight;

constexpr uint32_t kLengthDelimited = 2;
constexpr uint64_t kDescriptorField = 1;
constexpr uint64_t kHeaderField = 2;
constexpr uint64_t kAppMetadataField = 3;
constexpr uint64_t kBodyField = 1000;

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Keeps an Arrow buffer alive for as long as gRPC holds the slice that points into it.
void ReleaseBuffer(void* holder) {
  delete static_cast<std::shared_ptr<arrow::Buffer>*>(holder);
}

// Reads protobuf framing across the slices of a received message.
class SliceReader {
 public:
  explicit SliceReader(std::vector<grpc::Slice> slices) : slices_(std::move(slices)) {
    for (const auto& s : slices_) remaining_ += s.size();
  }
  size_t remaining() const { return remaining_; }

  bool ReadVarint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte = 0;
      if (!Copy(&byte, 1)) return false;
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return false;  // more than 10 bytes: not a varint
  }

  bool Copy(void* dst, size_t n) {
    if (n > remaining_) return false;
    auto* d = static_cast<uint8_t*>(dst);
    while (n > 0) {
      const grpc::Slice& s = slices_[index_];
      const size_t take = std::min(n, s.size() - offset_);
      if (d != nullptr) {
        std::memcpy(d, s.begin() + offset_, take);
        d += take;
      }
      Advance(take);
      n -= take;
    }
    return true;
  }

  bool Skip(size_t n) { return Copy(nullptr, n); }

 private:
  void Advance(size_t n) {
    offset_ += n;
    remaining_ -= n;
    while (index_ < slices_.size() && offset_ == slices_[index_].size()) {
      ++index_;
      offset_ = 0;
    }
  }
  std::vector<grpc::Slice> slices_;
  size_t index_ = 0;
  size_t offset_ = 0;
  size_t remaining_ = 0;
};

arrow::Status Malformed(std::string_view what) {
  return arrow::Status::Invalid("malformed FlightData message: ", what);
}

}  // namespace

arrow::Status EncodeFlightData(const fl::FlightPayload& payload, grpc::ByteBuffer* out) {
  ARROW_ASSIGN_OR_RAISE(arrow::BufferVector buffers, payload.SerializeToBuffers());
  std::vector<grpc::Slice> slices;
  slices.reserve(buffers.size());
  std::string small;  // consecutive small buffers, copied into one slice
  auto flush_small = [&] {
    if (small.empty()) return;
    slices.emplace_back(small);
    small.clear();
  };
  for (const auto& buffer : buffers) {
    if (!buffer || buffer->size() == 0) continue;
    if (buffer->size() < kZeroCopyBytes) {
      small.append(reinterpret_cast<const char*>(buffer->data()),
                   static_cast<size_t>(buffer->size()));
      continue;
    }
    flush_small();
    auto* holder = new std::shared_ptr<arrow::Buffer>(buffer);
    // gRPC only reads the bytes; the slice API takes a non-const pointer.
    slices.emplace_back(const_cast<uint8_t*>(buffer->data()),  // NOLINT
                        static_cast<size_t>(buffer->size()), &ReleaseBuffer, holder);
  }
  flush_small();
  grpc::ByteBuffer message(slices.data(), slices.size());
  out->Swap(&message);
  return arrow::Status::OK();
}

arrow::Status DecodeFlightData(const grpc::ByteBuffer& message,
                               fl::internal::FlightData* out) {
  std::vector<grpc::Slice> slices;
  if (message.Valid()) {
    if (auto st = message.Dump(&slices); !st.ok()) return Malformed(st.error_message());
  }
  SliceReader reader(std::move(slices));
  *out = fl::internal::FlightData{};
  while (reader.remaining() > 0) {
    uint64_t tag = 0;
    if (!reader.ReadVarint(&tag)) return Malformed("truncated field tag");
    const uint64_t field = tag >> 3;
    const auto wire_type = static_cast<uint32_t>(tag & 7);
    if (wire_type != kLengthDelimited) {
      // Not one of ours: skip it as protobuf would.
      uint64_t ignored = 0;
      const bool skipped = wire_type == 0   ? reader.ReadVarint(&ignored)
                           : wire_type == 1 ? reader.Skip(8)
                           : wire_type == 5 ? reader.Skip(4)
                                            : false;
      if (!skipped) return Malformed("unknown wire type");
      continue;
    }
    uint64_t length = 0;
    if (!reader.ReadVarint(&length)) return Malformed("truncated field length");
    if (length > reader.remaining()) return Malformed("field longer than the message");
    const auto n = static_cast<size_t>(length);
    if (field == kDescriptorField) {
      std::string bytes(n, '\0');
      reader.Copy(bytes.data(), n);
      ARROW_ASSIGN_OR_RAISE(auto descriptor, fl::FlightDescriptor::Deserialize(bytes));
      out->descriptor = std::make_unique<fl::FlightDescriptor>(std::move(descriptor));
      continue;
    }
    std::shared_ptr<arrow::Buffer>* target = field == kHeaderField ? &out->metadata
                                             : field == kAppMetadataField
                                                 ? &out->app_metadata
                                             : field == kBodyField ? &out->body
                                                                   : nullptr;
    if (target == nullptr) {
      reader.Skip(n);
      continue;
    }
    // From malloc, not Arrow's default pool (jemalloc in the wheel): the server hands
    // a large upload's memory back with malloc_trim once it is stored, and jemalloc
    // would keep it resident (docs/benchmarks.md, "Memory after a large upload").
    ARROW_ASSIGN_OR_RAISE(
        std::shared_ptr<arrow::Buffer> buffer,
        arrow::AllocateBuffer(static_cast<int64_t>(n), arrow::system_memory_pool()));
    reader.Copy(buffer->mutable_data(), n);
    *target = std::move(buffer);
  }
  return arrow::Status::OK();
}

grpc::ByteBuffer EncodeBytesField1(std::string_view value) {
  std::string out;
  if (!value.empty()) {
    AppendVarint(&out, (1u << 3) | kLengthDelimited);
    AppendVarint(&out, value.size());
    out.append(value);
  }
  return ToByteBuffer(out);
}

std::string ToString(const grpc::ByteBuffer& message) {
  std::string out;
  std::vector<grpc::Slice> slices;
  if (!message.Valid() || !message.Dump(&slices).ok()) return out;
  for (const auto& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToByteBuffer(std::string_view bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

void ToByteBuffer(std::string_view bytes, grpc::ByteBuffer* out) {
  grpc::ByteBuffer message = ToByteBuffer(bytes);
  out->Swap(&message);
}

}  // namespace foc::transport
