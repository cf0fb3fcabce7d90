#include "object/object.h"

#include <arrow/array/builder_primitive.h>
#include <arrow/util/key_value_metadata.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

std::shared_ptr<arrow::Buffer> Bytes(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

// put, patch, patch -> versions 1, 2, 3 (upstream-server.md §4.2 worked example).
Object::Ptr ThreeVersions() {
  auto base = Object::MakeOpaque(1, Bytes("base"));
  auto o2 = base->WithDelta({2, Bytes("patch-1")}).ValueOrDie();
  return o2->WithDelta({3, Bytes("patch-2")}).ValueOrDie();
}

TEST(ObjectTest, VersionIsHighestOfBaseAndDeltas) {
  auto obj = ThreeVersions();
  EXPECT_EQ(obj->base_version(), 1u);
  EXPECT_EQ(obj->version(), 3u);
  EXPECT_EQ(obj->payload_bytes(), 4 + 7 + 7);
  EXPECT_GE(obj->memory_charge(), obj->payload_bytes());
}

TEST(ObjectTest, WithDeltaSharesBuffers) {
  auto base = Object::MakeOpaque(1, Bytes("base"));
  ASSERT_OK_AND_ASSIGN(auto patched, base->WithDelta({2, Bytes("d")}));
  EXPECT_EQ(patched->data().get(), base->data().get());
  EXPECT_TRUE(base->deltas().empty());
  EXPECT_STATUS(Invalid, "not above", patched->WithDelta({2, Bytes("x")}));
}

TEST(ObjectTest, MakeRejectsNonIncreasingDeltaVersions) {
  auto base = Object::MakeOpaque(5, Bytes("b"));
  EXPECT_STATUS(Invalid, "strictly increasing", Object::Make(base, {{4, Bytes("x")}}));
  EXPECT_STATUS(Invalid, "strictly increasing",
                Object::Make(base, {{6, Bytes("x")}, {6, Bytes("y")}}));
  ASSERT_OK_AND_ASSIGN(auto ok, Object::Make(base, {{6, Bytes("x")}, {9, Bytes("y")}}));
  EXPECT_EQ(ok->version(), 9u);
}

TEST(PlanGetTest, WorkedExample) {
  auto obj = ThreeVersions();
  EXPECT_EQ(PlanGet(*obj, 0).kind, GetReplyKind::kFull);
  auto p1 = PlanGet(*obj, 1);
  EXPECT_EQ(p1.kind, GetReplyKind::kPatches);
  EXPECT_EQ(p1.first_delta, 0u);
  auto p2 = PlanGet(*obj, 2);
  EXPECT_EQ(p2.kind, GetReplyKind::kPatches);
  EXPECT_EQ(p2.first_delta, 1u);
  EXPECT_EQ(PlanGet(*obj, 3).kind, GetReplyKind::kNotModified);
  EXPECT_EQ(PlanGet(*obj, 99).kind, GetReplyKind::kFull);
}

TEST(PlanGetTest, AfterUpdateOldVersionsGetFull) {
  auto updated = Object::MakeOpaque(4, Bytes("updated-base"));
  EXPECT_EQ(PlanGet(*updated, 1).kind, GetReplyKind::kFull);
  EXPECT_EQ(PlanGet(*updated, 4).kind, GetReplyKind::kNotModified);
}

TEST(PlanGetTest, GapInPatchHistoryGivesFull) {
  auto base = Object::MakeOpaque(1, Bytes("b"));
  ASSERT_OK_AND_ASSIGN(auto obj, Object::Make(base, {{2, Bytes("x")}, {5, Bytes("y")}}));
  EXPECT_EQ(PlanGet(*obj, 2).kind, GetReplyKind::kFull);  // needs 3,4,5; has only 5
  EXPECT_EQ(PlanGet(*obj, 1).kind, GetReplyKind::kFull);
  EXPECT_EQ(PlanGet(*obj, 5).kind, GetReplyKind::kNotModified);
}

TEST(PlanGetTest, NativeTables) {
  arrow::Int32Builder b;
  ASSERT_OK(b.AppendValues({1, 2, 3}));
  ASSERT_OK_AND_ASSIGN(auto array, b.Finish());
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int32())},
      arrow::key_value_metadata({kFormatMetadataKey}, {kNativeTableFormat}));
  ASSERT_TRUE(IsNativeTableSchema(*schema));
  auto obj =
      Object::MakeNative(7, {schema, {arrow::RecordBatch::Make(schema, 3, {array})}});
  EXPECT_EQ(NativeSchemaVersion(*obj->table()->schema), 7u);
  EXPECT_EQ(obj->payload_bytes(), 12);
  EXPECT_EQ(PlanGet(*obj, 0).kind, GetReplyKind::kNative);
  EXPECT_EQ(PlanGet(*obj, 3).kind, GetReplyKind::kNative);
  EXPECT_EQ(PlanGet(*obj, 7).kind, GetReplyKind::kNotModified);
  EXPECT_FALSE(IsNativeTableSchema(*arrow::schema({arrow::field("id", arrow::int32())})));
}

}  // namespace
}  // namespace foc
