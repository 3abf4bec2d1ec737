// The f32 and int8 GEMM paths of the cpu backend against the reference backend, through the
// Backend interface, on odd widths and tails (SigLIP's 1152 and 4304 are not powers of two; the
// denoise loop has 51 rows), every epilogue, the fused residual and the GeGLU MLP.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/int8_linear.h"
#include "ops_util.h"
#include "pi0/error.h"

using namespace pi0;
using namespace pi0::test;

namespace {

struct Case {
  Precision precision;
  double min_pcc, max_rel;
};

// f32: the same sums in another order, ≈ 1e-6 apart. int8: 8-bit steps on both operands of
// random data (no outliers), ≈ 1% of the output range.
const Case kF32Case{Precision::F32, 0.99999, 1e-4}, kInt8Case{Precision::Int8, 0.995, 0.05};

// int8 on every layer with a row hint of 2 or more (the default leaves small-M layers in float).
BackendOptions options(const Case& cs) { return {.precision = cs.precision, .int8_min_rows = 2}; }

void check_linear(const Case& cs) {
  auto ref = make_backend("reference"), cpu = make_backend("cpu", options(cs));
  std::mt19937 rng(5);
  // (rows, in, out, rows_hint): int8 applies where rows_hint > 1 and the layer is not a tiny head.
  for (auto [rows, in, out, hint] : {std::tuple{1, 1152, 4304, 768}, {3, 4304, 1152, 768}, {17, 1152, 1152, 256},
                                     {51, 1024, 4096, 51}, {51, 4096, 1024, 51}, {50, 1030, 33, 50},
                                     {51, 2048, 256, 51}, {200, 96, 70, 200}, {3, 640, 130, 1}, {5, 7, 9, 0}}) {
    for (DType dt : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << in << "->" << out << " hint " << hint << " " << dtype_name(dt));
      Tensor w = weight(out, in, rng, dt), bias = weight(1, out, rng, DType::F32).reshaped({out});
      auto wr = ref->prepare_linear(w, &bias), wc = cpu->prepare_linear(w, &bias, hint);
      M x(rows, in, rng, 1.f, 3);
      // Strided outputs (ld > cols) on the small shapes only: oneDNN 2.6 runs f32 products with a
      // bias into a strided destination on its reference kernel, minutes for the large ones.
      const int64_t pad = static_cast<int64_t>(in) * out <= (1 << 18) ? 2 : 0;
      for (Epilogue ep : {Epilogue::None, Epilogue::GeluTanh, Epilogue::Silu}) {
        M yr(rows, out, rng, 1.f, pad), yc = yr;
        yc.mat.data = yc.v.data();
        ref->linear(x.mat, *wr, yr.mat, ep);
        cpu->linear(x.mat, *wc, yc.mat, ep);
        expect_match(yr, yc, cs.min_pcc, cs.max_rel, "linear");
      }
      M yr(rows, out, rng), yc = yr;
      yc.mat.data = yc.v.data();
      ref->linear(x.mat, *wr, yr.mat, Epilogue::None, true);
      cpu->linear(x.mat, *wc, yc.mat, Epilogue::None, true);
      expect_match(yr, yc, cs.min_pcc, cs.max_rel, "linear accumulate");
    }
  }
}

void check_mlp(const Case& cs) {
  auto ref = make_backend("reference"), cpu = make_backend("cpu", options(cs));
  std::mt19937 rng(6);
  for (auto [rows, D, F] : {std::tuple{3, 64, 200}, {51, 1024, 4096}, {17, 1152, 4304}}) {
    SCOPED_TRACE(testing::Message() << rows << " rows " << D << " -> " << F);
    Tensor g = weight(F, D, rng, DType::BF16), u = weight(F, D, rng, DType::BF16), d = weight(D, F, rng, DType::BF16);
    auto gr = ref->prepare_linear(g, nullptr), ur = ref->prepare_linear(u, nullptr), dr = ref->prepare_linear(d, nullptr);
    auto gc = cpu->prepare_linear(g, nullptr, rows), uc = cpu->prepare_linear(u, nullptr, rows),
         dc = cpu->prepare_linear(d, nullptr, rows);
    M x(rows, D, rng), g1(rows, F, rng), u1(rows, F, rng), g2(rows, F, rng), u2(rows, F, rng);
    for (bool acc : {false, true}) {
      M yr(rows, D, rng), yc = yr;
      yc.mat.data = yc.v.data();
      ref->mlp_geglu(x.mat, *gr, *ur, *dr, g1.mat, u1.mat, yr.mat, acc);
      cpu->mlp_geglu(x.mat, *gc, *uc, *dc, g2.mat, u2.mat, yc.mat, acc);
      expect_match(yr, yc, cs.min_pcc, cs.max_rel, acc ? "mlp accumulate" : "mlp");
    }
  }
}

bool int8_available() { return cpu::int8_support().ok; }

}  // namespace

TEST(GemmPrecisions, F32Linear) { check_linear(kF32Case); }
TEST(GemmPrecisions, F32Mlp) { check_mlp(kF32Case); }

