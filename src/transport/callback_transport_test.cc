// The callback transport's call handling, on an in-process server with a bare
// FlightServerBase (no cache service): how a DoPut is buffered ahead of its handler and
// that every call ends (reaches Finish) whatever order gRPC's reactions run in.
#include "transport/callback_transport.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <arrow/api.h>
#include <arrow/flight/api.h>
#include <gtest/gtest.h>

namespace foc::transport {
namespace {

namespace fl = arrow::flight;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The transport's options are fixed by the first registration (a process-wide static), so
// the message hook reaches the test through this.
std::function<void(const fl::ServerCallContext&)>& Hook() {
  static std::function<void(const fl::ServerCallContext&)> hook;
  return hook;
}

// Waits (at most `limit`) for `done`.
bool WaitFor(const std::function<bool()>& done,
             milliseconds limit = milliseconds(15000)) {
  const auto until = steady_clock::now() + limit;
  while (!done()) {
    if (steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Counts the DoPut calls that ended (CallCompleted: the transport finished them).
class Completions final : public fl::ServerMiddlewareFactory {
 public:
  class Instance final : public fl::ServerMiddleware {
   public:
    explicit Instance(std::atomic<int>* done) : done_(done) {}
    void SendingHeaders(fl::AddCallHeaders*) override {}
    void CallCompleted(const arrow::Status&) override { ++*done_; }
    std::string name() const override { return "completions"; }

   private:
    std::atomic<int>* done_;
  };
  arrow::Status StartCall(const fl::CallInfo& info, const fl::ServerCallContext&,
                          std::shared_ptr<fl::ServerMiddleware>* middleware) override {
    if (info.method == fl::FlightMethod::DoPut)
      *middleware = std::make_shared<Instance>(&done);
    return arrow::Status::OK();
  }
  std::atomic<int> done{0};
};

// DoPut: says that it started, reads the whole upload and answers with its message count.
class Server final : public fl::FlightServerBase {
 public:
  arrow::Status DoPut(const fl::ServerCallContext& context,
                      std::unique_ptr<fl::FlightMessageReader> reader,
                      std::unique_ptr<fl::FlightMetadataWriter> writer) override {
    started = true;
    int messages = 0;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(fl::FlightStreamChunk chunk, reader->Next());
      if (!chunk.data && !chunk.app_metadata) break;
      ++messages;
    }
    if (context.is_cancelled()) return arrow::Status::Cancelled("cut off");
    return writer->WriteMetadata(*arrow::Buffer::FromString(std::to_string(messages)));
  }
  std::atomic<bool> started{false};
};

class CallbackTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CallbackTransportOptions options;
    options.on_message = [](const fl::ServerCallContext& context) {
      if (Hook()) Hook()(context);
    };
    ASSERT_TRUE(RegisterCallbackTransport(std::move(options)).ok());
    auto location = CallbackLocation("127.0.0.1", 0, false);
    ASSERT_TRUE(location.ok());
    fl::FlightServerOptions server_options(*location);
    completions_ = std::make_shared<Completions>();
    server_options.middleware.emplace_back("completions", completions_);
    server_ = std::make_unique<Server>();
    ASSERT_TRUE(server_->Init(server_options).ok());
    auto client_location = fl::Location::ForGrpcTcp("127.0.0.1", server_->port());
    ASSERT_TRUE(client_location.ok());
    auto client = fl::FlightClient::Connect(*client_location);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }
  void TearDown() override {
    Hook() = nullptr;
    if (client_) {
      EXPECT_TRUE(client_->Close().ok());
    }
    // A call that never finished would hold Shutdown for ever: leave such a server.
    if (!hung_ && server_) {
      EXPECT_TRUE(server_->Shutdown().ok());
      EXPECT_TRUE(server_->Wait().ok());
    } else {
      (void)server_.release();  // NOLINT(bugprone-unused-return-value)
    }
  }

  std::shared_ptr<arrow::Schema> schema_ =
      arrow::schema({arrow::field("x", arrow::int64())});
  std::shared_ptr<Completions> completions_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<fl::FlightClient> client_;
  bool hung_ = false;
};

// gRPC may run OnCancel before the OnReadDone of a message that had already arrived
// (reactions run concurrently). A small upload, buffered until its end, must still reach
// its handler and Finish: here the message hook holds the first message's reaction until
// the cancellation has been seen.
TEST_F(CallbackTransportTest, AnUploadCancelledWhileAMessageIsDeliveredStillEnds) {
  std::atomic<bool> held{false};
  Hook() = [&held](const fl::ServerCallContext& context) {
    if (held.exchange(true)) return;
    WaitFor([&context] { return context.is_cancelled(); });
    std::this_thread::sleep_for(milliseconds(300));  // OnCancel runs meanwhile
  };
  fl::FlightCallOptions options;
  options.timeout = fl::TimeoutDuration{0.5};
  auto put = client_->DoPut(options, fl::FlightDescriptor::Path({"k"}), schema_);
  ASSERT_TRUE(put.ok());
  arrow::Int64Builder values;
  ASSERT_TRUE(values.Append(1).ok());
  auto batch = arrow::RecordBatch::Make(schema_, 1, {values.Finish().ValueOrDie()});
  (void)put->writer->WriteRecordBatch(*batch);
  ASSERT_TRUE(WaitFor([&held] { return held.load(); }));
  const bool ended = WaitFor([this] { return completions_->done.load() == 1; });
  EXPECT_TRUE(ended) << "the cancelled DoPut never finished";
  hung_ = !ended;
  (void)put->writer->Close();
}

// A message's memory is more than its bytes (the decoded FlightData, a buffer object and
// an aligned allocation per field): a flood of tiny messages must not stay buffered ahead
// of the handler as if it weighed nothing. 4096 one-byte messages hold ~1 MiB, beyond
// kInlineUploadBytes, so the handler starts before the client ends the upload.
TEST_F(CallbackTransportTest, TinyMessagesCountTowardsWhatIsBufferedAheadOfTheHandler) {
  auto put = client_->DoPut(fl::FlightDescriptor::Path({"k"}), schema_);
  ASSERT_TRUE(put.ok());
  const auto one = arrow::Buffer::FromString("x");
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(put->writer->WriteMetadata(one).ok());
  EXPECT_TRUE(WaitFor([this] { return server_->started.load(); }))
      << "4096 messages were all buffered ahead of the handler";
  ASSERT_TRUE(put->writer->DoneWriting().ok());
  std::shared_ptr<arrow::Buffer> reply;
  ASSERT_TRUE(put->reader->ReadMetadata(&reply).ok());
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->ToString(), "4096");
  EXPECT_TRUE(put->writer->Close().ok());
}

}  // namespace
}  // namespace foc::transport
