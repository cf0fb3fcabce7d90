// Membership against a real etcd (Debian's etcd-server) on loopback.
#include "cluster/membership.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "testing/etcd_server.h"
#include "testing/gtest_util.h"

namespace foc::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls `pred` for up to `limit`; the condition is what is asserted, the bound only keeps
// a broken build from hanging.
template <typename Pred>
bool Eventually(Pred pred, milliseconds limit = milliseconds(15000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    ASSERT_OK_AND_ASSIGN(client_, EtcdClient::Make({{etcd_.endpoint()}}));
  }
  MembershipOptions Options(const std::string& id) {
    MembershipOptions o;
    o.prefix = "/test";
    o.id = id;
    o.endpoint = "grpc://127.0.0.1:" + std::to_string(9000 + id.size());
    o.ttl = seconds(2);
    o.renew_interval = milliseconds(300);
    return o;
  }
  foc::testing::EtcdServer etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(MembershipTest, RefusesBadOptions) {
  EXPECT_STATUS(Invalid, "must be non-empty",
                Membership::Join(client_.get(), Options("")));
  EXPECT_STATUS(Invalid, "no '/'", Membership::Join(client_.get(), Options("a/b")));
  auto o = Options("a");
  o.ttl = seconds(1);
  EXPECT_STATUS(Invalid, "at least 2 s", Membership::Join(client_.get(), o));
}

TEST_F(MembershipTest, MembersSeeEachOtherJoinAndLeave) {
  ASSERT_OK_AND_ASSIGN(auto a, Membership::Join(client_.get(), Options("a")));
  EXPECT_EQ(a->members().size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto b, Membership::Join(client_.get(), Options("bb")));
  EXPECT_EQ(b->members().size(), 2u);  // the range read at join sees a
  ASSERT_TRUE(Eventually([&] { return a->members().size() == 2; }));
  EXPECT_EQ(a->members().at("bb"), "grpc://127.0.0.1:9002");

  b->Leave();
  ASSERT_TRUE(Eventually([&] { return a->members().size() == 1; }));
  ASSERT_OK_AND_ASSIGN(auto key, client_->Get(Membership::MemberKey("/test", "bb")));
  EXPECT_FALSE(key.has_value());
}

TEST_F(MembershipTest, RenewalKeepsAMemberPastItsTtl) {
  ASSERT_OK_AND_ASSIGN(auto a, Membership::Join(client_.get(), Options("a")));
  std::this_thread::sleep_for(seconds(4));  // two TTLs
  ASSERT_OK_AND_ASSIGN(auto key, client_->Get(Membership::MemberKey("/test", "a")));
  EXPECT_TRUE(key.has_value());
}

TEST_F(MembershipTest, AKilledMemberDisappearsWhenItsLeaseExpires) {
  ASSERT_OK_AND_ASSIGN(auto a, Membership::Join(client_.get(), Options("a")));
  ASSERT_OK_AND_ASSIGN(auto dead, Membership::Join(client_.get(), Options("dead")));
  ASSERT_TRUE(Eventually([&] { return a->members().size() == 2; }));
  dead->AbandonForTesting();
  EXPECT_EQ(a->members().count("dead"), 1u);  // not revoked: it lingers for up to a TTL
  ASSERT_TRUE(Eventually([&] { return a->members().count("dead") == 0; }));
}

TEST_F(MembershipTest, ReRegistersAndResyncsAfterEtcdRestarts) {
  ASSERT_OK_AND_ASSIGN(auto a, Membership::Join(client_.get(), Options("a")));
  etcd_.Stop();
  std::this_thread::sleep_for(seconds(3));  // the lease's TTL passes while etcd is down
  ASSERT_OK(etcd_.Start());                 // same data directory: a restart
  // A member that joins after the restart is seen (the watch was resumed) ...
  ASSERT_OK_AND_ASSIGN(auto b, Membership::Join(client_.get(), Options("bb")));
  ASSERT_TRUE(Eventually([&] { return a->members().count("bb") == 1; }));
  // ... and `a` is registered (again, if etcd expired its lease after the restart).
  ASSERT_TRUE(Eventually([&] {
    auto key = client_->Get(Membership::MemberKey("/test", "a"));
    return key.ok() && key->has_value();
  }));
  std::this_thread::sleep_for(seconds(3));
  ASSERT_TRUE(Eventually([&] { return b->members().count("a") == 1; }));
}

}  // namespace
}  // namespace foc::cluster
