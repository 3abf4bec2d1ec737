// The GEMM kernels of the cpu backend on their own, against a double-precision product of the
// same bf16 inputs: every product of two bf16 values is exact in f32, so only the f32
// accumulation order differs and the tolerance can be tight. Shapes hit every tile remainder
// (rows % 4, columns % 6, column blocks % 48) and K tails (K % 32, K split into passes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/gemm_avx512bf16.h"
#include "backend/cpu/kernels.h"
#include "pi0/tensor.h"

using namespace pi0;

namespace {

struct Case {
  int64_t M, K, N;
};

float gelu(double x) { return static_cast<float>(0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))); }
float silu(double x) { return static_cast<float>(x / (1 + std::exp(-x))); }

}  // namespace

TEST(GemmKernels, Avx512Bf16MatchesExactProduct) {
  if (!cpu::has_avx512_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Case c : {Case{1, 1, 1}, {1, 31, 5}, {3, 33, 7}, {4, 64, 6}, {5, 100, 13}, {17, 47, 49}, {51, 1024, 97},
                 {2, 4200, 50}, {9, 2049, 3}}) {
    const int64_t lda = c.K + 3, ldw = c.K + 5, ldc = c.N + 2;  // strides that are not the widths
    std::vector<uint16_t> a(c.M * lda), w(c.N * ldw);
    for (auto& x : a) x = f32_to_bf16(nd(rng));
    for (auto& x : w) x = f32_to_bf16(nd(rng));
    std::vector<float> bias(c.N);
    for (auto& x : bias) x = nd(rng);
    for (cpu::Post post : {cpu::Post::None, cpu::Post::GeluTanh, cpu::Post::Silu}) {
      for (bool accumulate : {false, true}) {
        if (accumulate && post != cpu::Post::None) continue;
        for (bool c_bf16 : {false, true}) {
          SCOPED_TRACE(testing::Message() << c.M << "x" << c.K << "x" << c.N << " post " << static_cast<int>(post)
                                          << " acc " << accumulate << " bf16 out " << c_bf16);
          std::vector<float> cf(c.M * ldc);
          std::vector<uint16_t> cb(c.M * ldc);
          for (size_t i = 0; i < cf.size(); ++i) cb[i] = f32_to_bf16(cf[i] = nd(rng));
          const std::vector<float> before = cf;
          cpu::MatmulSpec s{.M = c.M, .K = c.K, .N = c.N, .lda = lda, .b_sk = 1, .b_sn = ldw, .ldc = ldc,
                            .c_bf16 = c_bf16, .bias = true, .post = post, .accumulate = accumulate};
          cpu::gemm_bf16_nk(s, a.data(), w.data(), bias.data(), c_bf16 ? static_cast<void*>(cb.data()) : cf.data());
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) {
              double dot = bias[j], mag = std::fabs(bias[j]);
              for (int64_t k = 0; k < c.K; ++k) {
                const double p = double(bf16_to_f32(a[i * lda + k])) * bf16_to_f32(w[j * ldw + k]);
                dot += p;
                mag += std::fabs(p);
              }
              double want = post == cpu::Post::GeluTanh ? gelu(dot) : post == cpu::Post::Silu ? silu(dot) : dot;
              // bf16(before) is what the bf16 destination held.
              if (accumulate) want += c_bf16 ? bf16_to_f32(f32_to_bf16(before[i * ldc + j])) : before[i * ldc + j];
              const double got = c_bf16 ? bf16_to_f32(cb[i * ldc + j]) : cf[i * ldc + j];
              const double tol = 1e-5 * (mag + 1) + (c_bf16 ? std::fabs(want) / 128 : 0);
              ASSERT_NEAR(got, want, tol) << "at " << i << "," << j;
            }
          // Padding between rows is never written.
          for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = c.N; j < ldc; ++j)
              if (c_bf16) ASSERT_EQ(cb[i * ldc + j], f32_to_bf16(before[i * ldc + j]));
              else ASSERT_EQ(cf[i * ldc + j], before[i * ldc + j]);
        }
      }
    }
  }
}

// PI0_CPU_ISA=avx2 (the CpuBackend.Avx2Path ctest entry runs the op and golden tests that way)
// must switch every AVX-512 path off, oneDNN's bf16 included, so those tests check the code an
// AVX2-only CPU runs.
TEST(CpuIsa, CapIsHonoured) {
  const char* e = std::getenv("PI0_CPU_ISA");
  if (e && std::string(e) == "avx2") {
    EXPECT_FALSE(cpu::has_avx512());
    EXPECT_FALSE(cpu::has_avx512_bf16());
    EXPECT_FALSE(cpu::dnnl_bf16_supported());
  } else {
    EXPECT_EQ(cpu::has_avx512(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"));
  }
}
