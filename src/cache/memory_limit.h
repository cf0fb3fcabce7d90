// The default size of the memory tier, written once: `cache.eviction.max_memory`
// (src/config/), StoreOptions (src/store/) and ClusterStoreOptions (src/cluster/) all
// start from it. It lives here, in the layer that enforces memory limits, so that the
// store does not depend on the configuration layer to know its own default.
#pragma once

#include <cstdint>

namespace foc {

/// Bytes the memory tier may hold when nothing is configured: 1 GiB.
inline constexpr int64_t kDefaultMaxMemoryBytes = int64_t{1} << 30;

}  // namespace foc
