// foc-grpc-floor: a measuring instrument, not a server of the project. It answers every
// Flight DoGet with the same pre-encoded reply — Arrow IPC messages written by pyarrow,
// wrapped in FlightData by hand — on gRPC's callback API (Debian's libgrpc++), with no
// Arrow Flight in the process. bench/small_call_floor.py runs pyarrow clients against it
// and against flame-object-cache (Arrow Flight's synchronous gRPC server), so that the
// difference is what the server model costs a small call (docs/benchmarks.md, "Where a
// small call's time goes").
//
//   foc-grpc-floor --reply FILE [--port N]
//
// FILE: for each IPC message of the reply, u32 header length, the header (flatbuffer
// `Message`), u64 body length, the body (little-endian). Prints "listening on
// grpc://127.0.0.1:PORT" once serving; stops on SIGTERM/SIGINT.
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

namespace {

// Protobuf wire helpers for FlightData {2: data_header, 1000: data_body} (Flight.proto).
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

std::string FlightData(const std::string& header, const std::string& body) {
  std::string out;
  PutVarint(&out, (2u << 3) | 2u);  // data_header, length-delimited
  PutVarint(&out, header.size());
  out += header;
  if (!body.empty()) {
    PutVarint(&out, (1000u << 3) | 2u);  // data_body
    PutVarint(&out, body.size());
    out += body;
  }
  return out;
}

std::vector<std::string> LoadReply(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> messages;
  while (true) {
    uint32_t hlen = 0;
    if (!in.read(reinterpret_cast<char*>(&hlen), sizeof hlen)) break;
    std::string header(hlen, '\0');
    in.read(header.data(), hlen);
    uint64_t blen = 0;
    in.read(reinterpret_cast<char*>(&blen), sizeof blen);
    std::string body(blen, '\0');
    in.read(body.data(), static_cast<std::streamsize>(blen));
    if (!in) break;
    messages.push_back(FlightData(header, body));
  }
  return messages;
}

// One DoGet: read the ticket, write every reply message, finish OK.
class DoGetReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit DoGetReactor(const std::vector<grpc::ByteBuffer>* reply) : reply_(reply) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no ticket"));
      return;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ + 1 < reply_->size()) {
      StartWrite(&(*reply_)[next_++]);
    } else if (next_ + 1 == reply_->size()) {
      StartWriteAndFinish(&(*reply_)[next_++], grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(grpc::Status::OK);
    }
  }
  const std::vector<grpc::ByteBuffer>* reply_;
  grpc::ByteBuffer request_;
  size_t next_ = 0;
};

class FloorService : public grpc::CallbackGenericService {
 public:
  explicit FloorService(std::vector<grpc::ByteBuffer> reply) : reply_(std::move(reply)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override {
    if (ctx->method() == "/arrow.flight.protocol.FlightService/DoGet") {
      return new DoGetReactor(&reply_);
    }
    return CallbackGenericService::CreateReactor(ctx);  // UNIMPLEMENTED
  }

 private:
  std::vector<grpc::ByteBuffer> reply_;
};

std::unique_ptr<grpc::Server> g_server;

}  // namespace

int main(int argc, char** argv) {
  std::string reply_path;
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reply") == 0) reply_path = argv[i + 1];
    if (std::strcmp(argv[i], "--port") == 0) port = std::stoi(argv[i + 1]);
  }
  if (reply_path.empty()) {
    std::cerr << "usage: foc-grpc-floor --reply FILE [--port N]\n";
    return 2;
  }
  std::vector<grpc::ByteBuffer> reply;
  for (const std::string& m : LoadReply(reply_path)) {
    grpc::Slice slice(m);
    reply.emplace_back(&slice, 1);
  }
  if (reply.empty()) {
    std::cerr << "foc-grpc-floor: no messages in " << reply_path << "\n";
    return 2;
  }
  FloorService service(std::move(reply));
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &bound);
  builder.RegisterCallbackGenericService(&service);
  g_server = builder.BuildAndStart();
  if (!g_server) {
    std::cerr << "foc-grpc-floor: cannot listen\n";
    return 1;
  }
  std::cout << "listening on grpc://127.0.0.1:" << bound << std::endl;
  std::signal(SIGTERM, [](int) { std::quick_exit(0); });
  std::signal(SIGINT, [](int) { std::quick_exit(0); });
  g_server->Wait();
  return 0;
}
