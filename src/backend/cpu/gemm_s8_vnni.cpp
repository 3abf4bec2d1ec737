// The int8 GEMMs on VNNI (gemm_s8.h). AVX512-VNNI: one `vpdpbusd` per 16 channels × 4 k per row, on
// the panels the AVX2 kernel reads (a panel's k-step is exactly one zmm). AVX-VNNI (no AVX-512):
// the VEX form on ymm, two per panel k-step. oneDNN 2.6's VNNI brgemm is
// slow at the action expert's 51 rows; this kernel has no small-M penalty, and it is measured
// against oneDNN per shape in bench/bench_gemm.cpp (rows `onednn_int8`, `vnni_int8`).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/avx2_math.h"
#include "backend/cpu/avx512_math.h"
#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/kernels.h"
#include "pi0/threads.h"

#define PI0_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define PI0_AVXVNNI __attribute__((target("avx2,fma,avxvnni")))

namespace pi0::cpu {

namespace {

constexpr int kNR = 16;          // channels per panel (one zmm of s32)
constexpr int kMR = 6;           // rows per register tile
constexpr int kNP = 4;           // panels per register tile: 6 × 4 = 24 accumulators + 4 weights
                                 // (8 × 3 measured 1-4% slower on the Zen 5)
constexpr int64_t kKc = kVnniKBlock;

// acc += a (u8) · w (s8), 4 bytes per lane. Inline asm, not _mm512_dpbusd_epi32: GCC 12 copies
// every accumulator of that builtin through the stack each k-step (objdump: 24 stores per step,
// and the kernel ran at 600 GOP/s on a Zen 5 where oneDNN ran 1370).
PI0_VNNI inline void dpbusd(__m512i& acc, __m512i a, __m512i w) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
}

PI0_VNNI inline __m512i bcast4(const uint8_t* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  return _mm512_set1_epi32(word);
}

// The epilogue of one row's 16 channels (mask m) with the exact s32 sums v; mul: that row's
// factors for these channels (null without ep.mul).
PI0_VNNI inline void finish(__m512i v, __mmask16 m, float rs, int64_t n, const S8Epilogue& ep, const float* mul, float* y) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(_mm512_set1_ps(rs), _mm512_maskz_loadu_ps(m, ep.col_scale + n)));
  if (ep.bias) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(m, ep.bias + n));
  if (ep.post == Post::GeluTanh) f = avx512::gelu_tanh(f);
  else if (ep.post == Post::Silu) f = avx512::silu(f);
  if (mul) f = _mm512_mul_ps(f, _mm512_maskz_loadu_ps(m, mul));
  if (ep.accumulate) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(m, y));
  _mm512_mask_storeu_ps(y, m, f);
}

