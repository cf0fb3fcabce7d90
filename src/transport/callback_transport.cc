#include "transport/callback_transport.h"

#include <atomic>
#include <chrono>
#include <climits>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <absl/synchronization/mutex.h>
#include <arrow/flight/server.h>
#include <arrow/flight/server_auth.h>
#include <arrow/flight/server_middleware.h>
#include <arrow/flight/transport.h>
#include <arrow/flight/transport_server.h>
#include <arrow/util/uri.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include "base/check.h"
#include "base/mutex.h"
#include "protocol/endpoint.h"
#include "transport/flight_data.h"

namespace foc::transport {
namespace {

namespace fl = arrow::flight;

constexpr char kScheme[] = "foc-grpc";
constexpr char kTlsScheme[] = "foc-grpc+tls";
constexpr std::string_view kServicePrefix = "/arrow.flight.protocol.FlightService/";
// Bytes of an upload received ahead of its handler (then reading waits for it). Reading
// only one message ahead, however large, made 1 MiB-row uploads ~3x slower: gRPC then
// stops granting flow-control window between messages.
constexpr int64_t kReadAheadBytes = int64_t{2} * 1024 * 1024;
// Reply messages a streaming handler (WATCH) may queue before it waits for the client.
constexpr size_t kMaxQueuedWrites = 16;

std::optional<fl::FlightMethod> MethodOf(std::string_view path) {
  if (!path.starts_with(kServicePrefix)) return std::nullopt;
  const std::string_view name = path.substr(kServicePrefix.size());
  using M = fl::FlightMethod;
  static constexpr std::pair<std::string_view, M> kMethods[] = {
      {"DoGet", M::DoGet},
      {"DoPut", M::DoPut},
      {"DoAction", M::DoAction},
      {"GetFlightInfo", M::GetFlightInfo},
      {"DoExchange", M::DoExchange},
      {"ListActions", M::ListActions},
      {"ListFlights", M::ListFlights},
      {"GetSchema", M::GetSchema},
      {"PollFlightInfo", M::PollFlightInfo},
      {"Handshake", M::Handshake},
  };
  for (const auto& [n, m] : kMethods) {
    if (n == name) return m;
  }
  return std::nullopt;
}

grpc::StatusCode GrpcCode(fl::TransportStatusCode code) {
  using T = fl::TransportStatusCode;
  switch (code) {
    case T::kOk:
      return grpc::StatusCode::OK;
    case T::kUnknown:
      return grpc::StatusCode::UNKNOWN;
    case T::kInternal:
      return grpc::StatusCode::INTERNAL;
    case T::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case T::kTimedOut:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case T::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case T::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case T::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case T::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case T::kUnauthorized:
      return grpc::StatusCode::PERMISSION_DENIED;
    case T::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case T::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
  }
  return grpc::StatusCode::UNKNOWN;
}

// The gRPC status of a finished call, with the trailers Arrow Flight clients read to
// rebuild the Arrow status: `x-arrow-status` (the arrow::StatusCode number),
// `x-arrow-status-message-bin`, `x-arrow-status-detail-bin` (the detail's text) and, for
// a FlightStatusDetail with extra info, `grpc-status-details-bin`.
grpc::Status ToGrpcStatus(const arrow::Status& status, grpc::CallbackServerContext* ctx) {
  if (status.ok()) return grpc::Status::OK;
  const fl::internal::TransportStatus transport =
      fl::internal::TransportStatus::FromStatus(status);
  ctx->AddTrailingMetadata("x-arrow-status",
                           std::to_string(static_cast<int>(status.code())));
  ctx->AddTrailingMetadata("x-arrow-status-message-bin", status.message());
  if (status.detail() != nullptr) {
    ctx->AddTrailingMetadata("x-arrow-status-detail-bin", status.detail()->ToString());
  }
  if (auto flight = fl::FlightStatusDetail::UnwrapStatus(status)) {
    const std::string extra = flight->extra_info();
    if (!extra.empty()) ctx->AddTrailingMetadata("grpc-status-details-bin", extra);
  }
  return {GrpcCode(transport.code), transport.message};
}

// Threads for the handlers that block (uploads past kInlineUploadBytes, WATCH). A task
// runs on an idle thread, else on a new one: a handler never waits for another to end.
// Threads stay until the transport goes (as many as the most handlers that ever ran at
// once; the call guard's max_concurrent_calls bounds that).
class WorkerPool {
 public:
  WorkerPool() = default;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool() {
    std::vector<std::thread> threads;
    {
      MutexLock lock(&mu_);
      stop_ = true;
      threads.swap(threads_);
    }
    work_.SignalAll();
    for (auto& t : threads) t.join();
  }

