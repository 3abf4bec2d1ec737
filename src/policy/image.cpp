#include "policy/image.h"

// Debian's libstb-dev ships the stb implementations compiled into libstb.so, so the headers are
// included here as plain declarations (no STB_IMAGE_IMPLEMENTATION).
#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "io/tensor_files.h"
#include "pi0/error.h"

namespace pi0 {

namespace {

std::string dims_str(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

const char* channel_desc(int c) {
  switch (c) {
    case 1: return "1 (grey)";
    case 2: return "2 (grey + alpha)";
    case 3: return "3 (RGB)";
    case 4: return "4 (RGBA)";
  }
  return "?";
}

}  // namespace

ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& source, int64_t max_pixels) {
  if (size == 0) throw Error(ErrorInfo{.message = "image is empty", .file = source});
  if (size > static_cast<size_t>(INT32_MAX)) throw Error(ErrorInfo{.message = "image file too large", .file = source});
  // A PNG's size is in its IHDR chunk: read it ourselves, because stb_image refuses huge or empty
  // PNG headers and then reports the last format it tried ("unknown image type").
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 24 && std::memcmp(data, kPng, 8) == 0) {
    auto be32 = [&](size_t at) {
      return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) | (uint32_t{data[at + 2]} << 8) | data[at + 3];
    };
    const uint32_t pw = be32(16), ph = be32(20);
    if (pw == 0 || ph == 0)
      throw Error(ErrorInfo{.message = "PNG header declares an empty image", .file = source, .field = "size",
                            .expected = "width and height >= 1", .got = dims_str(static_cast<int64_t>(ph), static_cast<int64_t>(pw))});
    if (static_cast<uint64_t>(pw) * ph > static_cast<uint64_t>(max_pixels))
      throw Error(ErrorInfo{.message = "image is too large to decode", .file = source, .field = "size",
                            .expected = "at most " + std::to_string(max_pixels) + " pixels",
                            .got = dims_str(static_cast<int64_t>(ph), static_cast<int64_t>(pw)) + " = " +
                                   std::to_string(static_cast<uint64_t>(pw) * ph) + " pixels"});
  }
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &comp))
    throw Error(ErrorInfo{.message = std::string("cannot decode image (PNG or JPEG expected): ") + stbi_failure_reason(),
                 .file = source});
  // openpi feeds 3-channel RGB to the model; guessing how to drop alpha or expand grey would
  // hand the policy a picture it was not trained on without telling anyone.
  if (comp != 3)
    throw Error(ErrorInfo{.message = "image is not RGB; convert it to 3-channel RGB", .file = source, .field = "channels",
                 .expected = "3 (RGB)", .got = channel_desc(comp)});
  // stb_image sizes its buffers from the header alone (zlib output, pixels); refuse before that.
  if (w <= 0 || h <= 0 || static_cast<int64_t>(w) * h > max_pixels)
    throw Error(ErrorInfo{.message = "image is too large to decode", .file = source, .field = "size",
                 .expected = "at most " + std::to_string(max_pixels) + " pixels",
                 .got = dims_str(h, w) + " = " + std::to_string(static_cast<int64_t>(w) * h) + " pixels"});
  stbi_uc* px = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &comp, 3);
  if (!px)
    throw Error(ErrorInfo{.message = std::string("cannot decode image: ") + stbi_failure_reason(), .file = source});
  ImageU8 img;
  img.height = h;
  img.width = w;
  img.pixels.assign(px, px + static_cast<size_t>(w) * h * 3);
  stbi_image_free(px);
  return img;
}

ImageU8 decode_image_file(const std::string& path, int64_t max_pixels) {
  // Regular files only, bounded: a FIFO or /dev/zero given as an image is refused, not read forever.
  const std::string bytes = read_text_file(path, uint64_t{256} << 20);
  return decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, max_pixels);
}

void write_png(const std::string& path, const ImageU8& img) {
  if (img.height <= 0 || img.width <= 0 || img.pixels.size() != static_cast<size_t>(img.height) * img.width * 3)
    throw Error(ErrorInfo{.message = "invalid image to write", .file = path});
  if (!stbi_write_png(path.c_str(), img.width, img.height, 3, img.pixels.data(), img.width * 3))
    throw Error(ErrorInfo{.message = "cannot write PNG", .file = path});
}

