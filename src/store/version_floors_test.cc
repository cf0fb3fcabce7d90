#include "store/version_floors.h"

#include <string>

#include "testing/gtest_util.h"

namespace foc {
namespace {

ObjectKey Key(const std::string& s) { return ObjectKey::Parse(s).ValueOrDie(); }

TEST(VersionFloorsTest, AKeyIsCoveredByItsOwnItsSessionsAndItsAppsFloor) {
  VersionFloors floors(16);
  floors.Raise("a/s/k", 5);
  floors.Raise("a/t", 7);
  floors.Raise("b/*", 9);
  EXPECT_EQ(floors.For(Key("a/s/k")), 5u);
  EXPECT_EQ(floors.For(Key("a/s/other")), 0u);
  EXPECT_EQ(floors.For(Key("a/t/x")), 7u);
  EXPECT_EQ(floors.For(Key("b/any/x")), 9u);
  floors.Raise("a/s/k", 3);  // never lowered
  EXPECT_EQ(floors.For(Key("a/s/k")), 5u);
  floors.CheckInvariants();
}

TEST(VersionFloorsTest, FloorsAtOrBelowACoveringFloorAreNotKept) {
  VersionFloors floors(16);
  floors.Raise("a/*", 10);
  floors.Raise("a/s", 10);
  floors.Raise("a/s/k", 4);
  EXPECT_EQ(floors.size(), 1u);
  floors.Raise("a/s", 12);
  floors.Raise("a/s/k", 11);  // below its session's floor
  EXPECT_EQ(floors.size(), 2u);
  EXPECT_EQ(floors.For(Key("a/s/k")), 12u);
}

TEST(VersionFloorsTest, BeyondTheBoundTheOldestFoldsIntoItsAppsFloor) {
  VersionFloors floors(8);
  for (uint64_t i = 1; i <= 1000; ++i) {
    floors.Raise("app/s" + std::to_string(i), i);
    floors.Raise("other/s" + std::to_string(i), 2 * i);
    EXPECT_LE(floors.pattern_floors(), 8u);
    EXPECT_LE(floors.size(), 8u + 2u);  // plus one floor per app
  }
  // Every deleted session still continues above the version it had.
  for (uint64_t i = 1; i <= 1000; ++i) {
    EXPECT_GE(floors.For(Key("app/s" + std::to_string(i) + "/x")), i);
    EXPECT_GE(floors.For(Key("other/s" + std::to_string(i) + "/x")), 2 * i);
  }
  EXPECT_GT(floors.folded(), 0);
  floors.CheckInvariants();
}

}  // namespace
}  // namespace foc