TEST(GemmPrecisions, Int8Linear) {
  if (!int8_available()) GTEST_SKIP() << "no int8 kernel for this CPU";
  check_linear(kInt8Case);
}

TEST(GemmPrecisions, Int8Mlp) {
  if (!int8_available()) GTEST_SKIP() << "no int8 kernel for this CPU";
  check_mlp(kInt8Case);
}

// Both schemes are exact on the zero vector and keep a zero row at zero (scale 0, no NaN).
TEST(GemmPrecisions, Int8ZeroRows) {
  if (!int8_available()) GTEST_SKIP() << "no int8 kernel for this CPU";
  auto cpu = make_backend("cpu", {.precision = Precision::Int8, .int8_min_rows = 2});
  std::mt19937 rng(7);
  Tensor w = weight(64, 128, rng, DType::F32);
  auto wc = cpu->prepare_linear(w, nullptr, 8);
  M x(4, 128, rng), y(4, 64, rng);
  for (int64_t k = 0; k < 128; ++k) x.mat.row(2)[k] = 0.f;
  cpu->linear(x.mat, *wc, y.mat);
  for (int64_t j = 0; j < 64; ++j) EXPECT_EQ(y.mat.row(2)[j], 0.f);
}

// Every int8 kernel computes the same exact s32 sums, so the layer's output may differ between
// kernels only by the epilogue's float rounding (the VNNI kernel applies it in registers, the
// others in a pass over s32): on tails, K blocks (4304, 9000 > 4096), strided outputs, every
// post-op, the residual and the fused GeGLU product.
TEST(GemmPrecisions, Int8KernelsAgree) {
  if (!cpu::gemm_s8_supported()) GTEST_SKIP() << "needs AVX2";
  std::vector<cpu::Int8Kernel> others;
  if (cpu::gemm_s8_vnni_supported()) others.push_back(cpu::Int8Kernel::HandVnni);
  if (cpu::gemm_s8_avxvnni_supported()) others.push_back(cpu::Int8Kernel::HandAvxVnni);
  if (others.empty()) GTEST_SKIP() << "no VNNI of either kind on this CPU";
  std::mt19937 rng(8);
  for (auto [rows, in, out] : {std::tuple{1, 1024, 3072}, {7, 4304, 1152}, {51, 1024, 130}, {13, 9000, 70}, {6, 36, 17}})
    for (cpu::Int8Kernel other : others) {
      SCOPED_TRACE(testing::Message() << rows << "x" << in << "->" << out << " kernel " << static_cast<int>(other));
      Tensor w = weight(out, in, rng, DType::BF16), bias = weight(1, out, rng, DType::F32).reshaped({out});
      const auto avx2 = cpu::quantize_weights(w, rows, cpu::Int8Scheme::Hadamard, cpu::Int8Kernel::HandAvx2);
      const auto vnni = cpu::quantize_weights(w, rows, cpu::Int8Scheme::Hadamard, other);
      M x(rows, in, rng, 1.f, 3);
      for (cpu::Post post : {cpu::Post::None, cpu::Post::GeluTanh, cpu::Post::Silu})
        for (bool acc : {false, true}) {
          M ya(rows, out, rng, 1.f, 2), yv = ya;
          yv.mat.data = yv.v.data();
          M mul(rows, out, rng, 1.f, 1);  // GeGLU's fused gate factor, on half the combinations
          const Mat* mp = acc == (post == cpu::Post::GeluTanh) ? &mul.mat : nullptr;
          cpu::int8_linear(x.mat, avx2, bias.data<float>(), post, acc, ya.mat, mp);
          cpu::int8_linear(x.mat, vnni, bias.data<float>(), post, acc, yv.mat, mp);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < out + 2; ++j)  // the 2 padding columns too: untouched by both
              ASSERT_NEAR(ya.mat.row(r)[j], yv.mat.row(r)[j], 1e-5f * (1.f + std::abs(ya.mat.row(r)[j])))
                  << "row " << r << " col " << j << " post " << static_cast<int>(post) << " acc " << acc;
        }
    }
}

