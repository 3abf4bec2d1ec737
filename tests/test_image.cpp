// openpi's two resize-with-pad pipelines against the golden image cases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "io/safetensors.h"
#include "pi0/error.h"
#include "policy/image.h"
#include "temp_dir.h"

using namespace pi0;

namespace {
std::string golden(const std::string& rel) { return std::string(PI0_GOLDEN_DIR) + "/" + rel; }
ImageU8 from(const Tensor& t) { return image_from_tensor(t, "test"); }
}  // namespace

TEST(Image, PillowResizeWithPadIsBitExact) {
  auto f = SafeTensorsFile::open(golden("preprocess.safetensors"));
  const int n = std::stoi(f->metadata().at("num_images")), H = std::stoi(f->metadata().at("target_height")),
            W = std::stoi(f->metadata().at("target_width"));
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    ImageU8 out = resize_with_pad_pil(from(f->tensor("image_u8." + std::to_string(i))), H, W);
    Tensor exp = f->tensor("expect.image_u8_client." + std::to_string(i));
    ASSERT_EQ(out.hwc.size(), static_cast<size_t>(exp.numel()));
    int diff = 0;
    for (int64_t k = 0; k < exp.numel(); ++k) diff += out.hwc[k] != exp.data<uint8_t>()[k];
    EXPECT_EQ(diff, 0) << "pixels differing from Pillow";
  }
}

TEST(Image, TorchResizeWithPadWithinTolerance) {
  auto f = SafeTensorsFile::open(golden("preprocess.safetensors"));
  const int n = std::stoi(f->metadata().at("num_images")), H = std::stoi(f->metadata().at("target_height")),
            W = std::stoi(f->metadata().at("target_width"));
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    Tensor out = resize_with_pad_torch(from(f->tensor("image_u8." + std::to_string(i))), H, W);
    Tensor exp = f->tensor("expect.image." + std::to_string(i));
    ASSERT_EQ(out.shape(), exp.shape());
    float worst = 0;
    for (int64_t k = 0; k < exp.numel(); ++k) worst = std::max(worst, std::abs(out.data<float>()[k] - exp.get_f32(k)));
    EXPECT_LE(worst, 1e-5f);
  }
}

TEST(Image, LayoutsAndModelInput) {
  Tensor hwc = Tensor::zeros(DType::U8, {2, 4, 3}), chw = Tensor::zeros(DType::U8, {3, 2, 4});
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) {
        const uint8_t v = static_cast<uint8_t>(10 * y + 3 * x + 100 * c);
        hwc.data_mut<uint8_t>()[(y * 4 + x) * 3 + c] = v;
        chw.data_mut<uint8_t>()[(c * 2 + y) * 4 + x] = v;
      }
  EXPECT_EQ(from(hwc).hwc, from(chw).hwc);
  Tensor m = to_model_input(from(hwc));
  EXPECT_EQ(m.shape(), (Shape{3, 2, 4}));
  EXPECT_FLOAT_EQ(m.data<float>()[0], 0.f / 255.f * 2.f - 1.f);
  EXPECT_FLOAT_EQ(m.data<float>()[8 + 5], (100.f + 10 + 3) / 255.f * 2.f - 1.f);
  EXPECT_THROW(from(Tensor::zeros(DType::U8, {4, 4})), Error);
  EXPECT_THROW(from(Tensor::zeros(DType::U8, {4, 4, 2})), Error);
  EXPECT_THROW(from(Tensor::zeros(DType::I32, {4, 4, 3})), Error);
}

TEST(Image, DecodeRefusesBadFiles) {
  const std::string junk = pi0::test::temp_file("junk.png");
  std::ofstream(junk) << "not an image";
  try {
    decode_image_file(junk);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_image_file("/nonexistent/x.png"), Error);
}
