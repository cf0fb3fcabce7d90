// The C++ client over a cluster (docs/cluster.md, docs/cpp-client.md "Several servers"):
// three in-process Flight services, each over a ClusterStore sharing a real etcd and a
// real S3 gateway (versitygw). The client routes each key to its rendezvous owner, fails
// over when a member stops, and discovers members with MEMBERS.
#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

#include <arrow/flight/server.h>
#include <gtest/gtest.h>

#include "cluster/cluster_store.h"
#include "flame_object_cache/cache_client.h"
#include "flight/flight_service.h"
#include "protocol/routing.h"
#include "storage/test_files.h"
#include "testing/etcd_server.h"
#include "testing/gtest_util.h"
#include "testing/ports.h"
#include "testing/versitygw.h"

namespace foc {
namespace {

std::shared_ptr<arrow::Buffer> Buf(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

// One cluster member: a ClusterStore behind a FlightService on a loopback port.
struct Member {
  std::shared_ptr<cluster::ClusterStore> store;
  std::unique_ptr<FlightService> service;
  std::string endpoint;

  arrow::Status Start(const std::string& id, const std::string& etcd,
                      const std::string& storage) {
    const int port = testing::FreeLoopbackPort();
    endpoint = "grpc://127.0.0.1:" + std::to_string(port);
    cluster::ClusterStoreOptions o;
    o.etcd = {etcd};
    o.prefix = "/client-test";
    o.storage_uri = storage;
    o.server_id = id;
    o.advertised_endpoint = endpoint;
    o.gc_interval = std::chrono::milliseconds(0);
    ARROW_ASSIGN_OR_RAISE(auto opened, cluster::ClusterStore::Open(o));
    store = std::move(opened);
    FlightServiceOptions so;
    so.advertised_endpoint = endpoint;
    cluster::ClusterStore* raw = store.get();
    so.members = [raw] { return raw->MemberEndpoints(); };
    so.linearize = [raw](const ObjectKey& key) { return raw->Refresh(key); };
    service = std::make_unique<FlightService>(store, std::move(so));
    ARROW_ASSIGN_OR_RAISE(auto location,
                          arrow::flight::Location::ForGrpcTcp("127.0.0.1", port));
    return service->Init(arrow::flight::FlightServerOptions(location));
  }
  void Stop() {  // as SIGTERM: stop serving, leave the cluster
    if (service) {
      (void)service->Shutdown();
      (void)service->Wait();
      service.reset();
    }
    store.reset();
  }
};

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    ASSERT_OK(etcd_.Start());
    ASSERT_TRUE(gw_.running()) << "versitygw did not start";
    gw_.MakeBucket("bucket");
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK(members_[i].Start("m" + std::to_string(i), etcd_.endpoint(),
                                  gw_.Uri("bucket/client")));
      endpoints_.push_back(members_[i].endpoint);
    }
  }
  void TearDown() override {
    for (auto& m : members_) m.Stop();
  }
  std::string All() const {
    return endpoints_[0] + "," + endpoints_[1] + "," + endpoints_[2];
  }

  testing::EtcdServer etcd_;
  testing::TempDir dir_;
  testing::Versitygw gw_{dir_.path()};
  Member members_[3];
  std::vector<std::string> endpoints_;
};