  /// IOError when no idle thread is left and no new one can be started (the task is not
  /// run).
  arrow::Status Run(std::function<void()> task) {
    MutexLock lock(&mu_);
    FOC_DCHECK(!stop_);
    if (tasks_.size() + 1 > idle_) {
      try {
        threads_.emplace_back([this] { Loop(); });
      } catch (const std::system_error& e) {  // no exception leaves the transport
        return arrow::Status::IOError("cannot start a worker thread: ", e.what());
      }
    } else {
      work_.Signal();
    }
    tasks_.push_back(std::move(task));
    return arrow::Status::OK();
  }

 private:
  void Loop() {
    MutexLock lock(&mu_);
    while (true) {
      while (tasks_.empty() && !stop_) {
        ++idle_;
        work_.Wait();
        --idle_;
      }
      if (tasks_.empty()) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      mu_.Unlock();
      task();
      task = nullptr;  // the task's captures go before the lock is taken again
      mu_.Lock();
    }
  }

  Mutex mu_;
  CondVar work_{&mu_};
  std::deque<std::function<void()>> tasks_ FOC_GUARDED_BY(mu_);
  size_t idle_ FOC_GUARDED_BY(mu_) = 0;
  bool stop_ FOC_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ FOC_GUARDED_BY(mu_);
};

class CallbackServerTransport;

// What a handler sees of its call.
class CallContext final : public fl::ServerCallContext {
 public:
  CallContext(grpc::GenericCallbackServerContext* ctx, bool tls)
      : ctx_(ctx), peer_(ctx->peer()) {
    if (tls) {
      // As under Arrow's gRPC server: a verified client certificate's identity.
      auto auth = ctx->auth_context();
      if (auth && auth->IsPeerAuthenticated()) {
        auto ids = auth->GetPeerIdentity();
        if (!ids.empty()) identity_.assign(ids.front().data(), ids.front().size());
      }
    }
  }
  const std::string& peer_identity() const override { return identity_; }
  const std::string& peer() const override { return peer_; }
  /// Only before the first reply message (gRPC sends the headers with it).
  void AddHeader(const std::string& key, const std::string& value) const override {
    ctx_->AddInitialMetadata(key, value);
  }
  void AddTrailer(const std::string& key, const std::string& value) const override {
    ctx_->AddTrailingMetadata(key, value);
  }
  fl::ServerMiddleware* GetMiddleware(const std::string& key) const override {
    for (const auto& [k, m] : middleware_) {
      if (k == key) return m.get();
    }
    return nullptr;
  }
  bool is_cancelled() const override { return broken_.load() || ctx_->IsCancelled(); }
  /// Built on first use (only the auth middleware asks): gRPC keeps the strings for the
  /// call's lifetime. The middleware and the handler ask one after the other.
  const fl::CallHeaders& incoming_headers() const override {
    std::call_once(headers_once_, [this] {
      for (const auto& [key, value] : ctx_->client_metadata()) {
        headers_.emplace(std::string_view(key.data(), key.size()),
                         std::string_view(value.data(), value.size()));
      }
    });
    return headers_;
  }

  /// A malformed message ended the upload: handlers must treat what they read as cut off.
  void MarkBroken() { broken_ = true; }

  std::vector<std::pair<std::string, std::shared_ptr<fl::ServerMiddleware>>> middleware_;

 private:
  grpc::GenericCallbackServerContext* const ctx_;
  std::string peer_;
  std::string identity_;
  mutable std::once_flag headers_once_;
  mutable fl::CallHeaders headers_;
  std::atomic<bool> broken_{false};
};

// The reply of a unary-request call, one message at a time.
class ReplySource {
 public:
  virtual ~ReplySource() = default;
  /// The next message into `out`: true, or false at the end.
  virtual arrow::Result<bool> Next(grpc::ByteBuffer* out) = 0;
};

class MessagesSource final : public ReplySource {
 public:
  explicit MessagesSource(std::vector<std::string> messages)
      : messages_(std::move(messages)) {}
  arrow::Result<bool> Next(grpc::ByteBuffer* out) override {
    if (next_ == messages_.size()) return false;
    ToByteBuffer(messages_[next_++], out);
    return true;
  }

