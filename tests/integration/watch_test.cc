// WATCH on the wire: a real in-process Flight server on port 0 and the Arrow Flight C++
// client speaking the DoExchange protocol of docs/protocol.md with the shared encoders.
#include <arrow/flight/client.h>

#include "protocol/watch_protocol.h"
#include "testing/gtest_util.h"
#include "testing/test_server.h"

namespace foc {
namespace {
namespace fl = arrow::flight;

std::shared_ptr<arrow::Buffer> Bytes(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

ObjectKey Key(const std::string& k) { return ObjectKey::Parse(k).ValueOrDie(); }

// One open WATCH call.
struct Watch {
  std::unique_ptr<fl::FlightStreamWriter> writer;
  std::unique_ptr<fl::FlightStreamReader> reader;

  // The next message; an end of stream is Invalid, an error status is returned as is.
  arrow::Result<WatchMessage> Next() {
    ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
    if (!chunk.app_metadata) return arrow::Status::Invalid("stream ended");
    return DecodeWatchMessage(chunk.app_metadata->ToString());
  }
  // The next message that is not a heartbeat.
  arrow::Result<WatchMessage> NextEvent() {
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto m, Next());
      if (m.type != kWatchHeartbeat) return m;
    }
  }
  void Close() {
    reader->Cancel();
    (void)writer->Close();
  }
};

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override { Stop(); }

  void Start() {
    ASSERT_OK(server_.Start());
    client_ = Connect();
  }
  void Stop() {
    if (client_) (void)client_->Close();
    client_.reset();
    ASSERT_OK(server_.Stop());
  }
  std::unique_ptr<fl::FlightClient> Connect() {
    auto location = fl::Location::ForGrpcTcp("127.0.0.1", server_.port()).ValueOrDie();
    return fl::FlightClient::Connect(location).ValueOrDie();
  }

  arrow::Result<Watch> Open(const WatchRequest& request,
                            fl::FlightClient* client = nullptr) {
    ARROW_ASSIGN_OR_RAISE(auto cmd, EncodeWatchCommand(request));
    ARROW_ASSIGN_OR_RAISE(auto result,
                          (client ? client : client_.get())
                              ->DoExchange(fl::FlightDescriptor::Command(cmd)));
    return Watch{std::move(result.writer), std::move(result.reader)};
  }
  // Opens and reads up to `ready`; returns the snapshot messages before it.
  arrow::Result<Watch> OpenReady(const WatchRequest& request,
                                 std::vector<WatchMessage>* snapshot = nullptr,
                                 fl::FlightClient* client = nullptr) {
    ARROW_ASSIGN_OR_RAISE(auto watch, Open(request, client));
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto m, watch.NextEvent());
      if (m.type == kWatchReady) {
        if (m.epoch != server_.store->epoch()) return arrow::Status::Invalid("epoch");
        return watch;
      }
      if (snapshot) snapshot->push_back(m);
    }
  }

  static WatchRequest Request(std::vector<std::string> patterns,
                              std::vector<std::pair<std::string, uint64_t>> since = {},
                              bool snapshot = true) {
    WatchRequest r;
    r.patterns = std::move(patterns);
    r.since = std::move(since);
    r.snapshot = snapshot;
    return r;
  }

  testing::TestServer server_;
  std::unique_ptr<fl::FlightClient> client_;
};

TEST_F(WatchTest, SeesEveryVersionOfAKeyPatchedAThousandTimesAndItsDelete) {
  ObjectStore& store = *server_.store;
  ASSERT_OK(store.Put(PutTarget{"app", "s", "o"}, {Bytes("base"), {}}).status());
  ASSERT_OK_AND_ASSIGN(auto watch, OpenReady(Request({"app/s/o"}, {{"app/s/o", 1}})));
  for (int i = 0; i < 1000; ++i) ASSERT_OK(store.Patch(Key("app/s/o"), Bytes("d")));
  for (uint64_t v = 2; v <= 1001; ++v) {
    ASSERT_OK_AND_ASSIGN(auto m, watch.NextEvent());
    EXPECT_EQ(m.type, kWatchChange);
    EXPECT_EQ(m.key, "app/s/o");
    EXPECT_EQ(m.version, v);
    EXPECT_EQ(m.kind, kWatchKindPatch);
    EXPECT_EQ(m.epoch, store.epoch());
  }
  ASSERT_OK(store.Delete(KeyPattern::Parse("app/s").ValueOrDie()).status());
  ASSERT_OK_AND_ASSIGN(auto m, watch.NextEvent());
  EXPECT_EQ(m, (WatchMessage{"change", "app/s/o", 1001, "delete", store.epoch(), ""}));
  // Re-created: versions continue above the deleted ones.
  ASSERT_OK(store.Put(PutTarget{"app", "s", "o"}, {Bytes("again"), {}}).status());
  ASSERT_OK_AND_ASSIGN(m, watch.NextEvent());
  EXPECT_EQ(m.version, 1002u);
  EXPECT_EQ(m.kind, kWatchKindPut);
  watch.Close();
}

