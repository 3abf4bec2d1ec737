#include "policy/image.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "pi0/error.h"

namespace pi0 {

namespace {

ImageU8 decode(const unsigned char* data, int len, const std::string& name) {
  int w = 0, h = 0, ch = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &ch))
    throw Error({.message = std::string("not a readable image: ") + stbi_failure_reason(), .file = name});
  if (ch != 3)
    throw Error({.message = "image is not RGB", .file = name, .expected = "3 channels (RGB)",
                 .got = std::to_string(ch) + (ch == 1 ? " (grayscale)" : ch == 2 ? " (grayscale + alpha)" : ch == 4 ? " (RGBA)" : "")});
  if (static_cast<int64_t>(w) * h > (1 << 28))
    throw Error({.message = "image is too large", .file = name, .got = std::to_string(w) + "x" + std::to_string(h)});
  unsigned char* px = stbi_load_from_memory(data, len, &w, &h, &ch, 3);
  if (!px) throw Error({.message = std::string("cannot decode image: ") + stbi_failure_reason(), .file = name});
  ImageU8 im{h, w, std::vector<uint8_t>(px, px + static_cast<size_t>(w) * h * 3)};
  stbi_image_free(px);
  return im;
}

// Pillow's resampling (libImaging/Resample.c semantics): per output pixel a normalised triangle
// filter whose support grows with the downscale factor, weights in 22-bit fixed point, rounding
// by adding half before the shift, each pass clipped to uint8.
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // (xmin, count) per output pixel
  std::vector<int> k;       // ksize fixed-point weights per output pixel
};

Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // bilinear support is 1
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> kk(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double t = (x + xmin - center + 0.5) * ss;
      t = t < 0 ? -t : t;
      kk[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += kk[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? kk[x] / ww : kk[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          w < 0 ? static_cast<int>(-0.5 + w * (1 << kPrecisionBits)) : static_cast<int>(0.5 + w * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

ImageU8 resample_horizontal(const ImageU8& in, int out_w) {
  const Coeffs c = precompute(in.width, out_w);
  ImageU8 out{in.height, out_w, std::vector<uint8_t>(static_cast<size_t>(in.height) * out_w * 3)};
  for (int y = 0; y < in.height; ++y)
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[2 * xx], n = c.bounds[2 * xx + 1];
      const int* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      for (int ch = 0; ch < 3; ++ch) {
        int64_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < n; ++x) ss += static_cast<int64_t>(in.hwc[(static_cast<size_t>(y) * in.width + xmin + x) * 3 + ch]) * k[x];
        out.hwc[(static_cast<size_t>(y) * out_w + xx) * 3 + ch] = clip8(ss);
      }
    }
  return out;
}

ImageU8 resample_vertical(const ImageU8& in, int out_h) {
  const Coeffs c = precompute(in.height, out_h);
  ImageU8 out{out_h, in.width, std::vector<uint8_t>(static_cast<size_t>(out_h) * in.width * 3)};
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * yy], n = c.bounds[2 * yy + 1];
    const int* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    for (int x = 0; x < in.width; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        int64_t ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < n; ++y) ss += static_cast<int64_t>(in.hwc[(static_cast<size_t>(ymin + y) * in.width + x) * 3 + ch]) * k[y];
        out.hwc[(static_cast<size_t>(yy) * in.width + x) * 3 + ch] = clip8(ss);
      }
  }
  return out;
}

// Pillow's Image.resize(BILINEAR): horizontal pass, then vertical, each only when that size changes.
ImageU8 pil_resize(const ImageU8& im, int out_h, int out_w) {
  ImageU8 r = im;
  if (out_w != im.width) r = resample_horizontal(r, out_w);
  if (out_h != im.height) r = resample_vertical(r, out_h);
  return r;
}

void check_target(int h, int w) {
  if (h <= 0 || w <= 0) throw Error({.message = "target image size must be positive", .got = std::to_string(h) + "x" + std::to_string(w)});
}

}  // namespace

ImageU8 decode_image_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error({.message = "cannot read image file", .file = path});
  std::stringstream ss;
  ss << f.rdbuf();
  return decode_image_bytes(ss.str(), path);
}

ImageU8 decode_image_bytes(const std::string& bytes, const std::string& name) {
  if (bytes.size() > (1u << 30)) throw Error({.message = "image data is too large", .file = name});
  return decode(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), name);
}

