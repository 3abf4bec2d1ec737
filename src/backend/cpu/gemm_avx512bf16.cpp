#include "backend/cpu/gemm_avx512bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/avx512_math.h"
#include "backend/cpu/kernels.h"
#include "pi0/error.h"
#include "pi0/threads.h"

namespace pi0::cpu {
namespace {

#define PI0_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// Columns per work item: 48 = 8 tiles of 6. Its W block (48 × Kc bf16, ≤ 192 KiB) stays in L2
// while every row tile of A streams past it.
constexpr int64_t kNB = 48;
// K per pass: W block and a 4-row A tile (16 KiB) fit L2 / L1; a longer K is split and the
// partial sums added (the horizontal reductions cost ≈ 1/Kc of the work, so Kc stays large).
constexpr int64_t kKc = 2048;
constexpr int kMR = 4, kNR = 6;
// Products this small run on the calling thread: a fork/join of the team costs more than they do.
constexpr int64_t kSerialMacs = 4 << 20;

PI0_AVX512BF16 __attribute__((always_inline)) inline __m256 fold(__m512 v) {
  return _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
}

// Four 512-bit accumulators → their four horizontal sums (inlined: no vector ABI crossing).
PI0_AVX512BF16 __attribute__((always_inline)) inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// One step of 32 K values: acc[i][j] += A[i, k..k+31] · W[j, k..k+31] in 16 pair-sums each.
template <int MR, int NR>
PI0_AVX512BF16 __attribute__((always_inline)) inline void step(__m512 (&acc)[MR][NR], const uint16_t* A, int64_t lda,
                                                               const uint16_t* W, int64_t ldw, int64_t k, __mmask32 m) {
  __m512bh w[NR];
#pragma GCC unroll 6
  for (int j = 0; j < NR; ++j) w[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, W + j * ldw + k);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    const __m512bh a = (__m512bh)_mm512_maskz_loadu_epi16(m, A + i * lda + k);
#pragma GCC unroll 6
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], a, w[j]);
  }
}

// out[i·ldo + j] (=|+=) Σ_k A[i, k] · W[j, k] for an MR × NR tile over K values (any K: the
// tail is a masked load, whose zeros add nothing).
template <int MR, int NR>
PI0_AVX512BF16 void tile(const uint16_t* A, int64_t lda, const uint16_t* W, int64_t ldw, int64_t K, float* out,
                         int64_t ldo, bool add) {
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 6
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) step<MR, NR>(acc, A, lda, W, ldw, k, ~__mmask32{0});
  if (k < K) step<MR, NR>(acc, A, lda, W, ldw, k, static_cast<__mmask32>((1ull << (K - k)) - 1));
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    alignas(16) float s[8];
    _mm_store_ps(s, hsum4(acc[i][0], NR > 1 ? acc[i][1 % NR] : zero, NR > 2 ? acc[i][2 % NR] : zero,
                          NR > 3 ? acc[i][3 % NR] : zero));
    if constexpr (NR > 4) {
      _mm_store_ps(s + 4, hsum4(acc[i][4 % NR], NR > 5 ? acc[i][5 % NR] : zero, zero, zero));
    }
    float* o = out + i * ldo;
    for (int j = 0; j < NR; ++j) o[j] = add ? o[j] + s[j] : s[j];
  }
}

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, float*, int64_t, bool);

template <int MR>
constexpr TileFn tile_for(int nr) {
  switch (nr) {
    case 1: return tile<MR, 1>;
    case 2: return tile<MR, 2>;
    case 3: return tile<MR, 3>;
    case 4: return tile<MR, 4>;
    case 5: return tile<MR, 5>;
    default: return tile<MR, 6>;
  }
}

TileFn pick_tile(int mr, int nr) {
  switch (mr) {
    case 1: return tile_for<1>(nr);
    case 2: return tile_for<2>(nr);
    case 3: return tile_for<3>(nr);
    default: return tile_for<4>(nr);
  }
}

// The epilogue of one row segment of n ≤ kNB columns, vectorised: bias, activation or the
// residual add, then the store in C's dtype.
PI0_AVX512 void finish_row(const float* acc, int64_t n, const float* bias, Post post, bool accumulate, bool c_bf16,
                           void* c) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - j)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(m, acc + j);
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
    if (post == Post::GeluTanh) v = avx512::gelu_tanh(v);
    else if (post == Post::Silu) v = avx512::silu(v);
    if (c_bf16) {
      auto* o = static_cast<uint16_t*>(c) + j;
      if (accumulate) {
        __m512 old = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, o)), 16));
        v = _mm512_add_ps(v, old);
      }
      _mm256_mask_storeu_epi16(o, m, avx512::cvt_bf16(v));
    } else {
      float* o = static_cast<float*>(c) + j;
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, o));
      _mm512_mask_storeu_ps(o, m, v);
    }
  }
}

}  // namespace

bool has_avx512_bf16() {
  static const bool ok = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return ok;
}

void gemm_bf16_nk(const MatmulSpec& s, const uint16_t* A, const uint16_t* W, const float* bias, void* C) {
  if (!has_avx512_bf16() || !s.bf16 || s.b_sk != 1)
    throw Error(std::string("internal: gemm_bf16_nk needs AVX512_BF16 and bf16 [out, in] weights"));
  if (s.M <= 0 || s.N <= 0) return;
  const int64_t M = s.M, N = s.N, K = s.K;
  const int64_t passes = std::max<int64_t>(1, (K + kKc - 1) / kKc);
  // Equal K chunks, multiples of 32 so every pass but the last runs unmasked.
  const int64_t kc = ((K + passes - 1) / passes + 31) / 32 * 32;
  const int64_t blocks = (N + kNB - 1) / kNB;
  const size_t esz = s.c_bf16 ? 2 : 4;
  parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    // Per thread, grown once: the f32 sums of one column block over all rows.
    thread_local std::vector<float> acc;
    if (acc.size() < static_cast<size_t>(M * kNB)) acc.resize(static_cast<size_t>(M * kNB));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * kNB, nb = std::min(kNB, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t kl = std::min(kc, K - k0);
        for (int64_t i = 0; i < M; i += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, M - i));
          for (int64_t j = 0; j < nb; j += kNR) {
            const int nr = static_cast<int>(std::min<int64_t>(kNR, nb - j));
            pick_tile(mr, nr)(A + i * s.lda + k0, s.lda, W + (n0 + j) * s.b_sn + k0, s.b_sn, kl,
                              acc.data() + i * kNB + j, kNB, k0 > 0);
          }
        }
      }
      for (int64_t i = 0; i < M; ++i)
        finish_row(acc.data() + i * kNB, nb, s.bias ? bias + n0 : nullptr, s.post, s.accumulate, s.c_bf16,
                   static_cast<char*>(C) + (i * s.ldc + n0) * esz);
    }
  }, s.M * s.N * s.K <= kSerialMacs ? blocks : 1);
}

}  // namespace pi0::cpu
