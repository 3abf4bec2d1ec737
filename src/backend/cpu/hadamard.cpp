#include "backend/cpu/hadamard.h"

#include <immintrin.h>

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

// Butterflies with a partner within 16 lanes (h = 1, 2, 4, 8): y = x[i ^ h] + sign·x[i], sign −1
// on the lanes whose bit h is set (they hold u − v after the swap).
AVX512 __m512 fwht16(__m512 v) {
  alignas(64) static const int32_t idx[4][16] = {
      {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14},
      {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
      {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
      {8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7}};
  for (int s = 0; s < 4; ++s) {
    const __mmask16 upper = static_cast<__mmask16>(s == 0 ? 0xAAAA : s == 1 ? 0xCCCC : s == 2 ? 0xF0F0 : 0xFF00);
    const __m512 p = _mm512_permutexvar_ps(_mm512_load_si512(idx[s]), v);
    v = _mm512_mask_sub_ps(_mm512_add_ps(p, v), upper, p, v);
  }
  return v;
}

AVX512 void fwht_avx(float* x, int64_t n, int block) {
  for (int64_t b = 0; b < n; b += block) {
    float* y = x + b;
    for (int i = 0; i < block; i += 16) _mm512_storeu_ps(y + i, fwht16(_mm512_loadu_ps(y + i)));
    // Two levels (h, 2h) per pass over the row: half the loads and stores of one level per pass
    // (a 2048 block: 4 passes instead of 7), the bulk of quantising an int8 layer's input.
    int h = 16;
    for (; 4 * h <= block; h *= 4)
      for (int i = 0; i < block; i += 4 * h)
        for (int j = i; j < i + h; j += 16) {
          const __m512 a = _mm512_loadu_ps(y + j), b = _mm512_loadu_ps(y + j + h), c = _mm512_loadu_ps(y + j + 2 * h),
                       d = _mm512_loadu_ps(y + j + 3 * h);
          const __m512 ab = _mm512_add_ps(a, b), a_b = _mm512_sub_ps(a, b), cd = _mm512_add_ps(c, d),
                       c_d = _mm512_sub_ps(c, d);
          _mm512_storeu_ps(y + j, _mm512_add_ps(ab, cd));
          _mm512_storeu_ps(y + j + h, _mm512_add_ps(a_b, c_d));
          _mm512_storeu_ps(y + j + 2 * h, _mm512_sub_ps(ab, cd));
          _mm512_storeu_ps(y + j + 3 * h, _mm512_sub_ps(a_b, c_d));
        }
    if (h < block)  // one level left
      for (int j = 0; j < h; j += 16) {
        const __m512 u = _mm512_loadu_ps(y + j), v = _mm512_loadu_ps(y + j + h);
        _mm512_storeu_ps(y + j, _mm512_add_ps(u, v));
        _mm512_storeu_ps(y + j + h, _mm512_sub_ps(u, v));
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

}  // namespace

int hadamard_block(int64_t K) {
  int b = 1;
  while (b < 2048 && K % (2 * b) == 0) b *= 2;
  return b;
}

void fwht_blocks(float* x, int64_t n, int block) {
  if (block >= 16 && has_avx512()) return fwht_avx(x, n, block);
  if (block >= 8 && has_avx2_fma()) return fwht_avx2(x, n, block);
  fwht_scalar(x, n, block);
}

}  // namespace pi0::cpu
