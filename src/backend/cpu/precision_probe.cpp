#include "backend/cpu/precision_probe.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"

namespace pi0::cpu {

namespace {

// 256 × 2048 → 2048 (a VLM q/o product with fewer rows): large enough for oneDNN's blocked
// kernels to reach their steady rate. A smaller 256 × 1024 → 1024 probe read f32 and bf16 as a tie
// (59 vs 61 GFLOP/s) on the Intel VM where full-size π0 then ran 1.36× faster in f32 (prefix 1.8×).
// Best of 2 calls after a warm-up: ≈ 15 ms a call in the faster type, ≈ 30 in the slower.
double gflops(bool bf16) {
  constexpr int64_t M = 256, K = 2048, N = 2048;
  std::vector<uint16_t> a16(bf16 ? M * K : 0, 0x3f80), b16(bf16 ? N * K : 0, 0x3c00);
  std::vector<float> a32(bf16 ? 0 : M * K, 1.f), b32(bf16 ? 0 : N * K, 0.5f), c(M * N);
  const void* a = bf16 ? static_cast<const void*>(a16.data()) : a32.data();
  const void* b = bf16 ? static_cast<const void*>(b16.data()) : b32.data();
  const MatmulSpec s{.M = M, .K = K, .N = N, .lda = K, .b_sk = 1, .b_sn = K, .ldc = N, .bf16 = bf16};
  const auto packed = pack_weights(b, N, K, bf16, M);
  matmul(s, a, *packed, nullptr, c.data());
  double best = 1e30;
  for (int r = 0; r < 2; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    matmul(s, a, *packed, nullptr, c.data());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * M * K * N / best / 1e9;
}

}  // namespace

ProbeResult probe_float_gemms() {
  static const ProbeResult r = [] {
    ProbeResult p;
    p.has_bf16 = dnnl_bf16_supported();
    p.f32_gflops = gflops(false);
    if (p.has_bf16) p.bf16_gflops = gflops(true);
    return p;
  }();
  return r;
}

}  // namespace pi0::cpu