 private:
  std::vector<std::string> messages_;
  size_t next_ = 0;
};

// DoGet: the schema message, then every payload until one without a header.
class DataStreamSource final : public ReplySource {
 public:
  explicit DataStreamSource(std::unique_ptr<fl::FlightDataStream> stream)
      : stream_(std::move(stream)) {}
  arrow::Result<bool> Next(grpc::ByteBuffer* out) override {
    fl::FlightPayload payload;
    if (!schema_sent_) {
      schema_sent_ = true;
      ARROW_ASSIGN_OR_RAISE(payload, stream_->GetSchemaPayload());
    } else {
      ARROW_ASSIGN_OR_RAISE(payload, stream_->Next());
      if (payload.ipc_message.metadata == nullptr) {
        ARROW_RETURN_NOT_OK(stream_->Close());
        return false;
      }
    }
    ARROW_RETURN_NOT_OK(EncodeFlightData(payload, out));
    return true;
  }

 private:
  std::unique_ptr<fl::FlightDataStream> stream_;
  bool schema_sent_ = false;
};

// DoAction's results or ListFlights' listing: each item of `Stream` (whose Next() gives
// a unique_ptr, null at the end) serialised as one message. A null stream is empty.
template <typename Stream>
class SerializedSource final : public ReplySource {
 public:
  explicit SerializedSource(std::unique_ptr<Stream> stream)
      : stream_(std::move(stream)) {}
  arrow::Result<bool> Next(grpc::ByteBuffer* out) override {
    if (!stream_) return false;
    ARROW_ASSIGN_OR_RAISE(auto item, stream_->Next());
    if (!item) return false;
    ARROW_ASSIGN_OR_RAISE(std::string bytes, item->SerializeToString());
    ToByteBuffer(bytes, out);
    return true;
  }

 private:
  std::unique_ptr<Stream> stream_;
};

class CallbackServerTransport final : public fl::internal::ServerTransport {
 public:
  CallbackServerTransport(fl::FlightServerBase* base,
                          std::shared_ptr<arrow::MemoryManager> memory_manager, bool tls,
                          CallbackTransportOptions options);
  ~CallbackServerTransport() override;

  arrow::Status Init(const fl::FlightServerOptions& options,
                     const arrow::util::Uri& uri) override;
  arrow::Status Shutdown() override;
  arrow::Status Shutdown(const std::chrono::system_clock::time_point& deadline) override;
  arrow::Status Wait() override;
  fl::Location location() const override { return location_; }

  bool tls() const { return tls_; }
  const std::vector<std::pair<std::string, std::shared_ptr<fl::ServerMiddlewareFactory>>>&
  middleware() const {
    return middleware_;
  }
  WorkerPool& pool() { return pool_; }
  const CallbackTransportOptions& options() const { return options_; }

 private:
  class Service final : public grpc::CallbackGenericService {
   public:
    explicit Service(CallbackServerTransport* transport) : transport_(transport) {}
    grpc::ServerGenericBidiReactor* CreateReactor(
        grpc::GenericCallbackServerContext* ctx) override;

   private:
    CallbackServerTransport* const transport_;
  };

