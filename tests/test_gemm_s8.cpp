// The hand-written int8 GEMMs are exact (s32 sums of s8 products), so they must equal a plain loop
// bit for bit: on every tail of their tiles (AVX2: 4 rows × 16 channels; VNNI: 6 rows × 64 channels,
// K blocks of 4096) and 4-byte k-steps, on π0's odd widths, and at the extremes ±127 where a
// saturating s16 step (AVX2) or a wrong +128 offset correction (VNNI) would show.
#include <gtest/gtest.h>

#include <random>
#include <tuple>
#include <vector>

#include "backend/cpu/gemm_s8.h"

using namespace pi0;

namespace {

std::vector<int32_t> plain(const std::vector<int8_t>& a, const std::vector<int8_t>& w, int64_t M, int64_t K, int64_t N) {
  std::vector<int32_t> c(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += int32_t{a[m * K + k]} * int32_t{w[n * K + k]};
      c[m * N + n] = s;
    }
  return c;
}

// A with rows of lda = Kp bytes (zeros after K), as the int8 layer hands it over.
std::vector<int8_t> padded(const std::vector<int8_t>& a, int64_t M, int64_t K, int64_t Kp) {
  std::vector<int8_t> p(static_cast<size_t>(M * Kp), 0);
  for (int64_t m = 0; m < M; ++m) std::copy(a.begin() + m * K, a.begin() + (m + 1) * K, p.begin() + m * Kp);
  return p;
}

enum class Kernel { Avx2, Vnni, AvxVnni };

void check(int64_t M, int64_t K, int64_t N, std::mt19937& rng, int mode, Kernel kernel = Kernel::Avx2) {
  SCOPED_TRACE(testing::Message() << M << "x" << K << "x" << N << " mode " << mode << (kernel == Kernel::Vnni ? " vnni" : kernel == Kernel::AvxVnni ? " avx-vnni" : " avx2"));
  std::uniform_int_distribution<int> d(-127, 127);
  auto value = [&](int sign) -> int8_t { return static_cast<int8_t>(mode == 0 ? d(rng) : sign * 127); };
  std::vector<int8_t> a(static_cast<size_t>(M * K)), w(static_cast<size_t>(N * K));
  // mode 1: every product +127·127 (the largest pair sum); mode 2: alternating signs.
  for (size_t i = 0; i < a.size(); ++i) a[i] = value(mode == 2 && i % 2 ? -1 : 1);
  for (size_t i = 0; i < w.size(); ++i) w[i] = value(mode == 2 && i % 3 ? -1 : 1);
  const cpu::S8Panels b = cpu::pack_s8_panels(w.data(), N, K);
  const std::vector<int8_t> ap = padded(a, M, K, b.Kp);
  const int64_t ldc = N + 3;  // a strided C: columns past N must stay untouched
  std::vector<int32_t> c(static_cast<size_t>(M * ldc), -7);
  if (kernel == Kernel::Avx2) {
    cpu::gemm_s8(ap.data(), b.Kp, M, b, c.data(), ldc);
  } else {
    std::vector<uint8_t> au(ap.size());  // the +128 offset the quantiser writes for VNNI
    for (size_t i = 0; i < ap.size(); ++i) au[i] = static_cast<uint8_t>(ap[i] ^ 0x80);
    if (kernel == Kernel::Vnni) cpu::gemm_s8_vnni(au.data(), b.Kp, M, b, c.data(), ldc);
    else cpu::gemm_s8_avxvnni(au.data(), b.Kp, M, b, c.data(), ldc);
  }
  const std::vector<int32_t> want = plain(a, w, M, K, N);
  int bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N && bad < 5; ++n)
      if (c[m * ldc + n] != want[m * N + n]) {
        ADD_FAILURE() << "C[" << m << "][" << n << "] = " << c[m * ldc + n] << ", want " << want[m * N + n];
        ++bad;
      }
    for (int64_t n = N; n < ldc; ++n) ASSERT_EQ(c[m * ldc + n], -7) << "wrote past N in row " << m;
  }
}

}  // namespace

TEST(GemmS8, EqualsThePlainLoopOnTailsAndOddWidths) {
  if (!cpu::gemm_s8_supported()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(11);
  for (auto [M, K, N] : {std::tuple{1, 4, 16}, {1, 1, 1}, {3, 5, 17}, {4, 8, 15}, {5, 7, 33}, {7, 1030, 9},
                         {51, 1024, 64}, {17, 1152, 70}, {9, 4304, 48}, {2, 2050, 31}, {6, 13, 8}})
    check(M, K, N, rng, 0);
}

TEST(GemmS8, ExactAtTheExtremes) {
  if (!cpu::gemm_s8_supported()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(12);
  for (int mode : {1, 2}) check(5, 4304, 19, rng, mode);
}

TEST(GemmS8Vnni, EqualsThePlainLoopOnTailsAndOddWidths) {
  if (!cpu::gemm_s8_vnni_supported()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  std::mt19937 rng(13);
  // Rows 1..13 cover every row tail of the 6-row tile, N every panel-group tail of 64 channels,
  // K = 9000 three K blocks (the last one short). From 256 rows on, runs of 4 groups take turns
  // on each row tile: 257 rows with 359 channels (5 groups + a short one, split over the threads),
  // at one K block and at two.
  for (auto [M, K, N] : {std::tuple{1, 4, 16}, {1, 1, 1}, {3, 5, 17}, {4, 8, 15}, {5, 7, 33}, {7, 1030, 9},
                         {51, 1024, 64}, {17, 1152, 70}, {9, 4304, 48}, {2, 2050, 31}, {6, 13, 8}, {13, 64, 129},
                         {12, 9000, 80}, {8, 256, 200}, {11, 36, 113}, {257, 1030, 359}, {256, 4100, 140}})
    check(M, K, N, rng, 0, Kernel::Vnni);
}

TEST(GemmS8Vnni, ExactAtTheExtremes) {
  if (!cpu::gemm_s8_vnni_supported()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  std::mt19937 rng(14);
  for (int mode : {1, 2}) check(5, 16384, 19, rng, mode, Kernel::Vnni);
}

TEST(GemmS8AvxVnni, EqualsThePlainLoopOnTailsAndOddWidths) {
  if (!cpu::gemm_s8_avxvnni_supported()) GTEST_SKIP() << "no AVX-VNNI on this CPU";
  std::mt19937 rng(15);
  for (auto [M, K, N] : {std::tuple{1, 4, 16}, {1, 1, 1}, {3, 5, 17}, {4, 8, 15}, {5, 7, 33}, {7, 1030, 9},
                         {51, 1024, 64}, {17, 1152, 70}, {9, 4304, 48}, {2, 2050, 31}, {6, 13, 8}, {13, 64, 129}})
    check(M, K, N, rng, 0, Kernel::AvxVnni);
}

TEST(GemmS8AvxVnni, ExactAtTheExtremes) {
  if (!cpu::gemm_s8_avxvnni_supported()) GTEST_SKIP() << "no AVX-VNNI on this CPU";
  std::mt19937 rng(16);
  for (int mode : {1, 2}) check(5, 16384, 19, rng, mode, Kernel::AvxVnni);
}
