// libFuzzer target: any bytes as a request frame. Must end in a clean pi0::Error or a Dict that
// re-encodes to bytes which decode to the same encoding (the codec is its own inverse).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pi0/error.h"
#include "serve/msgpack_numpy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pi0::Dict d;
  try {
    d = pi0::serve::decode_dict(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const pi0::Error&) {
    return 0;
  }
  std::string once = pi0::serve::encode(d);
  std::string twice = pi0::serve::encode(pi0::serve::decode_dict(once));
  if (once != twice) std::abort();
  return 0;
}