// Q, K and V through one linears call (the input converted or quantised once) give exactly what
// three linear calls give, in every precision this CPU has; and a GeGLU pair merged at load
// (pair_geglu: int8 on the VNNI kernel, gelu(gate) ⊙ up in the kernel's epilogue) computes
// exactly what the separate gate and up products do, and the MLP within a bf16 rounding: on
// widths that are not multiples of the merged layout's 32 channels, K blocks (4500 > 4096), row
// tails and the residual.
TEST(GemmPrecisions, SharedInputProductsEqualSeparateOnes) {
  std::vector<Precision> precisions{Precision::F32};
  if (cpu::dnnl_bf16_supported()) precisions.push_back(Precision::BF16);
  if (int8_available()) precisions.push_back(Precision::Int8);
  std::mt19937 rng(9);
  auto same = [](const M& a, const M& b, const char* what) {
    for (int64_t r = 0; r < a.mat.rows; ++r)
      for (int64_t j = 0; j < a.mat.cols; ++j)
        ASSERT_EQ(a.mat.row(r)[j], b.mat.row(r)[j]) << what << " row " << r << " col " << j;
  };
  for (Precision p : precisions) {
    auto cpu = make_backend("cpu", {.precision = p, .int8_min_rows = 2});
    for (auto [rows, D, N, kv] : {std::tuple{13, 192, 256, 64}, {51, 1024, 512, 256}, {7, 4500, 40, 40}}) {
      SCOPED_TRACE(testing::Message() << precision_name(p) << " " << rows << "x" << D << "->" << N << "+" << kv << "+" << kv);
      Tensor wq = weight(N, D, rng, DType::BF16), wk = weight(kv, D, rng, DType::BF16), wv = weight(kv, D, rng, DType::BF16);
      Tensor bias = weight(1, kv, rng, DType::F32).reshaped({kv});
      auto q = cpu->prepare_linear(wq, nullptr, rows), k = cpu->prepare_linear(wk, &bias, rows),
           v = cpu->prepare_linear(wv, nullptr, rows);
      M x(rows, D, rng, 1.f, 3);
      M q1(rows, N, rng), k1(rows, kv, rng), v1(rows, kv, rng), q2 = q1, k2 = k1, v2 = v1;
      q2.mat.data = q2.v.data();
      k2.mat.data = k2.v.data();
      v2.mat.data = v2.v.data();
      cpu->linear(x.mat, *q, q1.mat);
      cpu->linear(x.mat, *k, k1.mat);
      cpu->linear(x.mat, *v, v1.mat);
      const LinearWeight* ws[] = {q.get(), k.get(), v.get()};
      const Mat ys[] = {q2.mat, k2.mat, v2.mat};
      cpu->linears(x.mat, ws, ys);
      same(q1, q2, "q");
      same(k1, k2, "k");
      same(v1, v2, "v");

      if (p != Precision::Int8) continue;  // only int8 merges (float pair_geglu is a no-op)
      const int64_t F = N + 8;  // not a multiple of 16: the merged layout's padding and masked tail
      Tensor g = weight(F, D, rng, DType::BF16), u = weight(F, D, rng, DType::BF16), d = weight(D, F, rng, DType::BF16);
      auto gs = cpu->prepare_linear(g, nullptr, rows), us = cpu->prepare_linear(u, nullptr, rows),
           ds = cpu->prepare_linear(d, nullptr, rows);
      auto gp = cpu->prepare_linear(g, nullptr, rows), up = cpu->prepare_linear(u, nullptr, rows);
      cpu->pair_geglu(*gp, *up);
      M gb(rows, F, rng), ub(rows, F, rng);
      for (bool acc : {false, true}) {
        M y1(rows, D, rng, 1.f, 1), y2 = y1;
        y2.mat.data = y2.v.data();
        cpu->mlp_geglu(x.mat, *gs, *us, *ds, gb.mat, ub.mat, y1.mat, acc);
        cpu->mlp_geglu(x.mat, *gp, *up, *ds, gb.mat, ub.mat, y2.mat, acc);
        // Merged, gelu(gate) ⊙ up reaches down's quantiser in bf16, not f32: a rounding apart.
        expect_match(y1, y2, 0.9999, 0.01, acc ? "mlp accumulate" : "mlp");
      }
      if (cpu::int8_support().kernel == cpu::Int8Kernel::HandVnni) {
        // The merged product itself is exact: its f32 epilogue gives what gate (GELU) then up (⊙
        // gate) give, residual included, and its bf16 output is that value rounded to bf16.
        const auto qg = cpu::quantize_weights(g, rows, cpu::Int8Scheme::Hadamard, cpu::Int8Kernel::HandVnni);
        const auto qu = cpu::quantize_weights(u, rows, cpu::Int8Scheme::Hadamard, cpu::Int8Kernel::HandVnni);
        const auto pair = cpu::merge_geglu(qg, qu);
        for (bool acc : {false, true}) {
          M h1(rows, F, rng, 1.f, 2), h2 = h1;
          h2.mat.data = h2.v.data();
          cpu::int8_linear(x.mat, qg, nullptr, cpu::Post::GeluTanh, false, gb.mat);
          cpu::int8_linear(x.mat, qu, nullptr, cpu::Post::None, acc, h1.mat, &gb.mat);
          cpu::int8_linear(x.mat, pair, nullptr, cpu::Post::None, acc, h2.mat);
          same(h1, h2, acc ? "merged product accumulate" : "merged product");
        }
        std::vector<uint16_t> hb(static_cast<size_t>(rows * F));
        cpu::int8_geglu_bf16(x.mat, pair, hb.data(), F);
        M h(rows, F, rng);
        cpu::int8_linear(x.mat, pair, nullptr, cpu::Post::None, false, h.mat);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < F; ++j) ASSERT_EQ(hb[r * F + j], f32_to_bf16(h.mat.row(r)[j])) << "bf16 row " << r << " col " << j;

        M y(rows, N, rng);  // merged: the halves are no longer plain layers
        EXPECT_THROW(cpu->linear(x.mat, *up, y.mat), Error);
      }
    }
  }
}
