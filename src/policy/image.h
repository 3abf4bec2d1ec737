// Camera images on their way to the model (docs/model.md §6.3): decoding PNG/JPEG files, accepting the
// uint8 HWC / CHW arrays robots send, openpi's resize-with-pad (Pillow's antialiased bilinear in
// 8-bit fixed point, bit-exact) and the PyTorch in-model fallback, and the [−1, 1] scaling.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pi0/tensor.h"

namespace pi0 {

// An 8-bit RGB image, rows of interleaved R, G, B (HWC): what openpi's transforms work on.
struct ImageU8 {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3
  uint8_t at(int y, int x, int c) const { return pixels[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

// The largest image decoded: 8192 × 8192 pixels (192 MiB as RGB). A PNG or JPEG header can declare
// any size in a few bytes; the declared size is checked against this before stb_image allocates
// anything, so an 18000 × 18000 header in a 65-byte file is an error, not a 972 MB allocation
// (stb_image's own limit only refuses images beyond 1 GB).
inline constexpr int64_t kMaxImagePixels = int64_t{8192} * 8192;

// PNG or JPEG (anything stb_image reads). Errors name the file: unreadable, not an image, not
// 3-channel RGB (grey and RGBA are refused rather than silently converted), or larger than
// `max_pixels` (width × height as the header declares it).
ImageU8 decode_image_file(const std::string& path, int64_t max_pixels = kMaxImagePixels);
ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& source,
                            int64_t max_pixels = kMaxImagePixels);
// PNG, for sample images and the CLI (throws naming the file on failure).
void write_png(const std::string& path, const ImageU8& img);

// An observation array: uint8 [H, W, 3] or [3, H, W] (openpi's rule: CHW when the first dim is 3),
// or float in [0, 1], converted as openpi does with (255·x).astype(uint8) (truncation; values
// outside [0, 1] are clamped first, which numpy leaves undefined). `what` names the input in errors.
ImageU8 image_from_tensor(const Tensor& t, const std::string& what);

// Pillow's Image.resize((width, height), BILINEAR) on RGB: separable, horizontal pass then
// vertical, triangle filter whose support grows with the downscale factor (antialiasing),
// coefficients and sums in 8-bit fixed point with clipping to uint8 between the passes.
ImageU8 resize_bilinear_pillow(const ImageU8& in, int out_height, int out_width);

// Aspect-preserving target size used by both resize-with-pad flavours: ratio = max(w/W, h/H),
// (int(h/ratio), int(w/ratio)). Throws when a side would become 0 (Pillow refuses that too).
void resize_with_pad_size(int h, int w, int target_h, int target_w, int* out_h, int* out_w);

// openpi_client image_tools.resize_with_pad (openpi's ResizeImages transform): Pillow bilinear to
// the aspect-preserving size, pasted on black at (int((W−w')/2), int((H−h')/2)). A no-op at size.
ImageU8 resize_with_pad_pillow(const ImageU8& in, int target_h, int target_w);

// x/255·2 − 1 as float32, channels first: F32 [3, H, W]. What the model sees of a uint8 image.
Tensor image_to_model_input(const ImageU8& img);

// openpi's PyTorch fallback (preprocess_observation_pytorch → resize_with_pad_torch) on the float
// image: bilinear, align_corners=False, no antialiasing, clamp to [−1, 1], pad with −1 (top/left
// floor((T−t')/2)). Computed in float64, returned as F32 [3, H, W].
Tensor resize_with_pad_torch(const ImageU8& in, int target_h, int target_w);

}  // namespace pi0
