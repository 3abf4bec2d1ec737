// The int8 (W8A8) linear layer: weights quantised once at load, symmetric per output channel
// (s8); activations quantised per row on the fly (s8, absmax/127); exact s32 products, through
// oneDNN's VNNI brgemm (`vpdpbusd`) where the CPU has AVX512-VNNI, else through our AVX2 kernel
// (gemm_s8.h); the scales, bias, activation and residual applied in one epilogue pass. oneDNN 2.6
// cannot scale by row inside the GEMM (a binary post-op of shape [M, 1] drops it to its
// reference kernel), hence the s32 output and our own epilogue.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm_s8.h"
#include "backend/ops.h"

namespace pi0::cpu {

// naive: plain per-token / per-channel absmax. hadamard: rows and weights rotated by a block
// Hadamard transform first (hadamard.h), robust to channel outliers without calibration.
// PI0_INT8_SCHEME=naive|hadamard picks it (default hadamard) so both can be shown side by side.
enum class Int8Scheme { Naive, Hadamard };
Int8Scheme int8_scheme_from_env();

// Which s8 GEMM runs the products. HandVnni (gemm_s8_vnni) and OneDnnVnni need AVX512-VNNI;
// HandAvxVnni (gemm_s8_avxvnni) AVX-VNNI; HandAvx2 (gemm_s8) runs on any CPU with AVX2 and FMA.
// int8_support picks the first of HandVnni, HandAvxVnni, HandAvx2 the CPU has (ours beat oneDNN
// 2.6's on 12 of π0's 14 shapes, see README "GEMM kernels"); OneDnnVnni stays for the comparison
// (bench_gemm's `onednn_int8` row).
enum class Int8Kernel { OneDnnVnni, HandAvx2, HandVnni, HandAvxVnni };
// The kernel for this CPU (within PI0_CPU_ISA), or none: the message says what is missing.
struct Int8Support {
  bool ok = false;
  Int8Kernel kernel = Int8Kernel::HandAvx2;
  std::string why;  // "oneDNN VNNI" / "AVX2 vpmaddubsw" when ok, else what the CPU lacks
};
Int8Support int8_support();

struct Int8Weights {
  int64_t N = 0, K = 0;
  int block = 1;                  // Hadamard block (1: none)
  Int8Kernel kernel = Int8Kernel::OneDnnVnni;
  std::vector<float> col_scale;   // per output channel, with the 1/block of the rotation folded in
  std::shared_ptr<const PackedWeights> packed;  // OneDnnVnni
  std::shared_ptr<const S8Panels> panels;       // our kernels
  int64_t geglu_cols = 0;  // > 0: a merged GeGLU pair (merge_geglu) of this many outputs; N = its panel channels
};

// w: [N, K] F32/BF16/F16 (a view into a map is fine: read once, row by row).
Int8Weights quantize_weights(const Tensor& w, int64_t rows_hint, Int8Scheme scheme, Int8Kernel kernel);

// y (=|+=) post(x·Wᵀ · scales + bias) (⊙ *mul, elementwise, when given: GeGLU's gate). bias null
// or [N]. Thread-safe (per-thread scratch). For a merged GeGLU pair y (=|+=) gelu(x·Gᵀ) ⊙ x·Uᵀ,
// [M, geglu_cols], bias and post unused.
void int8_linear(const Mat& x, const Int8Weights& w, const float* bias, Post post, bool accumulate, const Mat& y,
                 const Mat* mul = nullptr);

// The two halves of int8_linear, for products that share their input (Q, K and V read the same
// normed rows): quantise the rows once, then run each product on them. The rows are rotated by
// w's Hadamard block and offset to u8 for the VNNI kernels, so they fit every weight for which
// same_quantized_input(w, that weight) holds. They live in this thread's scratch: valid until its
// next quantize_rows.
struct QuantizedRows {
  const int8_t* q = nullptr;  // M rows, lda bytes apart
  const float* scale = nullptr;  // per row
  int64_t M = 0, lda = 0;
};
QuantizedRows quantize_rows(const Mat& x, const Int8Weights& w);
bool same_quantized_input(const Int8Weights& a, const Int8Weights& b);
void int8_product(const QuantizedRows& a, const Int8Weights& w, const float* bias, Post post, bool accumulate,
                  const Mat& y, const Mat* mul = nullptr);

// GeGLU's gate and up ([F, K] each) as one product for the AVX512-VNNI kernel, whose epilogue
// then computes gelu(gate) ⊙ up in registers (merge_geglu_panels): one quantisation of the input
// and no [M, F] f32 gate buffer written and read back. can_merge_geglu: both quantised for
// HandVnni with the same shape and block.
bool can_merge_geglu(const Int8Weights& gate, const Int8Weights& up);
// The merged pair with its [M, geglu_cols] output in bf16 (row stride ldy), as the down
// projection's input, which quantize_rows_bf16 then reads: half the bytes of an f32 [M, F]
// written and read back (26 MB instead of 53 each way per VLM layer). bf16's 8-bit mantissa is
// finer than the int8 step the row then gets.
void int8_geglu_bf16(const Mat& x, const Int8Weights& pair, uint16_t* y, int64_t ldy);
QuantizedRows quantize_rows_bf16(const uint16_t* x, int64_t M, int64_t ld, const Int8Weights& w);
Int8Weights merge_geglu(const Int8Weights& gate, const Int8Weights& up);

}  // namespace pi0::cpu
