// libFuzzer target: any text as config.json, then validation and the derived tensor layout.
#include <cstdint>
#include <string>

#include "model/layout.h"
#include "pi0/config.h"
#include "pi0/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pi0::ModelConfig c = pi0::parse_config_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    c.validate("fuzz");
    // Keep the layout small enough to build: the fuzzer is after parser bugs, not huge allocations.
    if (c.vlm.depth < 64 && c.vision.depth < 64) (void)pi0::checkpoint_layout(c);
  } catch (const pi0::Error&) {
  }
  return 0;
}
