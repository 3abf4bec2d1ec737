// libFuzzer target: any bytes as a safetensors file. Must end in a clean pi0::Error or a valid
// file whose every tensor view stays inside the buffer.
#include <cstdint>
#include <string>

#include "io/safetensors.h"
#include "pi0/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = pi0::SafeTensorsFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    double sum = 0;
    for (const auto& e : f->entries()) {
      pi0::Tensor t = f->tensor(e);
      if (t.numel() > 0) sum += t.get_f32(0) + t.get_f32(t.numel() - 1);  // touch both ends of every view
    }
    (void)sum;
  } catch (const pi0::Error&) {
  }
  return 0;
}
