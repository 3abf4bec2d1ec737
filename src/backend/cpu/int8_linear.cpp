#include "backend/cpu/int8_linear.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/avx2_math.h"
#include "backend/cpu/avx512_math.h"
#include "backend/cpu/hadamard.h"
#include "backend/cpu/kernels.h"
#include "pi0/error.h"
#include "pi0/threads.h"

namespace pi0::cpu {

namespace {

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

PI0_AVX512 float absmax_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  if (i < n) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (n - i)) - 1), x + i)));
  return _mm512_reduce_max_ps(m);
}

// q = round(x · inv) (round to nearest even), |q| ≤ 127 by construction of inv; with `offset`,
// q + 128 as u8 (the VNNI kernel's activation operand), i.e. the same byte with its top bit flipped.
PI0_AVX512 void quantize_avx512(const float* x, int64_t n, float inv, int8_t* q, bool offset) {
  const __m512 vi = _mm512_set1_ps(inv);
  const __m128i flip = _mm_set1_epi8(offset ? static_cast<char>(0x80) : 0);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vi));
    _mm_mask_storeu_epi8(q + i, m, _mm_xor_si128(_mm512_cvtsepi32_epi8(v), flip));
  }
}

// y = post(acc · rs · cs + bias) or y += acc · rs · cs + bias, one row.
PI0_AVX512 void epilogue_avx512(const int32_t* acc, int64_t N, float rs, const float* cs, const float* bias, Post post,
                                bool accumulate, float* y) {
  const __m512 vr = _mm512_set1_ps(rs);
  for (int64_t j = 0; j < N; j += 16) {
    const __mmask16 m = N - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (N - j)) - 1);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, acc + j)),
                             _mm512_mul_ps(vr, _mm512_maskz_loadu_ps(m, cs + j)));
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
    if (post == Post::GeluTanh) v = avx512::gelu_tanh(v);
    else if (post == Post::Silu) v = avx512::silu(v);
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + j));
    _mm512_mask_storeu_ps(y + j, m, v);
  }
}

PI0_AVX2 float absmax_avx2(const float* x, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  if (i < n) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_maskload_ps(x + i, avx2::tail_mask(n - i))));
  alignas(32) float v[8];
  _mm256_store_ps(v, m);
  return *std::max_element(v, v + 8);
}

// As quantize_avx512: vcvtps2dq rounds to nearest even, packs saturate (never reached: |q| ≤ 127).
PI0_AVX2 void quantize_avx2(const float* x, int64_t n, float inv, int8_t* q, bool offset) {
  const __m256 vi = _mm256_set1_ps(inv);
  const int64_t flip = offset ? static_cast<int64_t>(0x8080808080808080ull) : 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const int64_t b = _mm_cvtsi128_si64(_mm_packs_epi16(w, w)) ^ flip;
    std::memcpy(q + i, &b, 8);
  }
  for (; i < n; ++i) q[i] = static_cast<int8_t>(static_cast<int>(std::nearbyint(x[i] * inv)) ^ (offset ? 0x80 : 0));
}

PI0_AVX2 void epilogue_avx2(const int32_t* acc, int64_t N, float rs, const float* cs, const float* bias, Post post,
                            bool accumulate, float* y) {
  const __m256 vr = _mm256_set1_ps(rs);
  for (int64_t j = 0; j < N; j += 8) {
    const __m256i m = avx2::tail_mask(std::min<int64_t>(8, N - j));
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_maskload_epi32(acc + j, m)),
                             _mm256_mul_ps(vr, _mm256_maskload_ps(cs + j, m)));
    if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, m));
    if (post == Post::GeluTanh) v = avx2::gelu_tanh(v);
    else if (post == Post::Silu) v = avx2::silu(v);
    if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(y + j, m));
    _mm256_maskstore_ps(y + j, m, v);
  }
}