ImageU8 image_from_tensor(const Tensor& t, const std::string& what) {
  const bool u8 = t.dtype() == DType::U8;
  const bool fl = t.dtype() == DType::F32 || t.dtype() == DType::F64;
  if (!u8 && !fl) {
    // Narrow numpy integers arrive widened (msgpack-numpy decoding, docs/model.md §7), so "I32" alone
    // would hide that the client sent e.g. a uint16 depth image.
    const std::string got = t.dtype() == DType::I32   ? "an integer array (numpy int8, int16, uint16 or int32)"
                            : t.dtype() == DType::I64 ? "an integer array (numpy int64 or uint32)"
                                                      : dtype_name(t.dtype());
    throw Error(ErrorInfo{.message = "image array has an unsupported dtype", .tensor = what, .field = "dtype",
                 .expected = "uint8 (or float in [0, 1]; scale 16-bit images to 0..255)", .got = got});
  }
  // openpi (_parse_image): channels first iff the first dim is 3; otherwise channels last.
  const bool chw = t.ndim() == 3 && t.dim(0) == 3;
  const bool hwc = t.ndim() == 3 && !chw && t.dim(2) == 3;
  if (!chw && !hwc)
    throw Error(ErrorInfo{.message = "image array must be RGB, [H, W, 3] or [3, H, W]", .tensor = what, .field = "shape",
                 .expected = "[H, W, 3] or [3, H, W]", .got = shape_str(t.shape())});
  const int64_t H = chw ? t.dim(1) : t.dim(0), W = chw ? t.dim(2) : t.dim(1);
  if (H <= 0 || W <= 0 || H > (1 << 15) || W > (1 << 15))
    throw Error(ErrorInfo{.message = "image size out of range", .tensor = what, .field = "shape",
                 .expected = "1..32768 per side", .got = shape_str(t.shape())});
  ImageU8 img;
  img.height = static_cast<int>(H);
  img.width = static_cast<int>(W);
  img.pixels.resize(static_cast<size_t>(H * W * 3));
  const int64_t plane = H * W;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) {
        const int64_t src = chw ? c * plane + y * W + x : (y * W + x) * 3 + c;
        uint8_t v;
        if (u8) {
          v = t.data<uint8_t>()[src];
        } else {
          // 255·x in the array's own precision (numpy keeps float32 for a float32 array).
          const double x0 = t.dtype() == DType::F32 ? t.data<float>()[src] : t.data<double>()[src];
          double f = t.dtype() == DType::F32 ? static_cast<double>(255.0f * t.data<float>()[src])
                                             : 255.0 * t.data<double>()[src];
          if (std::isnan(f))
            throw Error(ErrorInfo{.message = "image contains NaN", .tensor = what});
          // Float images are [0, 1] (openpi scales by 255). A 0..255 float image, inf or 1e30
          // would otherwise become a saturated picture the policy never saw, without a word.
          if (!(x0 >= -1e-6 && x0 <= 1 + 1e-6))
            throw Error(ErrorInfo{.message = "float image values must lie in [0, 1] (send uint8 for 0..255)",
                                  .tensor = what, .expected = "0 <= value <= 1", .got = std::to_string(x0)});
          v = static_cast<uint8_t>(std::clamp(f, 0.0, 255.0));  // truncation, as numpy's astype(uint8)
        }
        img.pixels[static_cast<size_t>((y * W + x) * 3 + c)] = v;
      }
  return img;
}

// ---- Pillow-compatible bilinear -------------------------------------------------------------
//
// Pillow computes, per output index, a window [xmin, xmin + n) of input samples and triangle
// weights normalised to sum 1, stretched by the downscale factor so every input pixel
// contributes (antialiasing). Weights become integers with 22 fractional bits (32 − 8 − 2, room
// for 8-bit values and sign), sums start at one half for rounding, and each pass clips to uint8.
// Matching those integer steps is what makes the output bit-exact, not just close.
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Window {
  int xmin = 0, n = 0;
  std::vector<int32_t> w;  // n weights, fixed point
};

