// Vector math for the AVX2 kernels (CPUs without AVX-512), the 8-lane twins of avx512_math.h;
// compiled per function with target attributes so the rest of the build stays baseline x86-64.
#pragma once
#include <immintrin.h>

#define PI0_AVX2 __attribute__((target("avx2,fma")))

namespace pi0::cpu::avx2 {

// exp by range reduction to [−ln2/2, ln2/2] and a degree-6 polynomial (as avx512::exp); below
// −87 it returns exactly 0, above 88 it saturates. 2^n is built in the exponent bits.
PI0_AVX2 inline __m256 exp(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  const __m256 zero = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  // n ∈ [−126, 127] after the clamp, so 2^n is a normal float: (n + 127) << 23. At 88, p·2^127
  // overflows to inf as the AVX-512 version's scalef does.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(zero, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// gelu_tanh(x) = x / (1 + exp(−2u)), u = √(2/π)(x + 0.044715x³).
PI0_AVX2 inline __m256 gelu_tanh(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
  const __m256 e = exp(_mm256_mul_ps(_mm256_set1_ps(-2.f), u));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// silu(x) = x / (1 + exp(−x)).
PI0_AVX2 inline __m256 silu(__m256 x) {
  const __m256 e = exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// Lanes [0, n) all-ones, the rest zero (n ≤ 8): the mask of a tail for maskload/maskstore.
PI0_AVX2 inline __m256i tail_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

}  // namespace pi0::cpu::avx2