TEST_F(WatchTest, SnapshotReportsWhatChangedSinceTheClientsVersions) {
  ObjectStore& store = *server_.store;
  ASSERT_OK(store.Put(PutTarget{"app", "s", "x"}, {Bytes("x"), {}}).status());
  ASSERT_OK(store.Put(PutTarget{"app", "s", "y"}, {Bytes("y"), {}}).status());
  ASSERT_OK(store.Patch(Key("app/s/y"), Bytes("+")).status());
  ASSERT_OK(store.Put(PutTarget{"app", "t", "z"}, {Bytes("z"), {}}).status());
  std::vector<WatchMessage> snap;
  // x unchanged, y newer, gone deleted; app/t/z is outside the pattern.
  ASSERT_OK_AND_ASSIGN(
      auto watch,
      OpenReady(Request({"app/s"}, {{"app/s/x", 1}, {"app/s/y", 1}, {"app/s/gone", 3}}),
                &snap));
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0],
            (WatchMessage{"change", "app/s/y", 2, "current", store.epoch(), ""}));
  EXPECT_EQ(snap[1],
            (WatchMessage{"change", "app/s/gone", 3, "delete", store.epoch(), ""}));
  watch.Close();

  // snapshot=true reports every matching key the client did not name.
  snap.clear();
  ASSERT_OK_AND_ASSIGN(watch, OpenReady(Request({"app/*"}, {{"app/s/y", 2}}), &snap));
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].key, "app/s/x");
  EXPECT_EQ(snap[1].key, "app/t/z");
  watch.Close();

  // snapshot=false: only the named keys.
  snap.clear();
  ASSERT_OK_AND_ASSIGN(watch,
                       OpenReady(Request({"app/*"}, {{"app/s/y", 1}}, false), &snap));
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].key, "app/s/y");
  watch.Close();
}

TEST_F(WatchTest, ResumeAfterReconnectMissesNothing) {
  ObjectStore& store = *server_.store;
  ASSERT_OK(store.Put(PutTarget{"app", "s", "o"}, {Bytes("v1"), {}}).status());
  ASSERT_OK_AND_ASSIGN(auto watch, OpenReady(Request({"app/s"}, {{"app/s/o", 1}})));
  ASSERT_OK(store.Patch(Key("app/s/o"), Bytes("+")).status());
  ASSERT_OK_AND_ASSIGN(auto m, watch.NextEvent());
  EXPECT_EQ(m.version, 2u);
  watch.Close();
  client_.reset();
  // While disconnected: o patched twice, p created.
  ASSERT_OK(store.Patch(Key("app/s/o"), Bytes("+")).status());
  ASSERT_OK(store.Patch(Key("app/s/o"), Bytes("+")).status());
  ASSERT_OK(store.Put(PutTarget{"app", "s", "p"}, {Bytes("p"), {}}).status());
  client_ = Connect();
  std::vector<WatchMessage> snap;
  ASSERT_OK_AND_ASSIGN(watch, OpenReady(Request({"app/s"}, {{"app/s/o", 2}}), &snap));
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0],
            (WatchMessage{"change", "app/s/o", 4, "current", store.epoch(), ""}));
  EXPECT_EQ(snap[1],
            (WatchMessage{"change", "app/s/p", 1, "current", store.epoch(), ""}));
  ASSERT_OK(store.Patch(Key("app/s/o"), Bytes("+")).status());
  ASSERT_OK_AND_ASSIGN(m, watch.NextEvent());
  EXPECT_EQ(m.version, 5u);
  watch.Close();
}

