// Images: decoding, observation arrays, and both resize-with-pad flavours against the goldens
// (tests/data/golden/README.md (preprocess.safetensors)).
#include <gtest/gtest.h>

#include "golden_dir.h"
#include "test_util.h"
#include <stb_image_write.h>

#include <cmath>
#include <fstream>

#include "io/safetensors.h"
#include "pi0/error.h"
#include "policy/image.h"
#include "temp_dir.h"

using namespace pi0;

namespace {

std::shared_ptr<SafeTensorsFile> golden_images() {
  return SafeTensorsFile::open(test::golden_dir() + "/preprocess.safetensors");
}

ImageU8 ramp(int h, int w) {
  ImageU8 img{h, w, std::vector<uint8_t>(static_cast<size_t>(h) * w * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] = uint8_t((y * 7 + x * 13 + c * 50) % 256);
  return img;
}

using pi0::test::error_of;

}  // namespace

// openpi's ResizeImages (Pillow bilinear, 8-bit fixed point): every golden case. The acceptance
// bar is ±1 per pixel; a faithful port of the resampler is exact, and this test demands that.
TEST(Image, PillowResizeWithPadMatchesGoldenBitExact) {
  auto f = golden_images();
  const int H = std::stoi(f->metadata().at("target_height")), W = std::stoi(f->metadata().at("target_width"));
  const int n = std::stoi(f->metadata().at("num_images"));
  ASSERT_GE(n, 6);
  int64_t total = 0, exact = 0;
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    const ImageU8 src = image_from_tensor(f->tensor("image_u8." + std::to_string(i)), "image_u8");
    const ImageU8 got = resize_with_pad_pillow(src, H, W);
    const Tensor want = f->tensor("expect.image_u8_client." + std::to_string(i));
    ASSERT_EQ(want.shape(), (Shape{H, W, 3}));
    ASSERT_EQ(got.pixels.size(), static_cast<size_t>(want.numel()));
    int max_diff = 0;
    for (int64_t k = 0; k < want.numel(); ++k) {
      const int d = std::abs(int(got.pixels[k]) - int(want.data<uint8_t>()[k]));
      max_diff = std::max(max_diff, d);
      exact += d == 0;
      ++total;
    }
    EXPECT_LE(max_diff, 1);
  }
  RecordProperty("pillow_exact_pixels", std::to_string(exact) + "/" + std::to_string(total));
  EXPECT_EQ(exact, total) << "Pillow path is within one step but not bit-exact";
}

// openpi's PyTorch fallback (F.interpolate bilinear, align_corners=False) on the float image.
TEST(Image, TorchResizeWithPadMatchesGolden) {
  auto f = golden_images();
  const int H = std::stoi(f->metadata().at("target_height")), W = std::stoi(f->metadata().at("target_width"));
  const int n = std::stoi(f->metadata().at("num_images"));
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    const ImageU8 src = image_from_tensor(f->tensor("image_u8." + std::to_string(i)), "image_u8");
    const Tensor got = resize_with_pad_torch(src, H, W);
    const Tensor want = f->tensor("expect.image." + std::to_string(i));
    ASSERT_EQ(got.shape(), want.shape());
    double max_err = 0;
    for (int64_t k = 0; k < want.numel(); ++k)
      max_err = std::max(max_err, std::fabs(double(got.data<float>()[k]) - want.data<float>()[k]));
    EXPECT_LE(max_err, 1e-5);
  }
}

TEST(Image, ModelInputScaling) {
  ImageU8 img{1, 2, {0, 255, 128, 1, 2, 3}};
  Tensor t = image_to_model_input(img);
  ASSERT_EQ(t.shape(), (Shape{3, 1, 2}));
  EXPECT_FLOAT_EQ(t.data<float>()[0], -1.0f);  // c0, x0
  EXPECT_FLOAT_EQ(t.data<float>()[1], 1.0f / 255.0f * 2.0f - 1.0f);
  EXPECT_FLOAT_EQ(t.data<float>()[2], 1.0f);  // c1, x0
  EXPECT_FLOAT_EQ(t.data<float>()[4], 128.0f / 255.0f * 2.0f - 1.0f);
}

TEST(Image, PillowResizeProperties) {
  // Constant images stay constant at any scale (weights sum to one in fixed point).
  ImageU8 flat{13, 37, std::vector<uint8_t>(13 * 37 * 3, 200)};
  for (auto [h, w] : std::vector<std::pair<int, int>>{{5, 9}, {40, 100}, {13, 10}, {1, 1}}) {
    ImageU8 r = resize_bilinear_pillow(flat, h, w);
    ASSERT_EQ(r.height, h);
    ASSERT_EQ(r.width, w);
    for (uint8_t v : r.pixels) ASSERT_EQ(v, 200);
  }
  // Same size: identity; already at target: resize_with_pad is a no-op.
  ImageU8 g = ramp(9, 11);
  EXPECT_EQ(resize_bilinear_pillow(g, 9, 11).pixels, g.pixels);
  EXPECT_EQ(resize_with_pad_pillow(g, 9, 11).pixels, g.pixels);
  // Padding: a wide image gets black bars top and bottom.
  ImageU8 wide{10, 40, std::vector<uint8_t>(10 * 40 * 3, 255)};
  ImageU8 p = resize_with_pad_pillow(wide, 20, 20);
  EXPECT_EQ(p.at(0, 10, 0), 0);
  EXPECT_EQ(p.at(19, 10, 0), 0);
  EXPECT_EQ(p.at(10, 10, 0), 255);
}

