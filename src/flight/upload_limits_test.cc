#include "flight/upload_limits.h"

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <gtest/gtest.h>

#include "testing/gtest_util.h"

namespace foc {
namespace {

std::shared_ptr<arrow::Buffer> Filled(int64_t size) {
  auto buffer = *arrow::AllocateBuffer(size);
  std::memset(buffer->mutable_data(), 7, static_cast<size_t>(size));
  return std::shared_ptr<arrow::Buffer>(std::move(buffer));
}

TEST(UploadLimitsTest, SmallSliceOfALargeBufferIsCopied) {
  auto parent = Filled(10 << 20);
  auto slice = arrow::SliceBuffer(arrow::SliceBuffer(parent, 100, 1 << 20), 5, 1);
  EXPECT_EQ(RetainedBytes(slice), 10 << 20);
  ASSERT_OK_AND_ASSIGN(auto compact, CompactCell(slice));
  EXPECT_NE(compact.get(), slice.get());
  EXPECT_EQ(compact->size(), 1);
  EXPECT_EQ(compact->data()[0], 7);
  EXPECT_LE(RetainedBytes(compact), 64);  // one padded allocation
}

TEST(UploadLimitsTest, NearlyWholeSliceStaysZeroCopy) {
  auto parent = Filled(10 << 20);
  auto slice = arrow::SliceBuffer(parent, 64, (10 << 20) - 128);
  ASSERT_OK_AND_ASSIGN(auto kept, CompactCell(slice));
  EXPECT_EQ(kept.get(), slice.get());
  auto small_parent = Filled(1000);
  auto small_slice = arrow::SliceBuffer(small_parent, 0, 1);  // within kRetainSlack
  ASSERT_OK_AND_ASSIGN(kept, CompactCell(small_slice));
  EXPECT_EQ(kept.get(), small_slice.get());
}

TEST(UploadLimitsTest, BatchSlicedFromLargeBufferIsCompacted) {
  auto parent = Filled(8 << 20);
  auto values = arrow::SliceBuffer(parent, 0, 16);  // two int64 values
  auto array = std::make_shared<arrow::Int64Array>(2, values);
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  auto batch = arrow::RecordBatch::Make(schema, 2, {array});
  EXPECT_EQ(RetainedBytes(*batch), 8 << 20);
  ASSERT_OK_AND_ASSIGN(auto compact, CompactBatch(batch));
  EXPECT_LT(RetainedBytes(*compact), 1024);
  EXPECT_TRUE(compact->Equals(*batch));
}

TEST(UploadLimitsTest, BudgetRefusesBeyondItsLimitAndReleases) {
  auto budget = std::make_shared<UploadBudget>(100);
  {
    UploadBudget::Reservation a(budget);
    UploadBudget::Reservation b(budget);
    ASSERT_OK(a.Resize(60));
    EXPECT_TRUE(b.Resize(50).IsCapacityError());
    EXPECT_EQ(b.bytes(), 0);
    ASSERT_OK(b.Resize(40));
    EXPECT_EQ(budget->in_flight(), 100);
    ASSERT_OK(a.Resize(10));  // shrinking always succeeds
    EXPECT_EQ(budget->in_flight(), 50);
  }
  EXPECT_EQ(budget->in_flight(), 0);
  EXPECT_EQ(budget->refused(), 1);
  EXPECT_EQ(budget->peak(), 100);
  std::string out;
  budget->Render(&out);
  EXPECT_NE(out.find("foc_upload_refused_total 1\n"), std::string::npos) << out;
}

TEST(UploadLimitsTest, NullBudgetIsUnlimited) {
  UploadBudget::Reservation r(nullptr);
  ASSERT_OK(r.Resize(int64_t{1} << 40));
}

}  // namespace
}  // namespace foc