  const bool tls_;
  const CallbackTransportOptions options_;
  std::vector<std::pair<std::string, std::shared_ptr<fl::ServerMiddlewareFactory>>>
      middleware_;
  fl::Location location_;
  WorkerPool pool_;  // outlives server_: destroyed after it
  Service service_{this};
  std::unique_ptr<grpc::Server> server_;
};

// One call, from its first message to OnDone. Unary-request calls run in the reactions
// (each reaction follows the previous one, so their state needs no lock); DoPut and
// DoExchange share the state below between the reactions and the handler's thread.
class FlightCall final : public grpc::ServerGenericBidiReactor,
                         private fl::internal::ServerDataStream {
 public:
  FlightCall(CallbackServerTransport* transport, grpc::GenericCallbackServerContext* ctx,
             fl::FlightMethod method)
      : transport_(transport),
        ctx_(ctx),
        method_(method),
        context_(ctx, transport->tls()) {
    const arrow::Status started = StartMiddleware();
    if (!started.ok()) {
      FinishCall(started);
      return;
    }
    if (method_ == fl::FlightMethod::Handshake) {
      FinishHandshake();
      return;
    }
    {
      MutexLock lock(&mu_);
      reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (streaming()) {
      OnStreamReadDone(ok);
      return;
    }
    if (!ok) {
      FinishCall(arrow::Status::Invalid("the call ended before its request message"));
      return;
    }
    if (method_ == fl::FlightMethod::DoAction && !transport_->options().inline_writes) {
      // DELETE may wait on the disk.
      if (auto st = transport_->pool().Run([this] { Respond(); }); !st.ok())
        FinishCall(st);
      return;
    }
    Respond();
  }

  // Runs the handler of a unary-request call and starts its reply.
  void Respond() {
    const arrow::Status dispatched = Dispatch(ToString(request_));
    request_.Clear();
    if (!dispatched.ok()) {
      FinishCall(dispatched);
      return;
    }
    Advance();
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (streaming()) {
      OnStreamWriteDone(ok);
      return;
    }
    if (!ok) {
      // The client went away; as Arrow's server, the handler's part ended well.
      FinishCall(arrow::Status::OK());
      return;
    }
    WriteNext();
  }

  void OnCancel() override {
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
    }
    changed_.SignalAll();
  }

  void OnDone() override { delete this; }

 private:
  bool streaming() const {
    return method_ == fl::FlightMethod::DoPut || method_ == fl::FlightMethod::DoExchange;
  }

  arrow::Status StartMiddleware() {
    const fl::CallInfo info{method_};
    for (const auto& [key, factory] : transport_->middleware()) {
      std::shared_ptr<fl::ServerMiddleware> instance;
      ARROW_RETURN_NOT_OK(factory->StartCall(info, context_, &instance));
      if (instance) context_.middleware_.emplace_back(key, std::move(instance));
    }
    return arrow::Status::OK();
  }

  class HeaderAdder final : public fl::AddCallHeaders {
   public:
    explicit HeaderAdder(grpc::GenericCallbackServerContext* ctx) : ctx_(ctx) {}
    void AddHeader(const std::string& key, const std::string& value) override {
      ctx_->AddInitialMetadata(key, value);
    }

   private:
    grpc::GenericCallbackServerContext* ctx_;
  };

  // Middleware adds its headers before the first message (or the status) goes out. The
  // caller is the only one starting a write or the finish at that moment.
  void SendingHeaders() {
    if (headers_sent_.exchange(true)) return;
    HeaderAdder adder(ctx_);
    for (const auto& [key, instance] : context_.middleware_)
      instance->SendingHeaders(&adder);
  }

  void CompleteMiddleware(const arrow::Status& status) {
    for (const auto& [key, instance] : context_.middleware_)
      instance->CallCompleted(status);
  }

  // Ends the call with `status`. The last use of `this` by the caller: OnDone may run
  // (and delete the call) as soon as Finish is called.
  void FinishCall(const arrow::Status& status) {
    SendingHeaders();
    CompleteMiddleware(status);
    Finish(ToGrpcStatus(status, ctx_));
  }

  // Authentication is middleware here (flight/auth.h), so Handshake is refused as by
  // Arrow's server without an auth handler: the same status, message and trailers.
  void FinishHandshake() {
    static constexpr char kNoAuth[] =
        "This service does not have an authentication mechanism enabled.";
    SendingHeaders();
    CompleteMiddleware(arrow::Status::NotImplemented(kNoAuth));
    ctx_->AddTrailingMetadata(
        "x-arrow-status",
        std::to_string(static_cast<int>(arrow::StatusCode::NotImplemented)));
    ctx_->AddTrailingMetadata(
        "x-arrow-status-message-bin",
        std::string("Flight returned unimplemented error, with message: ") + kNoAuth);
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kNoAuth));
  }

  // ---- unary-request calls ----

