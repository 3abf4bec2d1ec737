// The hand-written int8 GEMM: C[M, N] (s32) = A[M, K] (s8) · W[N, K]ᵀ (s8), for CPUs whose oneDNN
// has no VNNI int8 kernel (AVX2 only: oneDNN 2.6 would run its reference loops, hundreds of times
// slower). `vpmaddubsw` multiplies u8 by s8 pairwise into s16; with the sign moved from the weight
// onto the activation (|w| · sign(a, w) = w · a) and both operands in [−127, 127], a pair sums to at
// most 2·127² = 32258 and never saturates, so the s32 result is exact, as VNNI's would be.
#pragma once
#include <cstdint>
#include <memory>

namespace pi0::cpu {

// Weights packed once for the kernel: panels of 16 output channels; within a panel, for each
// group of 4 k, the 16 channels' 4 bytes side by side (64 bytes: two ymm loads per k-step).
// N is padded to a multiple of 16 and K to a multiple of 4 with zeros.
struct S8Panels {
  int64_t N = 0, K = 0, Kp = 0, panels = 0;
  std::unique_ptr<int8_t, void (*)(void*)> data{nullptr, nullptr};
};

// w: [N, K] s8, every value in [−127, 127] (symmetric quantisation never makes −128).
S8Panels pack_s8_panels(const int8_t* w, int64_t N, int64_t K);

// Whether this CPU can run gemm_s8 (AVX2; checked, not assumed).
bool gemm_s8_supported();

// C = A · Wᵀ. A has rows of lda ≥ b.Kp bytes, values in [−127, 127], zero in columns [K, Kp).
// C is row-major with row stride ldc ≥ N. Splits the panels over the thread team.
void gemm_s8(const int8_t* a, int64_t lda, int64_t M, const S8Panels& b, int32_t* c, int64_t ldc);

}  // namespace pi0::cpu
