#include "flight/status.h"

#include <string>

#include <arrow/flight/types.h>
#include <gtest/gtest.h>

namespace foc {
namespace {

namespace fl = arrow::flight;

TEST(StatusTest, ValidTextPassesUnchanged) {
  const auto st = arrow::Status::Invalid("Invalid key 'app/séance/ö': tab\there\nnext");
  EXPECT_EQ(ClientSafeMessage(st).message(), st.message());
}

TEST(StatusTest, BytesThatAreNotUtf8AreEscaped) {
  const auto st =
      arrow::Status::Invalid(std::string("Invalid object id '\xff\xfe\x01ok\xc3\xa9"
                                         "\xe2\x82': not valid UTF-8"));
  const auto safe = ClientSafeMessage(st);
  EXPECT_EQ(safe.code(), arrow::StatusCode::Invalid);
  // 0xff 0xfe: never UTF-8; 0x01: a control character; "é" kept; a truncated 3-byte
  // sequence (e2 82 followed by a quote) escaped byte by byte.
  EXPECT_EQ(safe.message(),
            "Invalid object id '\\xff\\xfe\\x01ok\xc3\xa9\\xe2\\x82': not valid UTF-8");
}

TEST(StatusTest, LongMessagesAreBoundedWithoutCuttingCharactersInHalf) {
  // 'é' is two bytes; with the 13-byte prefix "Invalid key '" both cut points (1,024
  // bytes from the start, 512 from the end) fall inside a character.
  std::string key;
  for (int i = 0; i < 100000; ++i) key += "\xc3\xa9";
  const auto safe = ClientSafeMessage(arrow::Status::Invalid("Invalid key '", key, "'"));
  EXPECT_LT(safe.message().size(), 1700u);
  EXPECT_NE(safe.message().find("bytes elided"), std::string::npos);
  EXPECT_NE(safe.message().find("\xc3\xa9\\xc3... ("), std::string::npos);
  EXPECT_NE(safe.message().find("elided) ...\\xa9\xc3\xa9"), std::string::npos);
}

TEST(StatusTest, RpcDetailSurvivesAndMapsCodes) {
  auto denied = arrow::Status::IOError("permission denied on app \xff")
                    .WithDetail(std::make_shared<fl::FlightStatusDetail>(
                        fl::FlightStatusCode::Unauthorized));
  const auto mapped = ToRpcStatus(denied);
  ASSERT_NE(fl::FlightStatusDetail::UnwrapStatus(mapped), nullptr);
  EXPECT_EQ(fl::FlightStatusDetail::UnwrapStatus(mapped)->code(),
            fl::FlightStatusCode::Unauthorized);
  EXPECT_EQ(mapped.message(), "permission denied on app \\xff");
  EXPECT_EQ(ToRpcStatus(arrow::Status::KeyError("k")).code(),
            arrow::StatusCode::KeyError);
  EXPECT_TRUE(ToRpcStatus(arrow::Status::OK()).ok());
}

}  // namespace
}  // namespace foc
