// A hand-written AVX-512-BF16 GEMM (`vdpbf16ps`) that reads a linear layer's weights in the
// checkpoint's own [out, in] layout: consecutive K values of one output row are exactly the bf16
// pairs `vdpbf16ps` multiplies, so the weights need no packing and stay zero-copy in the map.
// Each accumulator holds 16 partial sums of one (row, column) dot product; a 4×6 register tile
// shares every A and W load over 6 or 4 products. Measured against oneDNN in bench/bench_gemm.cpp
// (README, "GEMM kernels"); the backend uses whichever is faster per shape class.
#pragma once
#include <cstdint>

#include "backend/cpu/dnnl_matmul.h"

namespace pi0::cpu {

// The CPU has AVX-512F/BW/VL/DQ and AVX512_BF16 (checked once at run time).
bool has_avx512_bf16();

// C[M, N] (=|+=) post(A[M, K] · W[N, K]ᵀ + bias). A: bf16 rows, stride s.lda. W: bf16, row n at
// W + n·s.b_sn (s.b_sk must be 1). C: f32 or bf16 (s.c_bf16), stride s.ldc. Splits the columns
// over the thread pool, except for small products (≤ 4 Mi multiply-adds), which run on the
// calling thread, as do all calls from inside a parallel region. Requires has_avx512_bf16().
void gemm_bf16_nk(const MatmulSpec& s, const uint16_t* A, const uint16_t* W, const float* bias, void* C);

}  // namespace pi0::cpu
