#include "metrics/status.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace foc {
namespace {

ServerStatus Sample() {
  ServerStatus s;
  s.version = "1.2.3";
  s.endpoint = "grpc://127.0.0.1:9090";
  s.storage = "disk <here> & \"there\"";
  s.uptime_seconds = 90061;  // 1 d 01:01:01
  s.memory_limit_bytes = 1024 * 1024;
  s.disk_capacity_bytes = 0;
  s.process_resident_bytes = 2048;
  s.store.objects = 3;
  s.store.resident_objects = 2;
  s.store.resident_bytes = 512 * 1024;
  s.store.storage.stored_bytes = 1536;
  s.store.not_modified_replies = 3;
  s.store.full_replies = 1;
  s.store.memory_evictions = 7;
  s.rpcs["DoGet"] = {4, 1};
  s.rpcs["DoPut"] = {6, 0};
  return s;
}

TEST(StatusTest, JsonCarriesEveryField) {
  const std::string json = RenderStatusJson(Sample());
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  for (const char* part :
       {"\"version\":\"1.2.3\"", "\"uptime_seconds\":90061.000", "\"objects\":3",
        "\"used_bytes\":524288", "\"limit_bytes\":1048576", "\"capacity_bytes\":0",
        "\"process_resident_bytes\":2048", "\"hit_ratio\":0.7500", "\"memory\":7",
        "\"total\":10", "\"errors\":1", "\"DoGet\":{\"calls\":4,\"errors\":1}",
        "\"storage\":\"disk <here> & \\\"there\\\"\""}) {
    EXPECT_NE(json.find(part), std::string::npos) << part << " in " << json;
  }
}

TEST(StatusTest, JsonEscapesControlCharactersAndReplacesInvalidUtf8) {
  ServerStatus s = Sample();
  s.storage = std::string("a\nb\x01\"\xff");
  const auto doc = nlohmann::json::parse(RenderStatusJson(s));  // valid JSON
  EXPECT_EQ(doc["storage"], "a\nb\x01\"\xEF\xBF\xBD");
  EXPECT_EQ(doc["memory"]["used_bytes"], 524288);
}

TEST(StatusTest, HitRatioIsNullBeforeAnyRead) {
  ServerStatus s = Sample();
  s.store.not_modified_replies = s.store.full_replies = 0;
  EXPECT_LT(HitRatio(s.store), 0);
  EXPECT_NE(RenderStatusJson(s).find("\"hit_ratio\":null"), std::string::npos);
}

TEST(StatusTest, HtmlIsSelfContainedAndEscaped) {
  const std::string html = RenderStatusHtml(Sample());
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_NE(html.find("version 1.2.3"), std::string::npos);
  EXPECT_NE(html.find("up 1d 01:01:01"), std::string::npos);
  EXPECT_NE(html.find("512.0 KiB of 1.0 MiB (50.0%)"), std::string::npos);
  EXPECT_NE(html.find("1.5 KiB (no limit)"), std::string::npos);
  EXPECT_NE(html.find("75.0% not modified"), std::string::npos);
  EXPECT_NE(html.find("disk &lt;here&gt; &amp; &quot;there&quot;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST(StatusTest, ProcessResidentBytesIsPositive) { EXPECT_GT(ProcessResidentBytes(), 0); }

}  // namespace
}  // namespace foc
