#include "base/check.h"

#include <gtest/gtest.h>

namespace foc {
namespace {

TEST(CheckTest, PassingChecksDoNothing) {
  int calls = 0;
  FOC_DCHECK(++calls > 0);
  FOC_DCHECK_EQ(2 + 2, 4);
  FOC_DCHECK_LE(1, 2);
  // Evaluated exactly once where checks are on, never where they are off.
  EXPECT_EQ(calls, FOC_DCHECK_IS_ON ? 1 : 0);
}

#if FOC_DCHECK_IS_ON
TEST(CheckDeathTest, FailingCheckAbortsNamingTheCondition) {
  const int usage = 3, sum = 4;
  EXPECT_DEATH(FOC_DCHECK_EQ(usage, sum), "FOC_DCHECK failed: usage == sum: 3 vs 4");
  EXPECT_DEATH(FOC_DCHECK(usage > sum),
               "check_test.cc:[0-9]+: FOC_DCHECK failed: usage > sum");
}
#endif

}  // namespace
}  // namespace foc
