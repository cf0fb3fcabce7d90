#include "store/key_locks.h"

#include <atomic>
#include <thread>
#include <vector>

#include "testing/gtest_util.h"

namespace foc {
namespace {

TEST(KeyLocksTest, WritersExclusiveReadersSharedTableShrinks) {
  KeyLocks locks;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto g = locks.Exclusive("k");
        int now = ++inside;
        max_inside = std::max(max_inside.load(), now);
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_inside.load(), 1);
  EXPECT_EQ(locks.size(), 0u);

  auto r1 = std::make_unique<KeyLocks::Guard>(&locks, "k", false);
  auto r2 = std::make_unique<KeyLocks::Guard>(&locks, "k", false);  // shared: no deadlock
  auto other = locks.Exclusive("other");                            // other keys proceed
  EXPECT_EQ(locks.size(), 2u);
}

}  // namespace
}  // namespace foc