// Rows [0, MR) × panels [0, NP) over k-steps [s0, s1). `first`: start from zero, else from C
// (an earlier k-block's partial sums); `last`: subtract the +128 offset's sums, then store s32 to
// C, or with `ep` the finished floats to ep->y (row m0 + r, channel n0 + 16p). `cols` is how many
// channels of the last panel exist (≤ 16): the rest of C and y is never touched.
// Indices are compile-time after unrolling, so GCC keeps all 24 accumulators in registers.
template <int MR, int NP>
PI0_VNNI void tile(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t panel_bytes, int64_t s0, int64_t s1,
                   const int32_t* comp, bool first, bool last, int cols, int32_t* c, int64_t ldc, const S8Epilogue* ep,
                   int64_t m0, int64_t n0) {
  __m512i acc[MR][NP];
  const __mmask16 tail = cols >= kNR ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      const __mmask16 m = p == NP - 1 ? tail : static_cast<__mmask16>(0xffff);
      acc[r][p] = first ? _mm512_setzero_si512() : _mm512_maskz_loadu_epi32(m, c + r * ldc + p * kNR);
    }
  for (int64_t s = s0; s < s1; ++s) {
    __m512i w[NP];
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) w[p] = _mm512_load_si512(panel + p * panel_bytes + s * 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i av = bcast4(a + r * lda + s * 4);
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) dpbusd(acc[r][p], av, w[p]);
    }
  }
  if constexpr (NP == kNP) {
    if (last && ep && ep->geglu_cols > 0) {  // a GeGLU pair: panels 0-1 gate, 2-3 up, same 32 channels
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m512 rs = _mm512_set1_ps(ep->row_scale[m0 + r]);
        float* y = ep->y_bf16 ? nullptr : ep->y + (m0 + r) * ep->ldy;
#pragma GCC unroll 2
        for (int p = 0; p < 2; ++p) {
          const int64_t j = n0 / 2 + p * kNR;  // output column of this half-group
          if (j >= ep->geglu_cols) break;
          const __mmask16 m = ep->geglu_cols - j >= kNR ? static_cast<__mmask16>(0xffff)
                                                        : static_cast<__mmask16>((1u << (ep->geglu_cols - j)) - 1);
          const __m512 g = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][p], _mm512_loadu_si512(comp + p * kNR))),
                                         _mm512_mul_ps(rs, _mm512_loadu_ps(ep->col_scale + n0 + p * kNR)));
          const __m512 u =
              _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][p + 2], _mm512_loadu_si512(comp + (p + 2) * kNR))),
                            _mm512_mul_ps(rs, _mm512_loadu_ps(ep->col_scale + n0 + (p + 2) * kNR)));
          __m512 f = _mm512_mul_ps(u, avx512::gelu_tanh(g));  // as the unfused path: up's value times gelu(gate)
          if (ep->y_bf16) {
            _mm256_mask_storeu_epi16(ep->y_bf16 + (m0 + r) * ep->ldy + j, m, avx512::cvt_bf16(f));
            continue;
          }
          if (ep->accumulate) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(m, y + j));
          _mm512_mask_storeu_ps(y + j, m, f);
        }
      }
      return;
    }
  }
  if (last && ep) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float rs = ep->row_scale[m0 + r];
      float* y = ep->y + (m0 + r) * ep->ldy + n0;
      const float* mul = ep->mul ? ep->mul + (m0 + r) * ep->ldmul + n0 : nullptr;
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p)
        finish(_mm512_sub_epi32(acc[r][p], _mm512_loadu_si512(comp + p * kNR)),
               p == NP - 1 ? tail : static_cast<__mmask16>(0xffff), rs, n0 + p * kNR, *ep, mul ? mul + p * kNR : nullptr,
               y + p * kNR);
    }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      __m512i v = acc[r][p];
      if (last) v = _mm512_sub_epi32(v, _mm512_loadu_si512(comp + p * kNR));
      _mm512_mask_storeu_epi32(c + r * ldc + p * kNR, p == NP - 1 ? tail : static_cast<__mmask16>(0xffff), v);
    }
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int64_t, const int32_t*, bool, bool,
                        int, int32_t*, int64_t, const S8Epilogue*, int64_t, int64_t);

template <int NP>
constexpr TileFn tiles_for_rows[kMR + 1] = {nullptr,        tile<1, NP>, tile<2, NP>, tile<3, NP>,
                                            tile<4, NP>, tile<5, NP>, tile<6, NP>};
constexpr const TileFn* kTiles[kNP + 1] = {nullptr, tiles_for_rows<1>, tiles_for_rows<2>, tiles_for_rows<3>,
                                           tiles_for_rows<4>};