TEST(Image, ArraysHwcAndChwAgree) {
  const ImageU8 g = ramp(4, 5);
  Tensor hwc = Tensor::zeros(DType::U8, {4, 5, 3}), chw = Tensor::zeros(DType::U8, {3, 4, 5});
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) {
        hwc.data_mut<uint8_t>()[(y * 5 + x) * 3 + c] = g.at(y, x, c);
        chw.data_mut<uint8_t>()[(c * 4 + y) * 5 + x] = g.at(y, x, c);
      }
  EXPECT_EQ(image_from_tensor(hwc, "hwc").pixels, g.pixels);
  EXPECT_EQ(image_from_tensor(chw, "chw").pixels, g.pixels);
  // Float images in [0, 1] are converted as openpi does: (255·x) truncated.
  Tensor fl = Tensor::zeros(DType::F32, {1, 2, 3});
  float* d = fl.data_mut<float>();
  d[0] = 0.5f; d[1] = 1.0f; d[2] = 0.0f; d[3] = 0.999f; d[4] = 0.25f; d[5] = 0.75f;
  EXPECT_EQ(image_from_tensor(fl, "f").pixels, (std::vector<uint8_t>{127, 255, 0, 254, 63, 191}));
  // Outside [0, 1] (a 0..255 float image, inf, 1e30, negatives) is an error naming the array,
  // not a silently saturated picture.
  for (float bad : {2.0f, 255.0f, -1.0f, INFINITY, 1e30f}) {
    d[4] = bad;
    const std::string e = error_of([&] { image_from_tensor(fl, "observation/image"); });
    EXPECT_NE(e.find("[0, 1]"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("observation/image"), std::string::npos) << bad << ": " << e;
  }
}

TEST(Image, BadArraysAreClearErrors) {
  EXPECT_NE(error_of([] { image_from_tensor(Tensor::zeros(DType::U8, {4, 5, 4}), "observation/image"); })
                .find("observation/image"), std::string::npos);
  EXPECT_NE(error_of([] { image_from_tensor(Tensor::zeros(DType::U8, {4, 5}), "cam"); }).find("[4, 5]"),
            std::string::npos);
  // A uint16 (depth) image arrives widened to I32: the message says what the client may have sent.
  EXPECT_NE(error_of([] { image_from_tensor(Tensor::zeros(DType::I32, {4, 5, 3}), "cam"); }).find("uint16"),
            std::string::npos);
  Tensor nan = Tensor::zeros(DType::F32, {2, 2, 3});
  nan.data_mut<float>()[3] = NAN;
  EXPECT_NE(error_of([&] { image_from_tensor(nan, "cam"); }).find("NaN"), std::string::npos);
  // A side that would shrink to zero pixels.
  ImageU8 sliver{1, 500, std::vector<uint8_t>(1500, 1)};
  EXPECT_NE(error_of([&] { resize_with_pad_pillow(sliver, 28, 28); }).find("aspect"), std::string::npos);
}

TEST(Image, PngRoundTripAndBadFiles) {
  const ImageU8 g = ramp(6, 7);
  const std::string png = test::temp_file("ramp.png");
  write_png(png, g);
  const ImageU8 back = decode_image_file(png);
  EXPECT_EQ(back.height, 6);
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.pixels, g.pixels);

  const std::string grey = test::temp_file("grey.png");
  std::vector<uint8_t> px(6 * 7, 9);
  ASSERT_TRUE(stbi_write_png(grey.c_str(), 7, 6, 1, px.data(), 7));
  std::string e = error_of([&] { decode_image_file(grey); });
  EXPECT_NE(e.find(grey), std::string::npos) << e;
  EXPECT_NE(e.find("grey"), std::string::npos) << e;

  const std::string junk = test::temp_file("junk.png");
  std::ofstream(junk) << "definitely not a PNG";
  e = error_of([&] { decode_image_file(junk); });
  EXPECT_NE(e.find(junk), std::string::npos) << e;
  EXPECT_NE(e.find("cannot decode"), std::string::npos) << e;
  e = error_of([] { decode_image_file("/nonexistent/cam.png"); });
  EXPECT_NE(e.find("/nonexistent/cam.png"), std::string::npos) << e;
}