// The row kernels above for this CPU: AVX-512 where allowed, else AVX2 (int8 needs one of them).
float absmax(const float* x, int64_t n) { return has_avx512() ? absmax_avx512(x, n) : absmax_avx2(x, n); }
void quantize(const float* x, int64_t n, float inv, int8_t* q, bool offset) {
  has_avx512() ? quantize_avx512(x, n, inv, q, offset) : quantize_avx2(x, n, inv, q, offset);
}
void epilogue_row(const int32_t* acc, int64_t N, float rs, const float* cs, const float* bias, Post post, bool accumulate,
                  float* y) {
  has_avx512() ? epilogue_avx512(acc, N, rs, cs, bias, post, accumulate, y)
               : epilogue_avx2(acc, N, rs, cs, bias, post, accumulate, y);
}

// One row (src, K values) rotated (or not) into v (src may be v), then to s8 (+128 as u8 with
// `offset`); returns its scale (0 for an all-zero row).
float quantize_row(const float* src, float* v, int64_t K, int block, int8_t* q, bool offset = false) {
  float amax;
  if (block >= 16 && block <= 2048 && has_avx512()) {
    amax = fwht_blocks_absmax(src, v, K, block);
  } else {
    if (src != v) std::memcpy(v, src, sizeof(float) * static_cast<size_t>(K));
    if (block > 1) fwht_blocks(v, K, block);
    amax = absmax(v, K);
  }
  const float scale = amax > 0 ? amax / 127.f : 0.f;
  quantize(v, K, scale > 0 ? 1.f / scale : 0.f, q, offset);
  return scale;
}

// Row n of a [N, K] weight as f32 (bf16 and f32 directly; other types element by element).
void row_f32(const Tensor& w, int64_t n, int64_t K, float* out) {
  if (w.dtype() == DType::F32) {
    std::memcpy(out, w.data<float>() + n * K, sizeof(float) * K);
  } else if (w.dtype() == DType::BF16) {
    const uint16_t* p = w.data<uint16_t>() + n * K;
    for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(p[k]);
  } else {
    for (int64_t k = 0; k < K; ++k) out[k] = w.get_f32(n * K + k);
  }
}

}  // namespace

Int8Scheme int8_scheme_from_env() {
  const char* e = std::getenv("PI0_INT8_SCHEME");
  const std::string v = e ? e : "";
  if (v.empty() || v == "hadamard") return Int8Scheme::Hadamard;
  if (v == "naive") return Int8Scheme::Naive;
  throw Error({.message = "unknown int8 scheme", .field = "PI0_INT8_SCHEME", .expected = "hadamard | naive", .got = v});
}

Int8Support int8_support() {
  if (gemm_s8_vnni_supported()) return {true, Int8Kernel::HandVnni, "AVX512-VNNI vpdpbusd"};
  if (gemm_s8_avxvnni_supported()) return {true, Int8Kernel::HandAvxVnni, "AVX-VNNI vpdpbusd (ymm)"};
  if (dnnl_int8_vnni_supported()) return {true, Int8Kernel::OneDnnVnni, "oneDNN VNNI"};
  if (gemm_s8_supported()) return {true, Int8Kernel::HandAvx2, "AVX2 vpmaddubsw"};
  return {false, Int8Kernel::HandAvx2, "none of AVX512-VNNI, AVX-VNNI, AVX2+FMA"};
}