TEST_F(WatchTest, SlowSubscriberIsDroppedWithResyncAndOthersContinue) {
  ObjectStore& store = *server_.store;
  WatchRequest slow_request = Request({"app/*"});
  slow_request.max_queue = 4;
  ASSERT_OK_AND_ASSIGN(auto slow, OpenReady(slow_request));
  auto other_client = Connect();
  ASSERT_OK_AND_ASSIGN(auto fast,
                       OpenReady(Request({"app/s/o"}), nullptr, other_client.get()));
  // The slow subscriber reads nothing: once gRPC's buffers are full its queue overflows.
  uint64_t puts = 0;
  while (store.changes().stats().dropped == 0) {
    ASSERT_LT(puts, 10'000'000u) << "the slow subscriber was never dropped";
    ASSERT_OK(store
                  .Put(PutTarget{"app", "t", "k" + std::to_string(puts % 100)},
                       {Bytes("x"), {}})
                  .status());
    ++puts;
  }
  ASSERT_OK(store.Put(PutTarget{"app", "s", "o"}, {Bytes("o"), {}}).status());
  ASSERT_OK_AND_ASSIGN(auto m, fast.NextEvent());
  EXPECT_EQ(m.key, "app/s/o");
  // The slow one gets what was sent before the drop, then resync, then the error.
  int64_t changes = 0;
  arrow::Result<WatchMessage> next;
  while ((next = slow.NextEvent()).ok() && next->type == kWatchChange) ++changes;
  EXPECT_LT(changes, static_cast<int64_t>(puts));
  ASSERT_OK(next.status());
  EXPECT_EQ(next->type, kWatchResync);
  EXPECT_NE(next->reason.find("fell behind"), std::string::npos);
  auto end = slow.NextEvent().status();
  ASSERT_FALSE(end.ok());
  EXPECT_NE(end.message().find("RESOURCE_EXHAUSTED"), std::string::npos) << end;
  auto detail = fl::FlightStatusDetail::UnwrapStatus(end);
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->code(), fl::FlightStatusCode::Unavailable);
  slow.Close();
  fast.Close();
}

TEST_F(WatchTest, RefusesBadRequestsAndEnforcesPerConnectionLimits) {
  ASSERT_OK(server_.Stop());
  server_.watch_limits.max_calls_per_connection = 2;
  server_.watch_limits.max_patterns = 2;
  Start();
  auto expect_invalid = [&](const WatchRequest& r, const std::string& text) {
    ASSERT_OK_AND_ASSIGN(auto watch, Open(r));
    auto st = watch.Next().status();
    EXPECT_TRUE(st.IsInvalid()) << st;
    EXPECT_NE(st.message().find(text), std::string::npos) << st;
    watch.Close();
  };
  expect_invalid(Request({"app/*", "b/*", "c/*"}), "at most 2");
  expect_invalid(Request({"app/.."}), "Invalid");
  expect_invalid(Request({"app/s"}, {{"other/s/o", 1}}), "matches none of the patterns");
  WatchRequest fast_heartbeat = Request({"app/*"});
  fast_heartbeat.heartbeat_ms = 1;
  expect_invalid(fast_heartbeat, "heartbeat_ms");
  {
    ASSERT_OK_AND_ASSIGN(auto bad,
                         client_->DoExchange(fl::FlightDescriptor::Path({"x"})));
    auto st = bad.reader->Next().status();
    EXPECT_TRUE(st.IsNotImplemented()) << st;
    bad.reader->Cancel();
    (void)bad.writer->Close();
  }

  ASSERT_OK_AND_ASSIGN(auto w1, OpenReady(Request({"app/*"})));
  ASSERT_OK_AND_ASSIGN(auto w2, OpenReady(Request({"app/*"})));
  ASSERT_OK_AND_ASSIGN(auto w3, Open(Request({"app/*"})));
  auto st = w3.Next().status();
  EXPECT_NE(st.message().find("too many WATCH subscriptions on this connection"),
            std::string::npos)
      << st;
  w3.Close();
  // Another connection has its own allowance.
  auto other = Connect();
  ASSERT_OK_AND_ASSIGN(auto w4, OpenReady(Request({"app/*"}), nullptr, other.get()));
  w4.Close();
  w1.Close();
  w2.Close();
}

TEST_F(WatchTest, HeartbeatsWhileIdleAndUnavailableOnShutdown) {
  WatchRequest r = Request({"app/*"});
  r.heartbeat_ms = 50;
  ASSERT_OK_AND_ASSIGN(auto watch, OpenReady(r));
  ASSERT_OK_AND_ASSIGN(auto m, watch.Next());
  EXPECT_EQ(m.type, kWatchHeartbeat);
  server_.service->StopWatches();
  arrow::Result<WatchMessage> next;
  while ((next = watch.Next()).ok()) {
  }
  EXPECT_NE(next.status().message().find("shutting down"), std::string::npos)
      << next.status();
  auto detail = fl::FlightStatusDetail::UnwrapStatus(next.status());
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->code(), fl::FlightStatusCode::Unavailable);
  watch.Close();
}

}  // namespace
}  // namespace foc
