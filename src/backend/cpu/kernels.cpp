#include "backend/cpu/kernels.h"

#include "backend/cpu/avx2_math.h"
#include "backend/cpu/avx512_math.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pi0/error.h"
#include "pi0/tensor.h"

namespace pi0::cpu {

namespace {

using avx512::cvt_bf16;

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

AVX512 inline __m512 load_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

AVX512 inline __m512 load_bf16_mask(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

AVX512 inline __mmask16 tail(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }

AVX512 void to_bf16_avx(const float* x, int64_t n, float s, uint16_t* y) {
  const __m512 vs = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), cvt_bf16(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs)));
  if (i < n) {
    __mmask16 m = tail(n - i);
    _mm256_mask_storeu_epi16(y + i, m, cvt_bf16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
  }
}

AVX512 float sum_sq_avx(const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) { __m512 v = _mm512_loadu_ps(x + i); acc = _mm512_fmadd_ps(v, v, acc); }
  if (i < n) { __m512 v = _mm512_maskz_loadu_ps(tail(n - i), x + i); acc = _mm512_fmadd_ps(v, v, acc); }
  return _mm512_reduce_add_ps(acc);
}

AVX512 float sum_avx(const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + i));
  if (i < n) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail(n - i), x + i));
  return _mm512_reduce_add_ps(acc);
}

AVX512 void rms_norm_avx(const float* x, int64_t n, const float* scale, const float* shift, float eps, float* y) {
  const float inv = 1.f / std::sqrt(sum_sq_avx(x, n) / static_cast<float>(n) + eps);
  const __m512 vi = _mm512_set1_ps(inv), one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi);
    v = _mm512_mul_ps(v, _mm512_add_ps(one, _mm512_maskz_loadu_ps(m, scale + i)));
    if (shift) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, shift + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

AVX512 void layer_norm_avx(const float* x, int64_t n, const float* w, const float* b, float eps, float* y) {
  const float mean = sum_avx(x, n) / static_cast<float>(n);
  const __m512 vm = _mm512_set1_ps(mean);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
    __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
    acc = _mm512_fmadd_ps(d, d, acc);
  }
  const float inv = 1.f / std::sqrt(_mm512_reduce_add_ps(acc) / static_cast<float>(n) + eps);
  const __m512 vi = _mm512_set1_ps(inv);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vi);
    v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

AVX512 float exp_sum_avx(float* x, int64_t n, float sub) {
  const __m512 vs = _mm512_set1_ps(sub);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
    __m512 e = _mm512_maskz_mov_ps(m, avx512::exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

AVX512 void mul_bf16_avx(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* h) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
    __m512 v = _mm512_mul_ps(load_bf16_mask(g + i, m), load_bf16_mask(u + i, m));
    _mm256_mask_storeu_epi16(h + i, m, cvt_bf16(v));
  }
}

AVX512 float mask_max_avx(float* l, int64_t n, const uint8_t* k_valid, const int32_t* k_group, int32_t q_group,
                          float mask_value) {
  const __m512 mv = _mm512_set1_ps(mask_value);
  const __m512i qg = _mm512_set1_epi32(q_group);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? 0xffff : tail(n - j);
    __mmask16 ok = m;
    if (k_valid) ok &= _mm_mask_test_epi8_mask(m, _mm_maskz_loadu_epi8(m, k_valid + j), _mm_set1_epi8(-1));
    if (k_group) ok &= _mm512_mask_cmple_epi32_mask(m, _mm512_maskz_loadu_epi32(m, k_group + j), qg);
    const __m512 v = _mm512_mask_blend_ps(ok, mv, _mm512_maskz_loadu_ps(m, l + j));
    _mm512_mask_storeu_ps(l + j, m, v);
    mx = _mm512_mask_max_ps(mx, m, mx, v);
  }
  return _mm512_reduce_max_ps(mx);
}

// The AVX2 twins of the norms and the softmax exponent, for CPUs without AVX-512: the scalar
// loops left the SigLIP softmax (85 M exponentials per call at 3 cameras) at 46 GFLOP/s.
PI0_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sum of x (or of (x − c)² with `squares`), 8 lanes, masked tail.
PI0_AVX2 float sum_avx2(const float* x, int64_t n, bool squares, float c) {
  const __m256 vc = _mm256_set1_ps(c);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2::tail_mask(std::min<int64_t>(8, n - i));
    const __m256 v = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vc), _mm256_castsi256_ps(m));
    acc = squares ? _mm256_fmadd_ps(v, v, acc) : _mm256_add_ps(acc, v);
  }
  return hsum(acc);
}

