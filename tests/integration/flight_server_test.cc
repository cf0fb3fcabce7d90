// Starts the Flight service in-process on port 0 and calls it with the Arrow Flight C++
// client.
#include <thread>

#include <arrow/flight/client.h>

#include "testing/gtest_util.h"
#include "testing/test_server.h"

namespace foc {
namespace {

TEST(FlightServerTest, ListActionsOverRealGrpc) {
  testing::TestServer server;
  ASSERT_OK(server.Start());
  ASSERT_GT(server.port(), 0);

  ASSERT_OK_AND_ASSIGN(auto client_location,
                       arrow::flight::Location::ForGrpcTcp("127.0.0.1", server.port()));
  ASSERT_OK_AND_ASSIGN(auto client,
                       arrow::flight::FlightClient::Connect(client_location));
  ASSERT_OK_AND_ASSIGN(auto actions, client->ListActions());
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].type, "DELETE");
  EXPECT_EQ(actions[0].description, "Delete objects by key prefix");
  ASSERT_OK(client->Close());
  ASSERT_OK(server.Stop());
}

}  // namespace
}  // namespace foc
