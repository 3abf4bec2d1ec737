// The safetensors reader refuses every malformed file with an error naming the file and the
// tensor or field, and never reads past the end of the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "pi0/error.h"
#include "temp_dir.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

std::string tmp_path(const std::string& name) { return pi0::test::temp_file(name); }

// A raw file: 8-byte length (or `len_override`), header text, then `data_bytes` zero bytes.
std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes, int64_t len_override = -1) {
  std::string p = tmp_path(name);
  std::ofstream f(p, std::ios::binary);
  uint64_t n = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>(n >> (8 * i)));
  f << header;
  f << std::string(data_bytes, '\0');
  return p;
}

// Expects open() to fail with a message containing every fragment.
void expect_error(const std::string& path, std::initializer_list<std::string> fragments) {
  try {
    SafeTensorsFile::open(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}

}  // namespace

TEST(SafeTensors, WritesAndReadsBack) {
  std::string p = tmp_path("ok.safetensors");
  Tensor a = Tensor::from_f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = a.to(DType::BF16);
  Tensor c = Tensor::zeros(DType::U8, {3});
  write_safetensors(p, {{"a", a}, {"b", b}, {"c", c}}, {{"k", "v"}});
  auto f = SafeTensorsFile::open(p);
  ASSERT_EQ(f->entries().size(), 3u);
  EXPECT_EQ(f->metadata().at("k"), "v");
  Tensor ra = f->tensor("a");
  EXPECT_FALSE(ra.owns_memory());  // zero-copy view into the map
  EXPECT_EQ(ra.shape(), (Shape{2, 3}));
  EXPECT_EQ(ra.get_f32(5), 6.f);
  EXPECT_EQ(f->tensor("b").dtype(), DType::BF16);
  EXPECT_EQ(f->tensor("b").get_f32(4), 5.f);
  try {
    f->tensor("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST(SafeTensors, TruncatedFile) {
  expect_error(raw_file("short.safetensors", "", 0, 0).substr(0), {});
  std::string p = tmp_path("tiny.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  expect_error(p, {"too short"});
  // Header fine, data cut short.
  expect_error(raw_file("cut.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
               {"'w'", "past the end"});
}

TEST(SafeTensors, HeaderLengthBeyondFile) {
  expect_error(raw_file("len.safetensors", "{}", 0, 1000), {"header length", "past the end"});
  expect_error(raw_file("huge.safetensors", "{}", 0, int64_t{1} << 62), {"header length"});
}

TEST(SafeTensors, InvalidJson) {
  expect_error(raw_file("json.safetensors", R"({"w": {"dtype": "F32", )", 0), {"not valid JSON"});
  expect_error(raw_file("arr.safetensors", "[1,2]", 0), {"not an object"});
}

TEST(SafeTensors, UnknownDtype) {
  expect_error(raw_file("dt.safetensors", R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", 4),
               {"'w'", "dtype", "Q4"});
}

TEST(SafeTensors, OffsetsOutOfRangeOrOverlapping) {
  expect_error(raw_file("range.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8),
               {"'w'", "data_offsets"});
  expect_error(raw_file("order.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8),
               {"'w'", "begin after end"});
  expect_error(raw_file("overlap.safetensors",
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        12),
               {"overlaps", "data_offsets"});
  expect_error(raw_file("neg.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
               {"'w'", "data_offsets"});
}

TEST(SafeTensors, ShapeNotMatchingBytes) {
  expect_error(raw_file("shape.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
               {"'w'", "does not match", "12 bytes", "8 bytes"});
  // A 3 GB tensor declared in a tiny file is an error, not an allocation.
  expect_error(raw_file("big.safetensors", R"({"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}})", 8),
               {"'w'"});
  expect_error(raw_file("ovf.safetensors", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
               {"'w'", "shape"});
}

TEST(SafeTensors, MissingFile) { expect_error(tmp_path("does_not_exist.safetensors"), {"cannot open"}); }
