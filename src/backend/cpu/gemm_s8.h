// The hand-written int8 GEMM: C[M, N] (s32) = A[M, K] (s8) · W[N, K]ᵀ (s8), for CPUs whose oneDNN
// has no VNNI int8 kernel (AVX2 only: oneDNN 2.6 would run its reference loops, hundreds of times
// slower). `vpmaddubsw` multiplies u8 by s8 pairwise into s16; with the sign moved from the weight
// onto the activation (|w| · sign(a, w) = w · a) and both operands in [−127, 127], a pair sums to at
// most 2·127² = 32258 and never saturates, so the s32 result is exact, as VNNI's would be.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"  // Post
#include "backend/cpu/huge_buffer.h"
#include "pi0/threads.h"

namespace pi0::cpu {

// Weights packed once for the kernel: panels of 16 output channels; within a panel, for each
// group of 4 k, the 16 channels' 4 bytes side by side (64 bytes: two ymm loads per k-step).
// N is padded to a multiple of 16 and K to a multiple of 4 with zeros.
struct S8Panels {
  int64_t N = 0, K = 0, Kp = 0, panels = 0;
  HugeBuffer data;  // panels · 16 · Kp bytes, in huge pages where THP allows (streamed by the gigabyte)
  int8_t* bytes() const { return reinterpret_cast<int8_t*>(data.data()); }
  // 128 · Σ_k w[n, k] per channel (panels · 16, zero past N): what the VNNI kernel subtracts
  // because it multiplies activations offset by +128 (vpdpbusd takes u8 × s8).
  std::vector<int32_t> comp;
};

// w: [N, K] s8, every value in [−127, 127] (symmetric quantisation never makes −128).
S8Panels pack_s8_panels(const int8_t* w, int64_t N, int64_t K);
// The same in two steps, so that quantisation can write each row straight into the panels (no
// [N, K] s8 copy to fault in and free at load): zeroed panels, then row n (K values) into them
// and its comp entry. Different rows may be put from different threads.
S8Panels alloc_s8_panels(int64_t N, int64_t K);
void put_s8_row(S8Panels& p, int64_t n, const int8_t* row);

// The loop gemm_s8 and gemm_s8_avxvnni share: tile(panel, first row, rows ≤ mr, cols ≤ 16) for
// every 16-channel panel × mr-row tile. A task is a panel over every row: the panel (16·K bytes,
// ≤ 256 KiB at π0's widest K) stays in L2 while the rows stream past it. Small products run on the
// calling thread.
template <class Tile>
void for_each_panel_tile(const S8Panels& b, int64_t M, int mr, Tile&& tile) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, M * b.Kp * 16));
  parallel_for(b.panels, [&](int64_t p0, int64_t p1) {
    for (int64_t pi = p0; pi < p1; ++pi) {
      const int cols = static_cast<int>(std::min<int64_t>(16, b.N - pi * 16));
      for (int64_t r = 0; r < M; r += mr) tile(pi, r, static_cast<int>(std::min<int64_t>(mr, M - r)), cols);
    }
  }, grain);
}

// Whether this CPU can run gemm_s8 (AVX2; checked, not assumed).
bool gemm_s8_supported();

// C = A · Wᵀ. A has rows of lda ≥ b.Kp bytes, values in [−127, 127], zero in columns [K, Kp).
// C is row-major with row stride ldc ≥ N. Splits the panels over the thread team.
void gemm_s8(const int8_t* a, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc);

// The same product with AVX512-VNNI (`vpdpbusd`, gemm_s8_vnni.cpp), on the same panels. vpdpbusd
// multiplies u8 by s8, so A comes offset: a_u8 = a + 128 (a ^ 0x80), any value in columns
// [K, Kp); the kernel subtracts b.comp, and the s32 result is exact and equal to gemm_s8's (the
// sums wrap mod 2³² at worst, and the true result fits). 6 rows × 64 channels per register tile
// (24 zmm accumulators), K in blocks that keep a 64-channel panel group in L2.
bool gemm_s8_vnni_supported();
void gemm_s8_vnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc);

// AVX-VNNI: the VEX `vpdpbusd` on ymm, for CPUs that have it without AVX-512 (Intel Alder Lake
// and later clients, Sierra Forest): the same panels (a k-step is two ymm), 6 rows × 16 channels
// per register tile, A offset to u8 as above, exact s32 out (the layer's epilogue pass finishes
// it, as for gemm_s8). Allowed under PI0_CPU_ISA=avx2: it is not AVX-512.
bool gemm_s8_avxvnni_supported();
void gemm_s8_avxvnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc);

// The int8 layer's epilogue, applied by the VNNI kernel as each tile leaves its registers:
// y = post(acc · row_scale[m] · col_scale[n] + bias[n]) (· mul[m, n] when mul) (+ y when
// accumulate). `mul` fuses GeGLU's gelu(gate) ⊙ up into the up product. Saves the s32
// round trip through memory (53 MB per VLM gate/up product); C then holds only the partial sums
// of K blocks before the last, so it is touched only where Kp > kVnniKBlock (may be null otherwise).
constexpr int64_t kVnniKBlock = 4096;  // k per block: a 64-channel panel group's block is 256 KiB, in L2
struct S8Epilogue {
  const float* row_scale = nullptr;  // [M]
  const float* col_scale = nullptr;  // [N]
  const float* bias = nullptr;       // [N] or null
  Post post = Post::None;
  bool accumulate = false;
  float* y = nullptr;
  int64_t ldy = 0;
  const float* mul = nullptr;  // [M, N] with row stride ldmul, or null
  int64_t ldmul = 0;
  // > 0: the panels are a GeGLU pair (merge_geglu_panels: each 64-channel group holds 32 gate
  // channels, then the same 32 channels of up), and y[m, j] = gelu_tanh(gate) · up for the
  // geglu_cols = F output columns (+ y when accumulate): gelu(gate) never goes through memory.
  // bias, post and mul are unused then.
  int64_t geglu_cols = 0;
  uint16_t* y_bf16 = nullptr;  // GeGLU pair only: its outputs as bf16 here (row stride ldy), not in y
};
void gemm_s8_vnni(const uint8_t* a_u8, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc,
                  const S8Epilogue& ep);

// The panels of a GeGLU pair for the VNNI kernel's fused epilogue (S8Epilogue::geglu_cols): gate
// and up, both [F, K], interleaved 32 channels at a time (each half padded with zero channels to
// a multiple of 32), so that one 6 × 64 register tile holds both factors of 32 outputs. The
// sources' panels are copied whole (16 channels × Kp each); `col_scale` likewise from the two
// per-channel scale arrays (2 · round_up(F, 32) values, zero in the padding).
S8Panels merge_geglu_panels(const S8Panels& gate, const S8Panels& up, const float* gate_scale, const float* up_scale,
                            std::vector<float>& col_scale);

}  // namespace pi0::cpu
