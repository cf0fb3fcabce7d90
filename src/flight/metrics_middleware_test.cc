#include "flight/metrics_middleware.h"

#include <arrow/flight/client.h>
#include <arrow/flight/server.h>
#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

namespace fl = arrow::flight;

// A bare Flight server: ListActions answers, everything else is UNIMPLEMENTED.
class BareServer : public fl::FlightServerBase {
 public:
  arrow::Status ListActions(const fl::ServerCallContext&,
                            std::vector<fl::ActionType>* actions) override {
    *actions = {{"DELETE", "Delete"}};
    return arrow::Status::OK();
  }
};

TEST(MetricsMiddlewareTest, CountsCallsByRpcAndCode) {
  auto metrics = std::make_shared<RpcMetrics>();
  ASSERT_OK_AND_ASSIGN(auto location, fl::Location::ForGrpcTcp("127.0.0.1", 0));
  fl::FlightServerOptions options(location);
  options.middleware.emplace_back(MetricsMiddlewareFactory::kKey,
                                  std::make_shared<MetricsMiddlewareFactory>(metrics));
  BareServer server;
  ASSERT_OK(server.Init(options));
  ASSERT_OK_AND_ASSIGN(auto dial, fl::Location::ForGrpcTcp("127.0.0.1", server.port()));
  ASSERT_OK_AND_ASSIGN(auto client, fl::FlightClient::Connect(dial));
  ASSERT_OK_AND_ASSIGN(auto actions, client->ListActions());
  ASSERT_OK_AND_ASSIGN(actions, client->ListActions());
  EXPECT_FALSE(client->GetFlightInfo(fl::FlightDescriptor::Path({"a"})).ok());
  ASSERT_OK(client->Close());
  ASSERT_OK(server.Shutdown());

  std::string out;
  metrics->Render(&out);
  EXPECT_NE(out.find("foc_rpc_requests_total{rpc=\"ListActions\",code=\"OK\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find(
          "foc_rpc_requests_total{rpc=\"GetFlightInfo\",code=\"UNIMPLEMENTED\"} 1\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("foc_rpc_duration_seconds_count{rpc=\"ListActions\"} 2\n"),
            std::string::npos);
  EXPECT_NE(out.find("foc_rpc_in_flight 0\n"), std::string::npos);
}

TEST(MetricsMiddlewareTest, GrpcCodeNames) {
  EXPECT_EQ(GrpcCodeName(arrow::Status::OK()), "OK");
  EXPECT_EQ(GrpcCodeName(arrow::Status::KeyError("x")), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(arrow::Status::Invalid("x")), "INVALID_ARGUMENT");
  EXPECT_EQ(GrpcCodeName(arrow::Status::CapacityError("x")), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(GrpcCodeName(arrow::Status::IOError("x")), "UNKNOWN");
  EXPECT_EQ(GrpcCodeName(fl::MakeFlightError(fl::FlightStatusCode::Unavailable, "x")),
            "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(fl::MakeFlightError(fl::FlightStatusCode::Unauthenticated, "x")),
            "UNAUTHENTICATED");
}

}  // namespace
}  // namespace foc
