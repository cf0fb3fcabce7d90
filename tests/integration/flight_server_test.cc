// Starts the Flight service in-process on port 0 and calls it with the Arrow Flight C++
// client.
#include <iterator>
#include <thread>

#include <arrow/flight/client.h>

#include "protocol/protocol.h"
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
  ASSERT_EQ(actions.size(), std::size(kListedActions));
  for (size_t i = 0; i < actions.size(); ++i) {
    EXPECT_EQ(actions[i].type, kListedActions[i].type);
    EXPECT_EQ(actions[i].description, kListedActions[i].description);
  }
  // Upstream's only action comes first (flamepy relies on it); ours follow
  // (docs/protocol.md).
  EXPECT_EQ(actions[0].type, "DELETE");
  EXPECT_EQ(actions[0].description, "Delete objects by key prefix");

  // A single server's MEMBERS is itself.
  ASSERT_OK_AND_ASSIGN(auto stream, client->DoAction({"MEMBERS", nullptr}));
  std::vector<std::string> members;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto r, stream->Next());
    if (!r) break;
    members.push_back(r->body->ToString());
  }
  EXPECT_EQ(members, std::vector<std::string>{"grpc://127.0.0.1:" +
                                              std::to_string(server.port())});
  ASSERT_OK(stream->Drain());
  ASSERT_OK(client->Close());
  ASSERT_OK(server.Stop());
}

}  // namespace
}  // namespace foc