Int8Weights quantize_weights(const Tensor& w, int64_t rows_hint, Int8Scheme scheme, Int8Kernel kernel) {
  Int8Weights r;
  r.kernel = kernel;
  r.N = w.dim(0);
  r.K = w.numel() / r.N;
  r.block = scheme == Int8Scheme::Hadamard ? hadamard_block(r.K) : 1;
  r.col_scale.resize(static_cast<size_t>(r.N));
  const Tensor flat = w.reshaped({r.N, r.K});
  // Our kernels' panels take each quantised row as it is made; oneDNN packs from an [N, K] copy.
  const bool ours = kernel != Int8Kernel::OneDnnVnni;
  S8Panels panels = ours ? alloc_s8_panels(r.N, r.K) : S8Panels{};
  std::vector<int8_t> q(ours ? 0 : static_cast<size_t>(r.N * r.K));
  // Rows are converted to f32 one at a time: never a whole f32 copy of a bf16 checkpoint's layer.
  parallel_for(r.N, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(r.K));
    std::vector<int8_t> qrow(ours ? static_cast<size_t>(r.K) : 0);
    for (int64_t n = n0; n < n1; ++n) {
      row_f32(flat, n, r.K, row.data());
      int8_t* dst = ours ? qrow.data() : q.data() + n * r.K;
      r.col_scale[n] = quantize_row(row.data(), row.data(), r.K, r.block, dst) / static_cast<float>(r.block);
      if (ours) put_s8_row(panels, n, dst);
    }
  }, 16);
  if (ours) r.panels = std::make_shared<const S8Panels>(std::move(panels));
  else r.packed = pack_weights_s8(q.data(), r.N, r.K, std::max<int64_t>(1, rows_hint));
  return r;
}

namespace {

// How a kernel wants its rows: our kernels read rows padded to whole 4-byte k-steps (lda = Kp),
// the VNNI ones as u8 (s8 + 128).
bool hand_kernel(Int8Kernel k) { return k != Int8Kernel::OneDnnVnni; }
bool u8_input(Int8Kernel k) { return k == Int8Kernel::HandVnni || k == Int8Kernel::HandAvxVnni; }
int64_t row_bytes(const Int8Weights& w) { return hand_kernel(w.kernel) ? w.panels->Kp : w.K; }

}  // namespace

bool same_quantized_input(const Int8Weights& a, const Int8Weights& b) {
  return a.K == b.K && a.block == b.block && hand_kernel(a.kernel) == hand_kernel(b.kernel) &&
         u8_input(a.kernel) == u8_input(b.kernel) && row_bytes(a) == row_bytes(b);
}

namespace {

// Rows of f32 values quantised for w's kernel: row(r, v) returns row r, in place in the scratch
// row v (a conversion) or where it lies (rotated from there into v).
template <class Row>
QuantizedRows quantize_with(int64_t M, const Int8Weights& w, Row&& row) {
  const int64_t K = w.K, lda = row_bytes(w);
  const bool u8 = u8_input(w.kernel);
  thread_local std::vector<int8_t> qa;
  thread_local std::vector<float> rs;
  int8_t* q = grow(qa, M * lda);
  float* s = grow(rs, M);
  parallel_for(M, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> buf;
    float* v = grow(buf, K);
    for (int64_t r = r0; r < r1; ++r) {
      s[r] = quantize_row(row(r, v), v, K, w.block, q + r * lda, u8);
      std::memset(q + r * lda + K, 0, static_cast<size_t>(lda - K));
    }
  }, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, K)));
  return {q, s, M, lda};
}

PI0_AVX512 void bf16_row_avx512(const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
  }
}

}  // namespace

QuantizedRows quantize_rows(const Mat& x, const Int8Weights& w) {
  return quantize_with(x.rows, w, [&](int64_t r, float*) -> const float* { return x.row(r); });
}

QuantizedRows quantize_rows_bf16(const uint16_t* x, int64_t M, int64_t ld, const Int8Weights& w) {
  return quantize_with(M, w, [&](int64_t r, float* v) -> const float* {
    if (has_avx512()) bf16_row_avx512(x + r * ld, w.K, v);
    else for (int64_t k = 0; k < w.K; ++k) v[k] = bf16_to_f32(x[r * ld + k]);
    return v;
  });
}

void int8_geglu_bf16(const Mat& x, const Int8Weights& pair, uint16_t* y, int64_t ldy) {
  if (x.rows == 0) return;
  const QuantizedRows a = quantize_rows(x, pair);
  thread_local std::vector<int32_t> acc;
  int32_t* c = a.lda <= kVnniKBlock ? nullptr : grow(acc, a.M * pair.N);
  const S8Epilogue ep{.row_scale = a.scale, .col_scale = pair.col_scale.data(), .ldy = ldy,
                      .geglu_cols = pair.geglu_cols, .y_bf16 = y};
  gemm_s8_vnni(reinterpret_cast<const uint8_t*>(a.q), a.lda, a.M, *pair.panels, c, pair.N, ep);
}