ImageU8 image_from_tensor(const Tensor& t, const std::string& name) {
  if (t.ndim() != 3 || !(t.dim(2) == 3 || t.dim(0) == 3))
    throw Error({.message = "image array has the wrong shape", .field = name, .expected = "[H, W, 3] or [3, H, W]",
                 .got = shape_str(t.shape())});
  const bool chw = t.dim(2) != 3;  // [3, H, 3] is ambiguous; HWC wins as in openpi's LIBERO/DROID
  const int h = static_cast<int>(chw ? t.dim(1) : t.dim(0)), w = static_cast<int>(chw ? t.dim(2) : t.dim(1));
  if (h <= 0 || w <= 0) throw Error({.message = "image array is empty", .field = name, .got = shape_str(t.shape())});
  const bool floats = is_float(t.dtype());
  if (!floats && t.dtype() != DType::U8)
    throw Error({.message = "image array has an unsupported dtype", .field = name, .expected = "uint8 (or float in [0, 1])",
                 .got = dtype_name(t.dtype())});
  ImageU8 im{h, w, std::vector<uint8_t>(static_cast<size_t>(h) * w * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const int64_t src = chw ? (static_cast<int64_t>(c) * h + y) * w + x : (static_cast<int64_t>(y) * w + x) * 3 + c;
        uint8_t v;
        if (floats) {
          const float f = 255.f * t.get_f32(src);
          if (!std::isfinite(f)) throw Error({.message = "image array holds NaN or inf", .field = name});
          v = static_cast<uint8_t>(static_cast<int>(f));  // numpy astype(uint8) truncates
        } else {
          v = static_cast<const uint8_t*>(t.raw())[src];
        }
        im.hwc[(static_cast<size_t>(y) * w + x) * 3 + c] = v;
      }
  return im;
}

ImageU8 resize_with_pad_pil(const ImageU8& im, int height, int width) {
  check_target(height, width);
  if (im.height == height && im.width == width) return im;
  const double ratio = std::max(static_cast<double>(im.width) / width, static_cast<double>(im.height) / height);
  const int rh = std::max(1, static_cast<int>(im.height / ratio)), rw = std::max(1, static_cast<int>(im.width / ratio));
  const ImageU8 r = pil_resize(im, rh, rw);
  ImageU8 out{height, width, std::vector<uint8_t>(static_cast<size_t>(height) * width * 3, 0)};
  const int top = std::max(0, (height - rh) / 2), left = std::max(0, (width - rw) / 2);
  for (int y = 0; y < rh; ++y)
    std::copy_n(&r.hwc[static_cast<size_t>(y) * rw * 3], static_cast<size_t>(rw) * 3,
                &out.hwc[(static_cast<size_t>(y + top) * width + left) * 3]);
  return out;
}

Tensor to_model_input(const ImageU8& im) {
  Tensor t = Tensor::zeros(DType::F32, {3, im.height, im.width});
  float* d = t.data_mut<float>();
  const int64_t plane = static_cast<int64_t>(im.height) * im.width;
  for (int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) d[c * plane + p] = static_cast<float>(im.hwc[p * 3 + c]) / 255.f * 2.f - 1.f;
  return t;
}

Tensor resize_with_pad_torch(const ImageU8& im, int height, int width) {
  check_target(height, width);
  const Tensor src = to_model_input(im);
  if (im.height == height && im.width == width) return src;
  const double ratio = std::max(static_cast<double>(im.width) / width, static_cast<double>(im.height) / height);
  const int rh = std::max(1, static_cast<int>(im.height / ratio)), rw = std::max(1, static_cast<int>(im.width / ratio));
  Tensor out = Tensor::zeros(DType::F32, {3, height, width});
  float* o = out.data_mut<float>();
  std::fill(o, o + out.numel(), -1.f);
  const int top = (height - rh) / 2, left = (width - rw) / 2;
  const float sy = static_cast<float>(im.height) / rh, sx = static_cast<float>(im.width) / rw;
  const float* s = src.data<float>();
  for (int y = 0; y < rh; ++y) {
    const float fy = std::max(0.f, sy * (y + 0.5f) - 0.5f);
    const int y0 = static_cast<int>(fy), y1 = y0 + (y0 < im.height - 1 ? 1 : 0);
    const float ly1 = fy - y0, ly0 = 1.f - ly1;
    for (int x = 0; x < rw; ++x) {
      const float fx = std::max(0.f, sx * (x + 0.5f) - 0.5f);
      const int x0 = static_cast<int>(fx), x1 = x0 + (x0 < im.width - 1 ? 1 : 0);
      const float lx1 = fx - x0, lx0 = 1.f - lx1;
      for (int c = 0; c < 3; ++c) {
        const float* p = s + static_cast<int64_t>(c) * im.height * im.width;
        const float v = ly0 * (lx0 * p[y0 * im.width + x0] + lx1 * p[y0 * im.width + x1]) +
                        ly1 * (lx0 * p[y1 * im.width + x0] + lx1 * p[y1 * im.width + x1]);
        o[(static_cast<int64_t>(c) * height + y + top) * width + x + left] = std::clamp(v, -1.f, 1.f);
      }
    }
  }
  return out;
}

}  // namespace pi0