std::vector<Window> pillow_windows(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);  // upscaling keeps the plain triangle
  const double support = 1.0 * filterscale;         // bilinear: triangle of radius 1
  std::vector<Window> out(static_cast<size_t>(out_size));
  const double ss = 1.0 / filterscale;  // Pillow multiplies by the reciprocal; keep its rounding
  std::vector<double> k;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    // Pillow rounds the window ends by adding 0.5 and truncating toward zero, then clamps.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = std::max(xmax - xmin, 0);
    k.assign(static_cast<size_t>(n), 0.0);
    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      const double d = std::fabs((x + xmin - center + 0.5) * ss);
      k[x] = d < 1.0 ? 1.0 - d : 0.0;
      sum += k[x];
    }
    Window& win = out[xx];
    win.xmin = xmin;
    win.n = n;
    win.w.resize(static_cast<size_t>(n));
    for (int x = 0; x < n; ++x) {
      const double v = (sum != 0.0 ? k[x] / sum : k[x]) * (1 << kPrecisionBits);
      win.w[x] = static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);  // round half away from zero
    }
  }
  return out;
}

inline uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

ImageU8 pass_horizontal(const ImageU8& in, int out_w) {
  const auto win = pillow_windows(in.width, out_w);
  ImageU8 out{in.height, out_w, std::vector<uint8_t>(static_cast<size_t>(in.height) * out_w * 3)};
  for (int y = 0; y < in.height; ++y)
    for (int xx = 0; xx < out_w; ++xx)
      for (int c = 0; c < 3; ++c) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        const Window& w = win[xx];
        for (int x = 0; x < w.n; ++x) acc += static_cast<int64_t>(in.at(y, w.xmin + x, c)) * w.w[x];
        out.pixels[(static_cast<size_t>(y) * out_w + xx) * 3 + c] = clip8(acc);
      }
  return out;
}

ImageU8 pass_vertical(const ImageU8& in, int out_h) {
  const auto win = pillow_windows(in.height, out_h);
  ImageU8 out{out_h, in.width, std::vector<uint8_t>(static_cast<size_t>(out_h) * in.width * 3)};
  for (int yy = 0; yy < out_h; ++yy) {
    const Window& w = win[yy];
    for (int x = 0; x < in.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (int y = 0; y < w.n; ++y) acc += static_cast<int64_t>(in.at(w.xmin + y, x, c)) * w.w[y];
        out.pixels[(static_cast<size_t>(yy) * in.width + x) * 3 + c] = clip8(acc);
      }
  }
  return out;
}

void check_image(const ImageU8& img, const char* what) {
  if (img.height <= 0 || img.width <= 0 || img.pixels.size() != static_cast<size_t>(img.height) * img.width * 3)
    throw Error(ErrorInfo{.message = std::string(what) + ": invalid image", .field = "size",
                 .got = dims_str(img.height, img.width)});
}

}  // namespace

ImageU8 resize_bilinear_pillow(const ImageU8& in, int out_height, int out_width) {
  check_image(in, "resize");
  if (out_height <= 0 || out_width <= 0)
    throw Error(ErrorInfo{.message = "resize target must be positive", .field = "size", .got = dims_str(out_height, out_width)});
  // Pillow skips a pass whose size does not change (with the default box) and always runs the
  // horizontal pass first; the order matters because of the clipping in between.
  ImageU8 cur = in;
  if (out_width != in.width) cur = pass_horizontal(cur, out_width);
  if (out_height != in.height) cur = pass_vertical(cur, out_height);
  return cur;
}

void resize_with_pad_size(int h, int w, int target_h, int target_w, int* out_h, int* out_w) {
  if (h <= 0 || w <= 0 || target_h <= 0 || target_w <= 0)
    throw Error(ErrorInfo{.message = "image and target sizes must be positive", .field = "size",
                 .got = dims_str(h, w) + " -> " + dims_str(target_h, target_w)});
  // Python: ratio = max(cur_width / width, cur_height / height); int(cur_height / ratio).
  const double ratio = std::max(static_cast<double>(w) / target_w, static_cast<double>(h) / target_h);
  *out_h = static_cast<int>(h / ratio);
  *out_w = static_cast<int>(w / ratio);
  if (*out_h <= 0 || *out_w <= 0)
    throw Error(ErrorInfo{.message = "image aspect ratio too extreme: a side would shrink to 0 pixels", .field = "size",
                 .expected = "a resizable image for " + dims_str(target_h, target_w), .got = dims_str(h, w)});
}

