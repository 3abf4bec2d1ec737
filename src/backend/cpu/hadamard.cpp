#include "backend/cpu/hadamard.h"

#include <immintrin.h>

#include <algorithm>

#include "backend/cpu/kernels.h"

namespace pi0::cpu {

namespace {

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

void fwht_scalar(float* x, int64_t n, int block) {
  for (int64_t b = 0; b < n; b += block)
    for (int h = 1; h < block; h *= 2)
      for (int i = 0; i < block; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const float u = x[b + j], v = x[b + j + h];
          x[b + j] = u + v;
          x[b + j + h] = u - v;
        }
}

// Butterflies with a partner within 16 lanes (h = 1, 2, 4, 8), by in-lane and 128-bit-lane
// shuffles: y = x[i ^ h] + sign·x[i], sign −1 on the lanes whose bit h is set (they hold u − v).
AVX512 inline __m512 fwht16(__m512 v) {
  __m512 p = _mm512_permute_ps(v, 0xB1);  // h = 1: swap neighbours
  v = _mm512_mask_sub_ps(_mm512_add_ps(p, v), 0xAAAA, p, v);
  p = _mm512_permute_ps(v, 0x4E);  // h = 2: swap pairs
  v = _mm512_mask_sub_ps(_mm512_add_ps(p, v), 0xCCCC, p, v);
  p = _mm512_shuffle_f32x4(v, v, 0xB1);  // h = 4: swap 128-bit lanes
  v = _mm512_mask_sub_ps(_mm512_add_ps(p, v), 0xF0F0, p, v);
  p = _mm512_shuffle_f32x4(v, v, 0x4E);  // h = 8: swap 256-bit halves
  return _mm512_mask_sub_ps(_mm512_add_ps(p, v), 0xFF00, p, v);
}

// Butterflies between whole registers, levels h = 1 .. NV/2 (in registers), lower index first.
template <int NV>
AVX512 inline void butterflies(__m512 (&v)[NV]) {
#pragma GCC unroll 4
  for (int h = 1; h < NV; h *= 2)
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i)
      if (!(i & h)) {
        const __m512 a = v[i], b = v[i + h];
        v[i] = _mm512_add_ps(a, b);
        v[i + h] = _mm512_sub_ps(a, b);
      }
}

// Pass A: every chunk of NV·16 values from x through levels 1 .. 8·NV into y; with `last` (the
// chunk is the whole block) also the running max |y|.
template <int NV>
AVX512 void chunks(const float* x, float* y, int64_t n, bool last, __m512& mx) {
  for (int64_t o = 0; o < n; o += NV * 16) {
    __m512 v[NV];
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) v[i] = fwht16(_mm512_loadu_ps(x + o + i * 16));
    butterflies<NV>(v);
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) {
      if (last) mx = _mm512_max_ps(mx, _mm512_abs_ps(v[i]));
      _mm512_storeu_ps(y + o + i * 16, v[i]);
    }
  }
}

// Pass B, blocks of L·256 values: the levels above 128, L vectors 256 values apart, in place.
template <int L>
AVX512 void across(float* y, int64_t n, __m512& mx) {
  for (int64_t b = 0; b < n; b += L * 256)
    for (int j = 0; j < 256; j += 16) {
      __m512 v[L];
#pragma GCC unroll 8
      for (int c = 0; c < L; ++c) v[c] = _mm512_loadu_ps(y + b + c * 256 + j);
      butterflies<L>(v);
#pragma GCC unroll 8
      for (int c = 0; c < L; ++c) {
        mx = _mm512_max_ps(mx, _mm512_abs_ps(v[c]));
        _mm512_storeu_ps(y + b + c * 256 + j, v[c]);
      }
    }
}

// The same on 8 lanes: partners within a vector by permutes (h = 1, 2, 4), then whole vectors.
__attribute__((target("avx2,fma"))) __m256 fwht8(__m256 v) {
  const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1), s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1),
               s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
  v = _mm256_fmadd_ps(v, s1, _mm256_permute_ps(v, 0xB1));  // swap neighbours
  v = _mm256_fmadd_ps(v, s2, _mm256_permute_ps(v, 0x4E));  // swap pairs
  return _mm256_fmadd_ps(v, s4, _mm256_permute2f128_ps(v, v, 1));  // swap halves
}

__attribute__((target("avx2,fma"))) void fwht_avx2(float* x, int64_t n, int block) {
  for (int64_t b = 0; b < n; b += block) {
    float* y = x + b;
    for (int i = 0; i < block; i += 8) _mm256_storeu_ps(y + i, fwht8(_mm256_loadu_ps(y + i)));
    for (int h = 8; h < block; h *= 2)
      for (int i = 0; i < block; i += 2 * h)
        for (int j = i; j < i + h; j += 8) {
          const __m256 u = _mm256_loadu_ps(y + j), v = _mm256_loadu_ps(y + j + h);
          _mm256_storeu_ps(y + j, _mm256_add_ps(u, v));
          _mm256_storeu_ps(y + j + h, _mm256_sub_ps(u, v));
        }
  }
}

// fwht_blocks_absmax on AVX-512, block 16 .. 2048: one pass over the row (two above 256) in
// registers, instead of one per two levels plus a copy and an absmax pass.
AVX512 float fwht_absmax_avx(const float* x, float* y, int64_t n, int block) {
  __m512 mx = _mm512_setzero_ps();
  const bool one = block <= 256;
  switch (std::min(block, 256)) {
    case 16: chunks<1>(x, y, n, one, mx); break;
    case 32: chunks<2>(x, y, n, one, mx); break;
    case 64: chunks<4>(x, y, n, one, mx); break;
    case 128: chunks<8>(x, y, n, one, mx); break;
    default: chunks<16>(x, y, n, one, mx); break;
  }
  if (block == 512) across<2>(y, n, mx);
  else if (block == 1024) across<4>(y, n, mx);
  else if (block == 2048) across<8>(y, n, mx);
  return _mm512_reduce_max_ps(mx);
}

}  // namespace

float fwht_blocks_absmax(const float* x, float* y, int64_t n, int block) { return fwht_absmax_avx(x, y, n, block); }

int hadamard_block(int64_t K) {
  int b = 1;
  while (b < 2048 && K % (2 * b) == 0) b *= 2;
  return b;
}

void fwht_blocks(float* x, int64_t n, int block) {
  if (block >= 16 && block <= 2048 && has_avx512()) {
    fwht_absmax_avx(x, x, n, block);
    return;
  }
  if (block >= 8 && has_avx2_fma()) return fwht_avx2(x, n, block);
  fwht_scalar(x, n, block);
}

}  // namespace pi0::cpu