void int8_linear(const Mat& x, const Int8Weights& w, const float* bias, Post post, bool accumulate, const Mat& y,
                 const Mat* mul) {
  if (x.rows == 0) return;
  int8_product(quantize_rows(x, w), w, bias, post, accumulate, y, mul);
}

void int8_product(const QuantizedRows& a, const Int8Weights& w, const float* bias, Post post, bool accumulate,
                  const Mat& y, const Mat* mul) {
  const int64_t M = a.M, K = w.K, N = w.N, lda = a.lda;
  if (M == 0) return;
  const bool hand = w.kernel != Int8Kernel::OneDnnVnni, vnni = w.kernel == Int8Kernel::HandVnni,
             avxvnni = w.kernel == Int8Kernel::HandAvxVnni;
  const int8_t* q = a.q;
  const float* s = a.scale;
  thread_local std::vector<int32_t> acc;
  // s32 sums: the VNNI kernel needs them only for K blocks before the last.
  int32_t* c = vnni && lda <= kVnniKBlock ? nullptr : grow(acc, M * N);
  if (vnni) {  // the kernel applies the epilogue itself
    const S8Epilogue ep{.row_scale = s, .col_scale = w.col_scale.data(), .bias = bias, .post = post,
                        .accumulate = accumulate, .y = y.data, .ldy = y.ld, .mul = mul ? mul->data : nullptr,
                        .ldmul = mul ? mul->ld : 0, .geglu_cols = w.geglu_cols};
    return gemm_s8_vnni(reinterpret_cast<const uint8_t*>(q), lda, M, *w.panels, c, N, ep);
  }
  if (avxvnni) {
    gemm_s8_avxvnni(reinterpret_cast<const uint8_t*>(q), lda, M, *w.panels, c, N);
  } else if (hand) {
    gemm_s8(q, lda, M, *w.panels, c, N);
  } else {
    MatmulSpec spec{.M = M, .K = K, .N = N, .lda = K, .b_sk = 1, .b_sn = K, .ldc = N, .s8 = true};
    matmul(spec, q, *w.packed, nullptr, c);
  }
  parallel_for(M, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (!mul) {
        epilogue_row(c + r * N, N, s[r], w.col_scale.data(), bias, post, accumulate, y.row(r));
        continue;
      }
      float* yr = y.row(r);  // y = post(·) ⊙ mul (+ y): the product through a row of scratch
      thread_local std::vector<float> t;
      float* tr = grow(t, N);
      epilogue_row(c + r * N, N, s[r], w.col_scale.data(), bias, post, false, tr);
      for (int64_t j = 0; j < N; ++j) yr[j] = (accumulate ? yr[j] : 0.f) + tr[j] * mul->row(r)[j];
    }
  }, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, N)));
}

bool can_merge_geglu(const Int8Weights& gate, const Int8Weights& up) {
  return gate.kernel == Int8Kernel::HandVnni && up.kernel == Int8Kernel::HandVnni && gate.geglu_cols == 0 &&
         up.geglu_cols == 0 && gate.N == up.N && gate.K == up.K && gate.block == up.block;
}

Int8Weights merge_geglu(const Int8Weights& gate, const Int8Weights& up) {
  Int8Weights r;
  r.kernel = Int8Kernel::HandVnni;
  r.K = gate.K;
  r.block = gate.block;
  r.geglu_cols = gate.N;
  r.panels = std::make_shared<const S8Panels>(
      merge_geglu_panels(*gate.panels, *up.panels, gate.col_scale.data(), up.col_scale.data(), r.col_scale));
  r.N = r.panels->N;
  return r;
}

}  // namespace pi0::cpu