ImageU8 resize_with_pad_pillow(const ImageU8& in, int target_h, int target_w) {
  check_image(in, "resize_with_pad");
  if (in.height == target_h && in.width == target_w) return in;
  int rh = 0, rw = 0;
  resize_with_pad_size(in.height, in.width, target_h, target_w, &rh, &rw);
  const ImageU8 r = resize_bilinear_pillow(in, rh, rw);
  ImageU8 out{target_h, target_w, std::vector<uint8_t>(static_cast<size_t>(target_h) * target_w * 3, 0)};
  const int top = std::max(0, (target_h - rh) / 2), left = std::max(0, (target_w - rw) / 2);
  for (int y = 0; y < rh; ++y)
    std::copy_n(&r.pixels[static_cast<size_t>(y) * rw * 3], static_cast<size_t>(rw) * 3,
                &out.pixels[(static_cast<size_t>(y + top) * target_w + left) * 3]);
  return out;
}

Tensor image_to_model_input(const ImageU8& img) {
  check_image(img, "image_to_model_input");
  const int H = img.height, W = img.width;
  Tensor t = Tensor::zeros(DType::F32, {3, H, W});
  float* o = t.data_mut<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        o[(static_cast<size_t>(c) * H + y) * W + x] = static_cast<float>(img.at(y, x, c)) / 255.0f * 2.0f - 1.0f;
  return t;
}

Tensor resize_with_pad_torch(const ImageU8& in, int target_h, int target_w) {
  check_image(in, "resize_with_pad_torch");
  if (in.height == target_h && in.width == target_w) return image_to_model_input(in);
  int rh = 0, rw = 0;
  resize_with_pad_size(in.height, in.width, target_h, target_w, &rh, &rw);
  // F.interpolate(bilinear, align_corners=False): src = (dst + 0.5)·in/out − 0.5, clamped at 0;
  // the upper neighbour is clamped to the last pixel. No antialiasing when downscaling.
  struct Tap { int i0, i1; double l; };
  auto taps = [](int in_size, int out_size) {
    std::vector<Tap> v(static_cast<size_t>(out_size));
    const double scale = static_cast<double>(in_size) / out_size;
    for (int o = 0; o < out_size; ++o) {
      const double src = std::max((o + 0.5) * scale - 0.5, 0.0);
      const int i0 = std::min(static_cast<int>(src), in_size - 1);
      v[o] = {i0, std::min(i0 + 1, in_size - 1), src - i0};
    }
    return v;
  };
  const auto ty = taps(in.height, rh), tx = taps(in.width, rw);
  Tensor t = Tensor::zeros(DType::F32, {3, target_h, target_w});
  float* o = t.data_mut<float>();
  std::fill(o, o + t.numel(), -1.0f);
  const int top = (target_h - rh) / 2, left = (target_w - rw) / 2;
  auto px = [&](int y, int x, int c) { return static_cast<double>(in.at(y, x, c)) / 255.0 * 2.0 - 1.0; };
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < rh; ++y)
      for (int x = 0; x < rw; ++x) {
        const Tap& a = ty[y];
        const Tap& b = tx[x];
        const double top_row = (1 - b.l) * px(a.i0, b.i0, c) + b.l * px(a.i0, b.i1, c);
        const double bot_row = (1 - b.l) * px(a.i1, b.i0, c) + b.l * px(a.i1, b.i1, c);
        const double v = std::clamp((1 - a.l) * top_row + a.l * bot_row, -1.0, 1.0);
        o[(static_cast<size_t>(c) * target_h + y + top) * target_w + x + left] = static_cast<float>(v);
      }
  return t;
}

}  // namespace pi0
