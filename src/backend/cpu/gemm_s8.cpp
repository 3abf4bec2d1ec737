#include "backend/cpu/gemm_s8.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/cpu/avx2_math.h"
#include "backend/cpu/kernels.h"
#include "pi0/threads.h"

namespace pi0::cpu {

namespace {

constexpr int kNR = 16;  // output channels per panel (two ymm of s32)
constexpr int kMR = 4;   // rows per micro-tile: 8 accumulators + 6 operand registers of 16

// acc += a · w over one k-step of 4 bytes for 8 channels: vpsignb moves w's sign onto a,
// vpmaddubsw(|w|, ±a) gives 16 exact s16 pair sums, vpmaddwd with ones adds pairs into s32.
PI0_AVX2 inline __m256i dot4(__m256i acc, __m256i wabs, __m256i w, __m256i a, __m256i ones) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(a, w)), ones));
}

// Row r of the tile: the two accumulators of its 16 channels at the end of the k loop.
PI0_AVX2 inline void store_row(int32_t* row, __m256i lo, __m256i hi, int cols) {
  if (cols == kNR) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 8), hi);
  } else {
    _mm256_maskstore_epi32(row, avx2::tail_mask(std::min(cols, 8)), lo);
    if (cols > 8) _mm256_maskstore_epi32(row + 8, avx2::tail_mask(cols - 8), hi);
  }
}

PI0_AVX2 inline __m256i bcast4(const int8_t* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  return _mm256_set1_epi32(word);
}

// One row of the tile over one k-step: its 4 activation bytes broadcast against both halves.
PI0_AVX2 inline void row_step(__m256i& lo, __m256i& hi, const int8_t* a, __m256i b0, __m256i w0, __m256i b1, __m256i w1,
                              __m256i ones) {
  const __m256i av = bcast4(a);
  lo = dot4(lo, b0, w0, av, ones);
  hi = dot4(hi, b1, w1, av, ones);
}

// Rows [0, MR) of A against one panel over all k-steps; writes `cols` ≤ 16 columns of C. The
// accumulators are named variables, not an array: GCC kept an array's elements on the stack and
// stored them every k-step.
template <int MR>
PI0_AVX2 void micro(const int8_t* a, int64_t lda, const int8_t* panel, int64_t ksteps, int32_t* c, int64_t ldc,
                    int cols) {
  __m256i c0l = _mm256_setzero_si256(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
  for (int64_t s = 0; s < ksteps; ++s) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + s * 64));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + s * 64 + 32));
    const __m256i b0 = _mm256_abs_epi8(w0), b1 = _mm256_abs_epi8(w1);
    row_step(c0l, c0h, a0 + s * 4, b0, w0, b1, w1, ones);
    if constexpr (MR > 1) row_step(c1l, c1h, a1 + s * 4, b0, w0, b1, w1, ones);
    if constexpr (MR > 2) row_step(c2l, c2h, a2 + s * 4, b0, w0, b1, w1, ones);
    if constexpr (MR > 3) row_step(c3l, c3h, a3 + s * 4, b0, w0, b1, w1, ones);
  }
  store_row(c, c0l, c0h, cols);
  if constexpr (MR > 1) store_row(c + ldc, c1l, c1h, cols);
  if constexpr (MR > 2) store_row(c + 2 * ldc, c2l, c2h, cols);
  if constexpr (MR > 3) store_row(c + 3 * ldc, c3l, c3h, cols);
}

}  // namespace

bool gemm_s8_supported() { return has_avx2_fma(); }

S8Panels alloc_s8_panels(int64_t N, int64_t K) {
  S8Panels p;
  p.N = N;
  p.K = K;
  p.Kp = (K + 3) / 4 * 4;
  p.panels = (N + kNR - 1) / kNR;
  p.data = HugeBuffer(static_cast<size_t>(p.panels * kNR * p.Kp));  // zero until written: the padding stays zero
  p.comp.assign(static_cast<size_t>(p.panels * kNR), 0);
  return p;
}

void put_s8_row(S8Panels& p, int64_t n, const int8_t* row) {
  int8_t* panel = p.bytes() + (n / kNR) * kNR * p.Kp + (n % kNR) * 4;
  int32_t sum = 0;
  for (int64_t k = 0; k < p.K; ++k) {
    panel[(k / 4) * 64 + k % 4] = row[k];
    sum += row[k];
  }
  p.comp[n] = 128 * sum;
}

S8Panels merge_geglu_panels(const S8Panels& gate, const S8Panels& up, const float* gate_scale, const float* up_scale,
                            std::vector<float>& col_scale) {
  const int64_t F = gate.N, pairs = (F + 31) / 32, bytes = kNR * gate.Kp;
  S8Panels m = alloc_s8_panels(4 * kNR * pairs, gate.K);  // zeroed: missing source panels stay zero
  col_scale.assign(static_cast<size_t>(m.N), 0.f);
  for (int64_t i = 0; i < pairs; ++i)
    for (int h = 0; h < 2; ++h) {  // h = 0: gate, 1: up
      const S8Panels& src = h == 0 ? gate : up;
      const float* scale = h == 0 ? gate_scale : up_scale;
      for (int64_t p = 2 * i; p < std::min<int64_t>(2 * i + 2, src.panels); ++p) {
        const int64_t dst = 4 * i + 2 * h + (p - 2 * i);
        std::memcpy(m.bytes() + dst * bytes, src.bytes() + p * bytes, static_cast<size_t>(bytes));
        for (int64_t j = 0; j < kNR && p * kNR + j < F; ++j) {
          m.comp[dst * kNR + j] = src.comp[p * kNR + j];
          col_scale[dst * kNR + j] = scale[p * kNR + j];
        }
      }
    }
  return m;
}

S8Panels pack_s8_panels(const int8_t* w, int64_t N, int64_t K) {
  S8Panels p = alloc_s8_panels(N, K);
  parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) put_s8_row(p, n, w + n * K);
  }, 16);
  return p;
}

void gemm_s8(const int8_t* a, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc) {
  if (M == 0 || b.N == 0) return;
  const int64_t ksteps = b.Kp / 4;
  constexpr decltype(&micro<1>) kMicro[kMR + 1] = {nullptr, micro<1>, micro<2>, micro<3>, micro<4>};
  for_each_panel_tile(b, M, kMR, [&](int64_t pi, int64_t r, int mr, int cols) {
    kMicro[mr](a + r * lda, lda, b.bytes() + pi * kNR * b.Kp, ksteps, c + r * ldc + pi * kNR, ldc, cols);
  });
}

}  // namespace pi0::cpu
