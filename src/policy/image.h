// Camera images (SPEC §6.3): decoding, array layouts, and the two resize-with-pad pipelines of
// openpi: the server's Pillow bilinear on uint8 (antialiased, 8-bit fixed point; what real
// requests go through) and the PyTorch model's bilinear fallback on floats.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pi0/tensor.h"

namespace pi0 {

struct ImageU8 {
  int height = 0, width = 0;
  std::vector<uint8_t> hwc;  // RGB, row-major
};

// PNG, JPEG, BMP, … via stb_image. Errors name the file; images that are not RGB (grayscale,
// RGBA) are refused rather than silently converted.
ImageU8 decode_image_file(const std::string& path);
ImageU8 decode_image_bytes(const std::string& bytes, const std::string& name);

// A uint8 array [H, W, 3] (HWC) or [3, H, W] (CHW, as ALOHA sends). Float arrays are taken as
// openpi does: (255 · x) truncated to uint8. `name` is used in errors.
ImageU8 image_from_tensor(const Tensor& t, const std::string& name);

// openpi_client.image_tools.resize_with_pad: Pillow BILINEAR resize keeping the aspect ratio,
// pasted centred on black. Bit-exact port of Pillow's resampler. No-op at the target size.
ImageU8 resize_with_pad_pil(const ImageU8& im, int height, int width);
// The model input: F32 [3, H, W], x / 255 · 2 − 1 (the image must already be H × W).
Tensor to_model_input(const ImageU8& im);
// openpi's PyTorch resize_with_pad: float image, bilinear (align_corners = False, no
// antialiasing), clamped to [−1, 1], padded with −1. F32 [3, H, W].
Tensor resize_with_pad_torch(const ImageU8& im, int height, int width);

}  // namespace pi0
