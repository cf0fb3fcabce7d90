#include "protocol/routing.h"

#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace foc {
namespace {

nlohmann::json Vectors() {
  std::ifstream in(std::string(FOC_RULES_DIR) + "/rendezvous.json");
  EXPECT_TRUE(in.good()) << "cannot read " << FOC_RULES_DIR << "/rendezvous.json";
  return nlohmann::json::parse(in);
}

TEST(RoutingTest, SharedVectorsScores) {
  auto v = Vectors();
  ASSERT_FALSE(v["scores"].empty());
  for (const auto& c : v["scores"]) {
    const std::string member = c["member"], key = c["key"], score = c["score"];
    EXPECT_EQ(std::to_string(RendezvousScore(member, key)), score)
        << "member '" << member << "' key '" << key << "'";
  }
}

TEST(RoutingTest, SharedVectorsRoutingKeysAndOrders) {
  auto v = Vectors();
  for (const auto& c : v["routing_keys"]) {
    EXPECT_EQ(RoutingKey(c["key"].get<std::string>()), c["routed"].get<std::string>());
  }
  ASSERT_FALSE(v["orders"].empty());
  for (const auto& c : v["orders"]) {
    auto order = RendezvousOrder(c["key"].get<std::string>(),
                                 c["members"].get<std::vector<std::string>>());
    EXPECT_EQ(order, c["order"].get<std::vector<std::string>>()) << c["key"];
  }
}

TEST(RoutingTest, ObjectsOfOneSessionShareAnOwner) {
  std::vector<std::string> members = {"a", "b", "c", "d", "e"};
  auto owner = RendezvousOrder("rl/s1", members).front();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(RendezvousOrder("rl/s1/o" + std::to_string(i), members).front(), owner);
  }
}

TEST(RoutingTest, SpreadsSessionsAndMovesOnlyWhatItMust) {
  const std::vector<std::string> three = {"grpc://h1:9090", "grpc://h2:9090",
                                          "grpc://h3:9090"};
  const std::vector<std::string> two = {"grpc://h1:9090", "grpc://h3:9090"};
  std::map<std::string, int> count;
  int moved = 0;
  constexpr int kSessions = 6000;
  for (int i = 0; i < kSessions; ++i) {
    const std::string key = "app/s" + std::to_string(i) + "/obj";
    const std::string before = RendezvousOrder(key, three).front();
    ++count[before];
    const std::string after = RendezvousOrder(key, two).front();
    if (before != "grpc://h2:9090") {
      EXPECT_EQ(after, before) << key << " moved although its owner stayed";
    } else {
      ++moved;
    }
  }
  for (const auto& [member, n] : count) {
    EXPECT_GT(n, kSessions / 4) << member;  // a fair share is 1/3
    EXPECT_LT(n, kSessions * 5 / 12) << member;
  }
  EXPECT_EQ(moved, count["grpc://h2:9090"]);
}

TEST(RoutingTest, EmptyMemberListGivesEmptyOrder) {
  EXPECT_TRUE(RendezvousOrder("a/b/c", {}).empty());
}

}  // namespace
}  // namespace foc
