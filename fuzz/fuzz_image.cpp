// libFuzzer target: a camera image on the policy's path (docs/model.md §6.3). Any bytes as a PNG/JPEG file
// (`pi0 infer --image`), or, when the input starts with 'A', as an observation array
// ('A', H, W, layout byte, then uint8 pixels), then resize-with-pad to the model's size and the
// [−1, 1] scaling, as Policy::prepare does. Must end in a clean pi0::Error or a 3 × 56 × 56 input
// in [−1, 1]. The decode bound is lowered so that every execution stays fast; the bound itself (a
// huge declared size is refused before stb_image allocates) is what is exercised.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "pi0/error.h"
#include "policy/image.h"

namespace {

constexpr int kSide = 56;  // the tiny presets' image size (the code path is the same for 224)
constexpr int64_t kFuzzMaxPixels = int64_t{1} << 20;

pi0::ImageU8 from_array(const uint8_t* data, size_t size) {
  if (size < 4) throw pi0::Error("array input too short");
  const int64_t h = data[1], w = data[2];
  const bool chw = data[3] & 1;
  const pi0::Shape shape = chw ? pi0::Shape{3, h, w} : pi0::Shape{h, w, 3};
  pi0::Tensor t = pi0::Tensor::zeros(pi0::DType::U8, shape);
  const size_t n = std::min(static_cast<size_t>(t.numel()), size - 4);
  if (n > 0) std::memcpy(t.raw_mut(), data + 4, n);
  return pi0::image_from_tensor(t, "fuzz");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pi0::ImageU8 img = size > 0 && data[0] == 'A' ? from_array(data, size)
                                                        : pi0::decode_image_memory(data, size, "fuzz", kFuzzMaxPixels);
    if (static_cast<int64_t>(img.height) * img.width > kFuzzMaxPixels) std::abort();  // the bound did not hold
    const pi0::Tensor x = pi0::image_to_model_input(pi0::resize_with_pad_pillow(img, kSide, kSide));
    if (x.shape() != pi0::Shape{3, kSide, kSide}) std::abort();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x.data<float>()[i];
      if (!(v >= -1.0f && v <= 1.0f)) std::abort();
    }
  } catch (const pi0::Error&) {
  }
  return 0;
}