void run(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc, const S8Epilogue* ep) {
  if (M == 0 || b.N == 0) return;
  const int64_t ksteps = b.Kp / 4, panel_bytes = kNR * b.Kp;
  const int64_t groups = (b.panels + kNP - 1) / kNP;
  // A task is a run of groups of 4 panels (64 channels) over every row, block by block of K: the
  // groups' blocks stay in L2 while the rows stream past them. With many rows, 4 groups (≤ 512 KiB
  // of panels) take turns on each row tile, so the tile's rows are read once from L3 for the four
  // and each output row is written 256 channels at a time (pi0 VLM gate/up 1610 -> 1668 GOP/s,
  // SigLIP q/k/v 1607 -> 1656 on the Zen 5); the 51-row denoise products lose 2-5% that way (more
  // weight streams in flight from DRAM) and keep one group at a time. Small products stay on one thread.
  const int64_t kc = std::min<int64_t>(kKc, b.Kp);
  const int64_t chunk = M >= 256 ? std::clamp<int64_t>((int64_t{512} << 10) / (kNP * kNR * kc), 1, 4) : 1;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, M * b.Kp * kNR * kNP));
  parallel_for(groups, [&](int64_t g0, int64_t g1) {
    for (int64_t gb = g0; gb < g1; gb += chunk) {
      const int64_t ge = std::min(g1, gb + chunk);
      for (int64_t s0 = 0; s0 < ksteps; s0 += kKc / 4) {
        const int64_t s1 = std::min(ksteps, s0 + kKc / 4);
        const bool first = s0 == 0, last = s1 == ksteps;
        for (int64_t r = 0; r < M; r += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, M - r));
          for (int64_t g = gb; g < ge; ++g) {
            const int64_t p0 = g * kNP;
            const int np = static_cast<int>(std::min<int64_t>(kNP, b.panels - p0));
            const int cols = static_cast<int>(std::min<int64_t>(kNR, b.N - (p0 + np - 1) * kNR));
            kTiles[np][mr](a_u8 + r * lda, lda, b.bytes() + p0 * panel_bytes, panel_bytes, s0, s1,
                           b.comp.data() + p0 * kNR, first, last, cols, c ? c + p0 * kNR + r * ldc : nullptr, ldc, ep, r,
                           p0 * kNR);
          }
        }
      }
    }
  }, grain);
}

// AVX-VNNI: acc += a (u8) · w (s8) on ymm. "{vex}" forces the VEX encoding (registers 0-15 only,
// the "x" constraint), the only one a CPU without AVX-512 decodes.
PI0_AVXVNNI inline void dpbusd_vex(__m256i& acc, __m256i a, __m256i w) {
  __m256i t = acc;  // an asm operand of an array element kept the array on the stack
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(t) : "x"(a), "x"(w));
  acc = t;
}

// Rows [0, MR) against one panel over every k-step: 2 accumulators per row (12 + 2 weights + the
// broadcast fit the 16 ymm registers); exact s32 to C, `cols` ≤ 16 of them.
template <int MR>
PI0_AVXVNNI void tile_ymm(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t ksteps, const int32_t* comp, int cols,
                          int32_t* c, int64_t ldc) {
  __m256i lo[MR], hi[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
  for (int64_t s = 0; s < ksteps; ++s) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + s * 64));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + s * 64 + 32));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + s * 4, 4);
      const __m256i av = _mm256_set1_epi32(word);
      dpbusd_vex(lo[r], av, w0);
      dpbusd_vex(hi[r], av, w1);
    }
  }
  const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp));
  const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(comp + 8));
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m256i vlo = _mm256_sub_epi32(lo[r], c0), vhi = _mm256_sub_epi32(hi[r], c1);
    int32_t* row = c + r * ldc;
    if (cols == kNR) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), vlo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 8), vhi);
    } else {
      _mm256_maskstore_epi32(row, avx2::tail_mask(std::min(cols, 8)), vlo);
      if (cols > 8) _mm256_maskstore_epi32(row + 8, avx2::tail_mask(cols - 8), vhi);
    }
  }
}

using TileYmmFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, const int32_t*, int, int32_t*, int64_t);
constexpr TileYmmFn kTilesYmm[kMR + 1] = {nullptr,     tile_ymm<1>, tile_ymm<2>, tile_ymm<3>,
                                          tile_ymm<4>, tile_ymm<5>, tile_ymm<6>};

}  // namespace

bool gemm_s8_avxvnni_supported() { return has_avx_vnni(); }

void gemm_s8_avxvnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc) {
  if (M == 0 || b.N == 0) return;
  const int64_t ksteps = b.Kp / 4;
  for_each_panel_tile(b, M, kMR, [&](int64_t pi, int64_t r, int mr, int cols) {
    kTilesYmm[mr](a_u8 + r * lda, lda, b.bytes() + pi * kNR * b.Kp, ksteps, b.comp.data() + pi * kNR, cols,
                  c + r * ldc + pi * kNR, ldc);
  });
}

bool gemm_s8_vnni_supported() { return has_avx512() && __builtin_cpu_supports("avx512vnni"); }

void gemm_s8_vnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc) {
  run(a_u8, lda, M, b, c, ldc, nullptr);
}

void gemm_s8_vnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc,
                  const S8Epilogue& ep) {
  run(a_u8, lda, M, b, c, ldc, &ep);
}

}  // namespace pi0::cpu
