// Precision plumbing: names, the auto rule on injected probe results (no timing here), what each
// backend accepts, and the Hadamard transform the int8 scheme rests on.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/int8_linear.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/hadamard.h"
#include "backend/ops.h"
#include "backend/precision.h"
#include "golden_dir.h"
#include "model/checkpoint.h"
#include "model/layout.h"
#include "model/weights.h"
#include "pi0/error.h"

using namespace pi0;

TEST(Precision, ParseAndName) {
  for (Precision p : {Precision::Auto, Precision::BF16, Precision::F32, Precision::Int8})
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  EXPECT_THROW(parse_precision("fp16"), Error);
  EXPECT_THROW(parse_precision("F32"), Error);
}

TEST(Precision, AutoPicksTheMeasuredFasterType) {
  // The Intel VM of issue 13: half-rate vdpbf16ps, fast fp32 FMA.
  PrecisionChoice c = choose_precision({.bf16_gflops = 150, .f32_gflops = 310, .has_bf16 = true});
  EXPECT_EQ(c.precision, Precision::F32);
  EXPECT_NE(c.reason.find("f32 310"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("bf16 150"), std::string::npos) << c.reason;
  // Zen 4/5 (full-rate bf16) or AMX: bf16.
  EXPECT_EQ(choose_precision({.bf16_gflops = 880, .f32_gflops = 440, .has_bf16 = true}).precision, Precision::BF16);
  // Near-ties go to bf16 (half the weight memory); beyond 5% to f32.
  EXPECT_EQ(choose_precision({.bf16_gflops = 300, .f32_gflops = 312, .has_bf16 = true}).precision, Precision::BF16);
  EXPECT_EQ(choose_precision({.bf16_gflops = 300, .f32_gflops = 320, .has_bf16 = true}).precision, Precision::F32);
  // No bf16 matmul at all: f32 whatever the numbers say.
  c = choose_precision({.bf16_gflops = 1000, .f32_gflops = 1, .has_bf16 = false});
  EXPECT_EQ(c.precision, Precision::F32);
  EXPECT_NE(c.reason.find("no bf16"), std::string::npos) << c.reason;
}

TEST(Precision, ReferenceComputesInF32Only) {
  EXPECT_EQ(make_backend("reference")->precision(), Precision::F32);
  EXPECT_EQ(make_backend("reference", {.precision = Precision::F32})->precision(), Precision::F32);
  EXPECT_THROW(make_backend("reference", {.precision = Precision::Int8}), Error);
  EXPECT_THROW(make_backend("reference", {.precision = Precision::BF16}), Error);
}

TEST(Precision, CpuResolvesEveryRequest) {
  auto a = make_backend("cpu");
  EXPECT_NE(a->precision(), Precision::Auto);
  EXPECT_NE(a->precision(), Precision::Int8);  // auto never picks int8
  EXPECT_EQ(a->precision_reason().rfind("auto: ", 0), 0u) << a->precision_reason();
  EXPECT_EQ(make_backend("cpu", {.precision = Precision::F32})->precision(), Precision::F32);
  if (cpu::dnnl_bf16_supported()) EXPECT_EQ(make_backend("cpu", {.precision = Precision::BF16})->precision(), Precision::BF16);
  else EXPECT_THROW(make_backend("cpu", {.precision = Precision::BF16}), Error);
  if (cpu::int8_support().ok) EXPECT_EQ(make_backend("cpu", {.precision = Precision::Int8})->precision(), Precision::Int8);
  else EXPECT_THROW(make_backend("cpu", {.precision = Precision::Int8}), Error);
}

TEST(Hadamard, BlockIsTheLargestPowerOfTwoDividingK) {
  EXPECT_EQ(cpu::hadamard_block(2048), 2048);
  EXPECT_EQ(cpu::hadamard_block(16384), 2048);
  EXPECT_EQ(cpu::hadamard_block(1152), 128);
  EXPECT_EQ(cpu::hadamard_block(4304), 16);
  EXPECT_EQ(cpu::hadamard_block(1024), 1024);
  EXPECT_EQ(cpu::hadamard_block(7), 1);
  EXPECT_EQ(cpu::hadamard_block(6), 2);
}

TEST(Hadamard, TransformIsOrthogonalUpToScaleAndMatchesTheDefinition) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.f, 1.f);
  for (int block : {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 2048}) {
    SCOPED_TRACE(block);
    const int64_t len = 3 * block;
    std::vector<float> x(len), y;
    for (auto& v : x) v = n(rng);
    y = x;
    cpu::fwht_blocks(y.data(), len, block);
    // H[i][j] = (−1)^popcount(i & j) (Sylvester order).
    for (int64_t b = 0; b < len; b += block)
      for (int i = 0; i < block; i += std::max(1, block / 16)) {
        double want = 0;
        for (int j = 0; j < block; ++j) want += (__builtin_popcount(i & j) % 2 ? -1.0 : 1.0) * x[b + j];
        EXPECT_NEAR(y[b + i], want, 1e-3 * std::sqrt(static_cast<double>(block)));
      }
    cpu::fwht_blocks(y.data(), len, block);  // H·H = block·I
    for (int64_t i = 0; i < len; ++i) EXPECT_NEAR(y[i], block * x[i], 1e-3 * block);
  }
}