  arrow::Status Dispatch(const std::string& request) {
    fl::FlightServerBase* base = transport_->base();
    switch (method_) {
      case fl::FlightMethod::DoGet: {
        ARROW_ASSIGN_OR_RAISE(fl::Ticket ticket, fl::Ticket::Deserialize(request));
        std::unique_ptr<fl::FlightDataStream> stream;
        ARROW_RETURN_NOT_OK(base->DoGet(context_, ticket, &stream));
        if (!stream) return arrow::Status::KeyError("No data in this flight");
        source_ = std::make_unique<DataStreamSource>(std::move(stream));
        return arrow::Status::OK();
      }
      case fl::FlightMethod::GetFlightInfo:
        return DescriptorCall<fl::FlightInfo>(request,
                                              &fl::FlightServerBase::GetFlightInfo);
      case fl::FlightMethod::PollFlightInfo:
        return DescriptorCall<fl::PollInfo>(request,
                                            &fl::FlightServerBase::PollFlightInfo);
      case fl::FlightMethod::GetSchema:
        return DescriptorCall<fl::SchemaResult>(request,
                                                &fl::FlightServerBase::GetSchema);
      case fl::FlightMethod::DoAction: {
        ARROW_ASSIGN_OR_RAISE(fl::Action action, fl::Action::Deserialize(request));
        std::unique_ptr<fl::ResultStream> results;
        ARROW_RETURN_NOT_OK(base->DoAction(context_, action, &results));
        source_ =
            std::make_unique<SerializedSource<fl::ResultStream>>(std::move(results));
        return arrow::Status::OK();
      }
      case fl::FlightMethod::ListActions: {
        std::vector<fl::ActionType> types;
        ARROW_RETURN_NOT_OK(base->ListActions(context_, &types));
        std::vector<std::string> messages;
        for (const auto& type : types) {
          ARROW_ASSIGN_OR_RAISE(std::string bytes, type.SerializeToString());
          messages.push_back(std::move(bytes));
        }
        source_ = std::make_unique<MessagesSource>(std::move(messages));
        return arrow::Status::OK();
      }
      case fl::FlightMethod::ListFlights: {
        ARROW_ASSIGN_OR_RAISE(fl::Criteria criteria, fl::Criteria::Deserialize(request));
        std::unique_ptr<fl::FlightListing> listing;
        ARROW_RETURN_NOT_OK(base->ListFlights(context_, &criteria, &listing));
        source_ =
            std::make_unique<SerializedSource<fl::FlightListing>>(std::move(listing));
        return arrow::Status::OK();
      }
      default:
        return arrow::Status::NotImplemented("method ", fl::ToString(method_));
    }
  }

  // A call whose request is a FlightDescriptor and whose reply is one message of type T.
  template <typename T>
  arrow::Status DescriptorCall(const std::string& request,
                               arrow::Status (fl::FlightServerBase::*handler)(
                                   const fl::ServerCallContext&,
                                   const fl::FlightDescriptor&, std::unique_ptr<T>*)) {
    ARROW_ASSIGN_OR_RAISE(auto descriptor, fl::FlightDescriptor::Deserialize(request));
    std::unique_ptr<T> reply;
    ARROW_RETURN_NOT_OK((transport_->base()->*handler)(context_, descriptor, &reply));
    if (!reply) return arrow::Status::KeyError("Flight not found");
    ARROW_ASSIGN_OR_RAISE(std::string bytes, reply->SerializeToString());
    return Single(std::move(bytes));
  }

  arrow::Status Single(std::string message) {
    std::vector<std::string> messages;
    messages.push_back(std::move(message));
    source_ = std::make_unique<MessagesSource>(std::move(messages));
    return arrow::Status::OK();
  }

  // One message ahead of the write in flight, so that the last one goes out with the
  // status (StartWriteAndFinish: one write, no extra round of reactions).
  void Advance() {
    ahead_.Clear();
    auto next = source_->Next(&ahead_);
    if (!next.ok()) {
      have_ahead_ = false;
      end_status_ = next.status();
    } else {
      have_ahead_ = *next;
    }
  }

