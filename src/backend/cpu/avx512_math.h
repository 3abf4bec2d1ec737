// Vector math shared by the AVX-512 kernels (compiled per function with target attributes, so
// the rest of the build stays baseline x86-64).
#pragma once
#include <immintrin.h>

#define PI0_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace pi0::cpu::avx512 {

// bf16 with round-to-nearest-even on the bit pattern (NaN inputs do not occur in activations).
PI0_AVX512 inline __m256i cvt_bf16(__m512 v) {
  __m512i u = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
}

// exp by range reduction to [−ln2/2, ln2/2] and a degree-6 polynomial (≈1 ulp); below −87 it
// returns exactly 0, above 88 it saturates.
PI0_AVX512 inline __m512 exp(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.0f);
  __mmask16 zero = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~zero), _mm512_scalef_ps(p, n));
}

// gelu_tanh(x) = 0.5·x·(1 + tanh(u)) = x · sigmoid(2u) = x / (1 + exp(−2u)), u = √(2/π)(x + 0.044715x³).
PI0_AVX512 inline __m512 gelu_tanh(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
  const __m512 e = exp(_mm512_mul_ps(_mm512_set1_ps(-2.f), u));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

// silu(x) = x / (1 + exp(−x)).
PI0_AVX512 inline __m512 silu(__m512 x) {
  const __m512 e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

}  // namespace pi0::cpu::avx512
