// The configuration parser (src/config/): any flame-cluster.yaml text, applied to the
// defaults and validated. Errors are fine; crashes, hangs and leaks are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  foc::Config config;
  if (foc::ApplyYaml(yaml, "fuzz.yaml", &config).ok()) {
    (void)foc::Validate(config);
    (void)foc::FormatConfig(config);
  }
  (void)foc::ParseSize(yaml);
  (void)foc::ParseLogLevel(yaml);
  return 0;
}