  void WriteNext() {
    if (!have_ahead_) {
      FinishCall(end_status_);
      return;
    }
    writing_message_.Swap(&ahead_);  // grpc::ByteBuffer has no move assignment
    Advance();
    SendingHeaders();
    if (!have_ahead_ && end_status_.ok()) {
      CompleteMiddleware(arrow::Status::OK());
      StartWriteAndFinish(&writing_message_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    StartWrite(&writing_message_);
  }

  // ---- DoPut and DoExchange ----

  void OnStreamReadDone(bool ok) {
    if (ok && transport_->options().on_message)
      transport_->options().on_message(context_);
    bool read_more = false;
    bool run_inline = false;
    bool start_worker = false;
    {
      MutexLock lock(&mu_);
      reading_ = false;
      if (finish_called_) return;  // the handler already ended the call
      if (ok) {
        fl::internal::FlightData data;
        arrow::Status decoded = DecodeFlightData(request_, &data);
        if (decoded.ok()) {
          inbox_bytes_ += Size(data);
          inbox_.push_back(std::move(data));
        } else {
          decode_status_ = std::move(decoded);
          context_.MarkBroken();
          read_closed_ = true;
        }
      } else {
        read_closed_ = true;
      }
      request_.Clear();
      // A small upload is buffered whole and handed over once (inline or to one worker):
      // its handler then never waits for a message, which spares a hand-off per message.
      // gRPC may run OnCancel before the OnReadDone of a message that had already arrived
      // (reactions run concurrently): then no read follows (ShouldRead), so the handler
      // starts here, or the call would never reach Finish.
      if (!handler_started_) {
        if (read_closed_ || cancelled_) {
          handler_started_ = true;
          // A WATCH never runs inline, even cut off: its handler may wait.
          (transport_->options().inline_writes && method_ == fl::FlightMethod::DoPut
               ? run_inline
               : start_worker) = true;
        } else if (method_ == fl::FlightMethod::DoExchange ||
                   inbox_bytes_ > kInlineUploadBytes) {
          handler_started_ = start_worker = true;
        }
      }
      read_more = ShouldRead();
      if (read_more) reading_ = starting_read_ = true;
    }
    changed_.SignalAll();
    if (read_more) {
      // A worker's handler may end meanwhile: its Finish waits until this read is issued
      // (a read started after Finish is a misuse of the call).
      StartRead(&request_);
      arrow::Status final_status;
      bool finish = false;
      {
        MutexLock lock(&mu_);
        starting_read_ = false;
        finish = TakeFinish(&final_status);
      }
      if (finish) {
        FinishCall(final_status);  // the last use of `this`
        return;
      }
    }
    if (start_worker) {
      if (auto st = transport_->pool().Run([this] { RunHandler(); }); !st.ok()) {
        HandlerEnded(st);
        return;
      }
    }
    if (run_inline) RunHandler();
  }

  // Back-pressure: reads continue while less than kReadAheadBytes wait for the handler.
  bool ShouldRead() const FOC_REQUIRES(mu_) {
    return !reading_ && !read_closed_ && !finish_called_ && !cancelled_ &&
           inbox_bytes_ < kReadAheadBytes;
  }

  // What a buffered message holds: its bytes, and what each costs beside them (the
  // FlightData in the inbox, per field a Buffer, its shared_ptr block and a 64-byte
  // aligned allocation; ~300 bytes for a one-byte field), so that a flood of tiny or
  // empty messages is bounded by the same budgets as large ones.
  static constexpr int64_t kMessageOverheadBytes = 64;
  static constexpr int64_t kFieldOverheadBytes = 256;
  static int64_t Size(const fl::internal::FlightData& data) {
    int64_t n = kMessageOverheadBytes;
    for (const auto* b : {&data.metadata, &data.app_metadata, &data.body}) {
      if (*b) n += (*b)->size() + kFieldOverheadBytes;
    }
    return n;
  }

  void RunHandler() {
    HandlerEnded(method_ == fl::FlightMethod::DoPut
                     ? transport_->DoPut(context_, this)
                     : transport_->DoExchange(context_, this));
  }

  // The handler returned `status` (or could not be started); finishes the call once its
  // messages are written. The last use of `this` by the caller.
  void HandlerEnded(const arrow::Status& status) {
    arrow::Status final_status;
    {
      MutexLock lock(&mu_);
      handler_done_ = true;
      handler_status_ = status;
      if (!TakeFinish(&final_status)) return;
    }
    FinishCall(final_status);  // the last use of `this`
  }

  // True once (then the caller finishes with *status): the handler is done and its
  // messages are written (or cannot be).
  bool TakeFinish(arrow::Status* status) FOC_REQUIRES(mu_) {
    if (finish_called_ || !handler_done_ || writing_ || starting_read_) return false;
    if (!outbox_.empty() && !write_failed_) return false;
    finish_called_ = true;
    *status = decode_status_.ok() ? handler_status_ : decode_status_;
    return true;
  }

  void OnStreamWriteDone(bool ok) {
    bool write_more = false;
    bool finish = false;
    arrow::Status final_status;
    {
      MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        write_failed_ = true;
        outbox_.clear();
      } else if (!outbox_.empty()) {
        writing_message_.Swap(&outbox_.front());
        outbox_.pop_front();
        write_more = writing_ = true;
      }
      finish = TakeFinish(&final_status);
    }
    changed_.SignalAll();
    if (write_more) StartWrite(&writing_message_);
    if (finish) FinishCall(final_status);
  }

  // ServerDataStream, called by Arrow's DoPut/DoExchange on the handler's thread.
  bool ReadData(fl::internal::FlightData* data) override {
    bool got = false;
    bool read_more = false;
    {
      MutexLock lock(&mu_);
      while (inbox_.empty() && !read_closed_ && !cancelled_) changed_.Wait();
      if (!inbox_.empty()) {
        *data = std::move(inbox_.front());
        inbox_bytes_ -= Size(*data);
        inbox_.pop_front();
        got = true;
      }
      read_more = ShouldRead();
      if (read_more) reading_ = true;
    }
    if (read_more) StartRead(&request_);
    return got;
  }

  arrow::Result<bool> WriteData(const fl::FlightPayload& payload) override {
    grpc::ByteBuffer message;
    ARROW_RETURN_NOT_OK(EncodeFlightData(payload, &message));
    return Enqueue(&message);
  }

  arrow::Status WritePutMetadata(const arrow::Buffer& payload) override {
    grpc::ByteBuffer message = EncodeBytesField1(payload.ToString());
    (void)Enqueue(&message);
    return arrow::Status::OK();
  }

  arrow::Status WritesDone() override { return arrow::Status::OK(); }

  // Takes `message` (swapped out).
  bool Enqueue(grpc::ByteBuffer* message) {
    bool start = false;
    {
      MutexLock lock(&mu_);
      while (outbox_.size() >= kMaxQueuedWrites && !write_failed_ && !cancelled_) {
        changed_.Wait();
      }
      if (write_failed_ || cancelled_) return false;
      if (writing_) {
        outbox_.emplace_back().Swap(message);
      } else {
        writing_message_.Swap(message);
        start = writing_ = true;
      }
    }
    if (start) {
      SendingHeaders();
      StartWrite(&writing_message_);
    }
    return true;
  }

  CallbackServerTransport* const transport_;
  grpc::GenericCallbackServerContext* const ctx_;
  const fl::FlightMethod method_;
  CallContext context_;
  std::atomic<bool> headers_sent_{false};
  grpc::ByteBuffer request_;  // the message being read
  // Written by one reaction or handler thread at a time (see writing_).
  grpc::ByteBuffer writing_message_;

  // Unary-request calls.
  std::unique_ptr<ReplySource> source_;
  grpc::ByteBuffer ahead_;
  bool have_ahead_ = false;
  arrow::Status end_status_;

  // DoPut and DoExchange.
  Mutex mu_;
  CondVar changed_{&mu_};
  std::deque<fl::internal::FlightData> inbox_ FOC_GUARDED_BY(mu_);
  int64_t inbox_bytes_ FOC_GUARDED_BY(mu_) = 0;
  bool reading_ FOC_GUARDED_BY(mu_) = false;        ///< a read is outstanding
  bool starting_read_ FOC_GUARDED_BY(mu_) = false;  ///< a reaction is issuing that read
  bool read_closed_ FOC_GUARDED_BY(mu_) = false;    ///< no more messages will come
  bool cancelled_ FOC_GUARDED_BY(mu_) = false;
  arrow::Status decode_status_ FOC_GUARDED_BY(mu_);
  bool handler_started_ FOC_GUARDED_BY(mu_) = false;
  bool handler_done_ FOC_GUARDED_BY(mu_) = false;
  arrow::Status handler_status_ FOC_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> outbox_ FOC_GUARDED_BY(mu_);
  bool writing_ FOC_GUARDED_BY(mu_) = false;  ///< a write is outstanding
  bool write_failed_ FOC_GUARDED_BY(mu_) = false;
  bool finish_called_ FOC_GUARDED_BY(mu_) = false;
};

grpc::ServerGenericBidiReactor* CallbackServerTransport::Service::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  const auto method = MethodOf(ctx->method());
  if (!method) return grpc::CallbackGenericService::CreateReactor(ctx);  // UNIMPLEMENTED
  return new FlightCall(transport_, ctx, *method);
}