TEST_F(ClusterClientTest, RoutesKeysToTheirOwnersAndFailsOver) {
  ClientOptions options;
  options.endpoint = All();
  ASSERT_OK_AND_ASSIGN(auto client, CacheClient::Connect(options));
  EXPECT_TRUE(client->routing());
  EXPECT_EQ(client->Members(), endpoints_);
  std::vector<ObjectRef> refs;
  std::set<std::string> took;
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK_AND_ASSIGN(auto ref, client->Put("app/s" + std::to_string(i), Buf("v")));
    EXPECT_EQ(ref.endpoint, RendezvousOrder(ref.key, endpoints_).front()) << ref.key;
    took.insert(ref.endpoint);
    refs.push_back(ref);
  }
  EXPECT_EQ(took.size(), 3u);  // the keys spread over every member
  for (const auto& ref : refs) {
    ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));
    EXPECT_EQ(value->base->ToString(), "v");
  }
  const int64_t not_modified = client->stats().not_modified;
  for (const auto& ref : refs) ASSERT_OK(client->Get(ref).status());
  EXPECT_EQ(client->stats().not_modified, not_modified + 30);  // one copy per key

  members_[1].Stop();
  const std::string gone = endpoints_[1];
  std::vector<std::string> left = {endpoints_[0], endpoints_[2]};
  int moved = 0;
  for (const auto& ref : refs) {
    ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));  // every key, through a survivor
    EXPECT_EQ(value->base->ToString(), "v");
    if (ref.endpoint != gone) continue;
    ++moved;
    // A PATCH of the stopped member's key: the connection is refused, so it is sent to
    // the next member of the key's order (never applied twice).
    ASSERT_OK_AND_ASSIGN(auto patched, client->Patch(ref, Buf("+d")));
    EXPECT_EQ(patched.version, ref.version + 1);
    EXPECT_EQ(patched.endpoint, RendezvousOrder(ref.key, left).front());
  }
  EXPECT_GT(moved, 0);
  ASSERT_OK_AND_ASSIGN(auto listed, client->List());
  EXPECT_EQ(listed.size(), refs.size());
  ASSERT_OK(client->Delete("app/s0"));
  EXPECT_TRUE(IsObjectNotFound(client->Get(refs[0]).status()));
}

TEST_F(ClusterClientTest, DiscoversMembersAndReadsLinearizably) {
  ClientOptions options;
  options.endpoint = endpoints_[2];
  options.discover = true;
  options.linearizable = true;
  ASSERT_OK_AND_ASSIGN(auto client, CacheClient::Connect(options));
  std::vector<std::string> sorted = endpoints_;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(client->Members(), sorted);
  // A write through one member, read at once through the key's owner: linearizable.
  ClientOptions direct;
  direct.endpoint = endpoints_[0];
  ASSERT_OK_AND_ASSIGN(auto writer, CacheClient::Connect(direct));
  ASSERT_OK_AND_ASSIGN(auto ref, writer->Put("app/lin/o", Buf("1")));
  for (int i = 2; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(ref, writer->Update(ref, Buf(std::to_string(i))));
    ASSERT_OK_AND_ASSIGN(auto value, client->Get(ref));
    EXPECT_EQ(value->version, ref.version);
    EXPECT_EQ(value->base->ToString(), std::to_string(i));
  }
  members_[0].Stop();  // leaves: MEMBERS drops it
  ASSERT_OK_AND_ASSIGN(auto now, client->RefreshMembers());
  EXPECT_EQ(now.size(), 2u);
}

TEST_F(ClusterClientTest, ARoutingClientsSubscribedCacheAnswersWithoutARoundTrip) {
  ClientOptions options;
  options.endpoint = All();
  ASSERT_OK_AND_ASSIGN(auto client, CacheClient::Connect(options));
  ASSERT_OK(client->SubscribeCache({"app/*"}, std::chrono::milliseconds(100)));
  ASSERT_TRUE(client->WaitCacheSubscribed(std::chrono::seconds(30)));
  ASSERT_OK_AND_ASSIGN(auto ref, client->Put("app/w", Buf("x")));
  ASSERT_OK(client->Get(ref).status());
  // Once the subscribed member's feed has the version, gets are hits with no round trip.
  for (int i = 0; i < 3000 && client->stats().watch_hits == 0; ++i) {
    ASSERT_OK(client->Get(ref).status());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(client->stats().watch_hits, 0);
  client->UnsubscribeCache();
}

}  // namespace
}  // namespace foc
