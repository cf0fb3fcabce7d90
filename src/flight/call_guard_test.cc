#include "flight/call_guard.h"

#include <future>
#include <thread>

#include <arrow/flight/client.h>
#include <arrow/flight/server.h>
#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

namespace fl = arrow::flight;

// ListActions blocks until released: a call that holds its thread.
class BlockingServer : public fl::FlightServerBase {
 public:
  std::promise<void> entered;
  std::shared_future<void> release;
  arrow::Status ListActions(const fl::ServerCallContext&,
                            std::vector<fl::ActionType>* actions) override {
    entered.set_value();
    release.wait();
    *actions = {};
    return arrow::Status::OK();
  }
};

TEST(CallGuardTest, NormalisesPeers) {
  EXPECT_EQ(CallGuardFactory::NormalisePeer("ipv6:%5B::1%5D:5"), "ipv6:[::1]:5");
  EXPECT_EQ(CallGuardFactory::NormalisePeer("ipv4:127.0.0.1:80"), "ipv4:127.0.0.1:80");
}

TEST(CallGuardTest, RefusesCallsBeyondTheLimit) {
  auto guard = std::make_shared<CallGuardFactory>(CallGuardOptions{1, 1});
  ASSERT_OK_AND_ASSIGN(auto location, fl::Location::ForGrpcTcp("127.0.0.1", 0));
  fl::FlightServerOptions options(location);
  options.middleware.emplace_back(CallGuardFactory::kKey, guard);
  BlockingServer server;
  std::promise<void> release;
  server.release = release.get_future().share();
  ASSERT_OK(server.Init(options));
  ASSERT_OK_AND_ASSIGN(auto dial, fl::Location::ForGrpcTcp("127.0.0.1", server.port()));
  ASSERT_OK_AND_ASSIGN(auto first, fl::FlightClient::Connect(dial));
  ASSERT_OK_AND_ASSIGN(auto second, fl::FlightClient::Connect(dial));
  auto held = std::async(std::launch::async, [&] { return first->ListActions(); });
  server.entered.get_future().wait();
  EXPECT_EQ(guard->calls_in_flight(), 1);
  auto snapshot = guard->Snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot.begin()->second.active_calls, 1);
  EXPECT_EQ(snapshot.begin()->first.rfind("ipv4:127.0.0.1:", 0), 0u)
      << snapshot.begin()->first;
  auto refused = second->ListActions();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("RESOURCE_EXHAUSTED"), std::string::npos)
      << refused.status().ToString();
  release.set_value();
  ASSERT_OK(held.get().status());
  EXPECT_EQ(guard->refused(), 1);
  EXPECT_EQ(guard->calls_in_flight(), 0);
  ASSERT_OK(first->Close());
  ASSERT_OK(second->Close());
  ASSERT_OK(server.Shutdown());
}

}  // namespace
}  // namespace foc