CallbackServerTransport::CallbackServerTransport(
    fl::FlightServerBase* base, std::shared_ptr<arrow::MemoryManager> memory_manager,
    bool tls, CallbackTransportOptions options)
    : ServerTransport(base, std::move(memory_manager)),
      tls_(tls),
      options_(std::move(options)) {}

CallbackServerTransport::~CallbackServerTransport() {
  if (server_) {
    server_->Shutdown();
    server_->Wait();
  }
}

// `host:port` as gRPC and URIs want it (an IPv6 literal bracketed).
std::string HostPort(const std::string& host, int port) {
  return UriHost(host) + ":" + std::to_string(port);
}

arrow::Status CallbackServerTransport::Init(const fl::FlightServerOptions& options,
                                            const arrow::util::Uri& uri) {
  if (options.auth_handler &&
      dynamic_cast<fl::NoOpAuthHandler*>(options.auth_handler.get()) == nullptr) {
    return arrow::Status::NotImplemented(
        "the callback transport has no Handshake authentication; use middleware");
  }
  middleware_ = options.middleware;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (tls_) {
    grpc::SslServerCredentialsOptions ssl;
    for (const auto& pair : options.tls_certificates) {
      ssl.pem_key_cert_pairs.push_back({pair.pem_key, pair.pem_cert});
    }
    if (options.verify_client) {
      ssl.client_certificate_request =
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      ssl.pem_root_certs = options.root_certificates;
    }
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  const std::string host = uri.host();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(HostPort(host, uri.port()), credentials, &bound_port);
  // Uploads are limited by the service (upload_limits.h), not by gRPC's 4 MiB default;
  // as Arrow's server.
  builder.SetMaxReceiveMessageSize(INT_MAX);
  builder.SetMaxSendMessageSize(INT_MAX);
  // A port in use is an error, not a second server sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterCallbackGenericService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || bound_port == 0) {
    server_.reset();
    return arrow::Status::IOError("cannot listen on ", HostPort(host, uri.port()));
  }
  const std::string uri_host = UriHost(host);
  ARROW_ASSIGN_OR_RAISE(location_, tls_ ? fl::Location::ForGrpcTls(uri_host, bound_port)
                                        : fl::Location::ForGrpcTcp(uri_host, bound_port));
  return arrow::Status::OK();
}