PI0_AVX2 void rms_norm_avx2(const float* x, int64_t n, const float* scale, const float* shift, float eps, float* y) {
  const float inv = 1.f / std::sqrt(sum_avx2(x, n, true, 0.f) / static_cast<float>(n) + eps);
  const __m256 vi = _mm256_set1_ps(inv), one = _mm256_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2::tail_mask(std::min<int64_t>(8, n - i));
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), vi);
    v = _mm256_mul_ps(v, _mm256_add_ps(one, _mm256_maskload_ps(scale + i, m)));
    if (shift) v = _mm256_add_ps(v, _mm256_maskload_ps(shift + i, m));
    _mm256_maskstore_ps(y + i, m, v);
  }
}

PI0_AVX2 void layer_norm_avx2(const float* x, int64_t n, const float* w, const float* b, float eps, float* y) {
  const float mean = sum_avx2(x, n, false, 0.f) / static_cast<float>(n);
  const float inv = 1.f / std::sqrt(sum_avx2(x, n, true, mean) / static_cast<float>(n) + eps);
  const __m256 vm = _mm256_set1_ps(mean), vi = _mm256_set1_ps(inv);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2::tail_mask(std::min<int64_t>(8, n - i));
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm), vi);
    v = _mm256_fmadd_ps(v, _mm256_maskload_ps(w + i, m), _mm256_maskload_ps(b + i, m));
    _mm256_maskstore_ps(y + i, m, v);
  }
}

PI0_AVX2 float exp_sum_avx2(float* x, int64_t n, float sub) {
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2::tail_mask(std::min<int64_t>(8, n - i));
    const __m256 e = _mm256_and_ps(avx2::exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum(acc);
}

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

}  // namespace

bool isa_allows_avx512() {
  static const bool allowed = [] {
    const char* e = std::getenv("PI0_CPU_ISA");
    const std::string v = e ? e : "";
    if (v.empty() || v == "native") return true;
    if (v == "avx2") return false;
    throw Error({.message = "unknown instruction-set cap", .field = "PI0_CPU_ISA", .expected = "native | avx2", .got = v});
  }();
  return allowed;
}

bool has_avx512() {
  static const bool ok = cpu_has_avx512() && isa_allows_avx512();
  return ok;
}

bool has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

bool has_avx_vnni() {
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return has_avx2_fma() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u);
  }();
  return ok;
}

void to_bf16(const float* x, int64_t n, uint16_t* y) { to_bf16_scaled(x, n, 1.f, y); }

void to_bf16_scaled(const float* x, int64_t n, float s, uint16_t* y) {
  if (has_avx512()) return to_bf16_avx(x, n, s, y);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i] * s);
}

void rms_norm_row(const float* x, int64_t n, const float* scale, const float* shift, float eps, float* y) {
  if (has_avx512()) return rms_norm_avx(x, n, scale, shift, eps, y);
  if (has_avx2_fma()) return rms_norm_avx2(x, n, scale, shift, eps, y);
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * (1.f + scale[i]) + (shift ? shift[i] : 0.f);
}

void layer_norm_row(const float* x, int64_t n, const float* w, const float* b, float eps, float* y) {
  if (has_avx512()) return layer_norm_avx(x, n, w, b, eps, y);
  if (has_avx2_fma()) return layer_norm_avx2(x, n, w, b, eps, y);
  float mean = 0.f, var = 0.f;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<float>(n);
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.f / std::sqrt(var / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

float exp_sum_row(float* x, int64_t n, float sub) {
  if (has_avx512()) return exp_sum_avx(x, n, sub);
  if (has_avx2_fma()) return exp_sum_avx2(x, n, sub);
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - sub;
    x[i] = d < -87.f ? 0.f : std::exp(d);
    s += x[i];
  }
  return s;
}

float mask_max_row(float* l, int64_t n, const uint8_t* k_valid, const int32_t* k_group, int32_t q_group,
                   float mask_value) {
  if (!k_group && q_group < 0) {  // every key is in group 0, after this query's block
    std::fill(l, l + n, mask_value);
    return mask_value;
  }
  if (has_avx512()) return mask_max_avx(l, n, k_valid, k_group, q_group, mask_value);
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    const bool ok = (!k_valid || k_valid[j]) && (!k_group || k_group[j] <= q_group);
    if (!ok) l[j] = mask_value;
    mx = std::max(mx, l[j]);
  }
  return mx;
}

void mul_bf16(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* h) {
  if (has_avx512()) return mul_bf16_avx(g, u, n, h);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(bf16_to_f32(g[i]) * bf16_to_f32(u[i]));
}

}  // namespace pi0::cpu