// The quantiser's one-pass rotation (registers, fused max |y|) gives the bits of the plain
// level-by-level loop and the exact max, from another buffer or in place, on every block it takes
// and several blocks per row; so does fwht_blocks (the weights' rotation must match the rows').
TEST(Hadamard, OnePassTransformWithMaxEqualsTheLevelByLevelLoop) {
  std::mt19937 rng(4);
  std::normal_distribution<float> n(0.f, 1.f);
  for (int block : {16, 32, 64, 128, 256, 512, 1024, 2048})
    for (int64_t blocks : {1, 3}) {
      SCOPED_TRACE(testing::Message() << "block " << block << " x " << blocks);
      const int64_t len = blocks * block;
      std::vector<float> x(len), want, got(len);
      for (auto& v : x) v = n(rng) * (1.f + 50.f * (rng() % 97 == 0));  // a few outliers
      want = x;
      for (int64_t b = 0; b < len; b += block)  // levels h = 1, 2, 4, ..., lower partner first
        for (int h = 1; h < block; h *= 2)
          for (int i = 0; i < block; i += 2 * h)
            for (int j = i; j < i + h; ++j) {
              const float u = want[b + j], v = want[b + j + h];
              want[b + j] = u + v;
              want[b + j + h] = u - v;
            }
      std::vector<float> blocks_out = x;
      cpu::fwht_blocks(blocks_out.data(), len, block);
      for (int64_t i = 0; i < len; ++i) ASSERT_EQ(blocks_out[i], want[i]) << "fwht_blocks " << i;
      if (!cpu::has_avx512()) continue;  // the one-pass transform is AVX-512 only
      float m = 0.f;
      for (float v : want) m = std::max(m, std::fabs(v));
      EXPECT_EQ(cpu::fwht_blocks_absmax(x.data(), got.data(), len, block), m);
      for (int64_t i = 0; i < len; ++i) ASSERT_EQ(got[i], want[i]) << i;
      EXPECT_EQ(cpu::fwht_blocks_absmax(x.data(), x.data(), len, block), m);  // in place
      for (int64_t i = 0; i < len; ++i) ASSERT_EQ(x[i], want[i]) << i;
    }
}

// The token table (a lookup, not a product) follows the compute type: an F32 checkpoint's stays
// f32 where the backend computes in f32 and becomes bf16 otherwise (half the memory: 1.05 GB
// instead of 2.1 for full-size models); a bf16 checkpoint's stays bf16.
TEST(Precision, TokenTableIsBf16UnlessTheBackendComputesInF32) {
  const Checkpoint f32 = open_checkpoint(test::golden("tiny_pi0")), bf16 = open_checkpoint(test::golden("tiny_pi0_bf16"));
  ASSERT_EQ(f32.at(names::kEmbedding).dtype(), DType::F32);
  ASSERT_EQ(bf16.at(names::kEmbedding).dtype(), DType::BF16);
  auto ref = make_backend("reference"), cpu32 = make_backend("cpu", {.precision = Precision::F32});
  EXPECT_EQ(prepare_weights(f32, *ref).embedding.dtype(), DType::F32);
  EXPECT_EQ(prepare_weights(f32, *cpu32).embedding.dtype(), DType::F32);
  EXPECT_EQ(prepare_weights(bf16, *cpu32).embedding.dtype(), DType::BF16);
  if (cpu::int8_support().ok) {
    auto i8 = make_backend("cpu", {.precision = Precision::Int8});
    const Tensor t = prepare_weights(f32, *i8).embedding;
    EXPECT_EQ(t.dtype(), DType::BF16);
    const Tensor src = f32.at(names::kEmbedding);
    for (int64_t i = 0; i < src.numel(); i += 97) ASSERT_EQ(t.get_f32(i), bf16_to_f32(f32_to_bf16(src.get_f32(i)))) << i;
  }
}