arrow::Status CallbackServerTransport::Shutdown() {
  if (server_) server_->Shutdown();
  return arrow::Status::OK();
}

arrow::Status CallbackServerTransport::Shutdown(
    const std::chrono::system_clock::time_point& deadline) {
  if (server_) server_->Shutdown(deadline);
  return arrow::Status::OK();
}

arrow::Status CallbackServerTransport::Wait() {
  if (server_) server_->Wait();
  return arrow::Status::OK();
}

}  // namespace

arrow::Status RegisterCallbackTransport(CallbackTransportOptions options) {
  static const arrow::Status registered = [&options] {
    // Debian's abseil tracks the lock order of every absl::Mutex (gRPC's) in a graph to
    // report deadlock cycles: ~15% of a small call's instructions under callgrind
    // (docs/benchmarks.md). Release builds of abseil leave it off; so do we.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    auto* registry = fl::internal::GetDefaultTransportRegistry();
    for (const bool tls : {false, true}) {
      ARROW_RETURN_NOT_OK(registry->RegisterServer(
          tls ? kTlsScheme : kScheme,
          [tls, options](fl::FlightServerBase* base,
                         std::shared_ptr<arrow::MemoryManager> memory)
              -> arrow::Result<std::unique_ptr<fl::internal::ServerTransport>> {
            return std::make_unique<CallbackServerTransport>(base, std::move(memory), tls,
                                                             options);
          }));
    }
    return arrow::Status::OK();
  }();
  return registered;
}

arrow::Result<fl::Location> CallbackLocation(const std::string& host, int port,
                                             bool tls) {
  return fl::Location::Parse(std::string(tls ? kTlsScheme : kScheme) + "://" +
                             HostPort(host, port));
}

}  // namespace foc::transport
