// An image file declares its size in a few header bytes; decoding must check that size before
// stb_image allocates for it, so a 1 KB file claiming 18000 × 18000 pixels (a 972 MB buffer)
// is an error naming the file and both sizes, not an allocation.
#include <gtest/gtest.h>

#include <stb_image_write.h>

#include <string>
#include <vector>

#include "pi0/error.h"
#include "policy/image.h"
#include "test_util.h"

using namespace pi0;
using pi0::test::error_of;

namespace {

void put32(std::string& s, uint32_t v) {
  for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>(v >> (8 * k)));
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put32(png, static_cast<uint32_t>(data.size()));
  png += type;
  png += data;
  put32(png, 0);  // CRC: stb_image does not check it, and the size check must come first anyway
}

// A syntactically complete RGB PNG declaring width × height, whose IDAT is an empty zlib stream.
std::vector<uint8_t> png_declaring(uint32_t width, uint32_t height) {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(ihdr, width);
  put32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, no filter, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  chunk(png, "IEND", "");
  return {png.begin(), png.end()};
}

}  // namespace

TEST(ImageBounds, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  const std::vector<uint8_t> png = png_declaring(18000, 18000);
  ASSERT_LT(png.size(), 100u);
  const std::string e = error_of([&] { decode_image_memory(png.data(), png.size(), "cams/huge.png"); });
  EXPECT_NE(e.find("cams/huge.png"), std::string::npos) << e;
  EXPECT_NE(e.find("too large to decode"), std::string::npos) << e;
  EXPECT_NE(e.find("at most 67108864 pixels"), std::string::npos) << e;
  EXPECT_NE(e.find("18000x18000 = 324000000 pixels"), std::string::npos) << e;
}

TEST(ImageBounds, BoundIsTheCallersAndSizesWithinItDecode) {
  std::vector<uint8_t> px(24 * 16 * 3, 7);
  std::vector<uint8_t> png;
  stbi_write_png_to_func([](void* ctx, void* data, int n) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  }, &png, 24, 16, 3, px.data(), 24 * 3);
  EXPECT_EQ(decode_image_memory(png.data(), png.size(), "ok.png").pixels, px);
  EXPECT_EQ(decode_image_memory(png.data(), png.size(), "ok.png", 384).width, 24);  // exactly at the bound
  const std::string e = error_of([&] { decode_image_memory(png.data(), png.size(), "ok.png", 383); });
  EXPECT_NE(e.find("16x24 = 384 pixels"), std::string::npos) << e;
}

// Headers stb_image itself rejects (it then names the last format it tried, "unknown image type")
// get a message that says what is wrong with them.
TEST(ImageBounds, HeadersStbRejectsGetTheirRealReason) {
  for (auto [w, h] : {std::pair<uint32_t, uint32_t>{20000, 20000}, {0xffffffffu, 1}}) {
    const std::vector<uint8_t> png = png_declaring(w, h);
    const std::string e = error_of([&] { decode_image_memory(png.data(), png.size(), "big.png"); });
    EXPECT_NE(e.find("too large to decode"), std::string::npos) << e;
    EXPECT_NE(e.find(std::to_string(h) + "x" + std::to_string(w)), std::string::npos) << e;
  }
  for (auto [w, h] : {std::pair<uint32_t, uint32_t>{0, 16}, {16, 0}}) {
    const std::vector<uint8_t> png = png_declaring(w, h);
    const std::string e = error_of([&] { decode_image_memory(png.data(), png.size(), "empty.png"); });
    EXPECT_NE(e.find("declares an empty image"), std::string::npos) << e;
  }
}
