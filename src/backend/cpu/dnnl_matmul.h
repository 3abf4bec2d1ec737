// bf16 (or f32) matrix products through oneDNN's brgemm kernels, which reach 80–98% of this
// machine's bf16 peak on π0's shapes (README, "GEMM kernels"). Primitives are created once per
// shape and cached: the JIT and descriptor work never repeats inside the denoise loop.
#pragma once
#include <cstdint>
#include <memory>

namespace pi0::cpu {

enum class Post { None, GeluTanh, Silu };

// C[M, N] (=|+=) post(A[M, K] · B[K, N] + bias). A is row-major with row stride lda; element
// (k, n) of B sits at B[k·b_sk + n·b_sn] (a linear layer's [out, in] weight is b_sk = 1,
// b_sn = in); C is row-major f32 or bf16 with row stride ldc. With `bf16` false, A and B are f32.
struct MatmulSpec {
  int64_t M = 0, K = 0, N = 0;
  int64_t lda = 0, b_sk = 0, b_sn = 0, ldc = 0;
  bool bf16 = true;       // A and B dtype: bf16, else f32
  bool s8 = false;        // A and B s8, C s32 (overrides bf16 / c_bf16; no bias or post-op): int8 path
  bool c_bf16 = false;    // C dtype
  bool bias = false;      // f32 bias [N]
  Post post = Post::None;
  bool accumulate = false;  // C += (no post-op allowed with it)
};

void matmul(const MatmulSpec& s, const void* A, const void* B, const float* bias, void* C);

// Weights [N, K] reordered once into the blocked layout oneDNN picks for products with about
// `rows_hint` rows: faster than the plain layout at every π0 shape (+19–37% at the denoise
// loop's M = 51, +8–13% at the VLM's M = 816).
struct PackedWeights;
std::shared_ptr<const PackedWeights> pack_weights(const void* w, int64_t N, int64_t K, bool bf16, int64_t rows_hint);
// As above for s8 weights of the int8 path (A s8, C s32; oneDNN adds its s8-source compensation).
std::shared_ptr<const PackedWeights> pack_weights_s8(const int8_t* w, int64_t N, int64_t K, int64_t rows_hint);
// As matmul(), with B given packed (s.b_sk / s.b_sn are ignored).
void matmul(const MatmulSpec& s, const void* A, const PackedWeights& B, const float* bias, void* C);

// Whether oneDNN can run bf16 matmuls on this CPU (AVX-512 BF16 natively, or AVX-512 emulated).
bool dnnl_bf16_supported();
// Whether oneDNN runs s8 matmuls with VNNI here (AVX512-VNNI, within PI0_CPU_ISA).
bool dnnl_int8_vnni_supported();

}  // namespace pi0::cpu
