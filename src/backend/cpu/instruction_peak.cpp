#include "backend/cpu/instruction_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "backend/cpu/kernels.h"
#include "pi0/threads.h"

namespace pi0::cpu {

namespace {

// 24 independent accumulators cover latency × throughput on current cores. Each function returns
// a value derived from the sums so the loop cannot be dropped.
constexpr int kAcc = 24;

__attribute__((target("avx512f"), noinline)) float fma_loop(int64_t iters) {
  __m512 acc[kAcc];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512 x = _mm512_set1_ps(1.f), y = _mm512_set1_ps(1e-9f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(x, y, acc[i]);
    __asm__ volatile("" : "+v"(x));
  }
  float s = 0;
  for (auto& a : acc) s += _mm512_reduce_add_ps(a);
  return s;
}

__attribute__((target("avx512f,avx512bf16"), noinline)) float bf16_loop(int64_t iters) {
  __m512 acc[kAcc];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  float s = 0;
  for (auto& a : acc) s += _mm512_reduce_add_ps(a);
  return s;
}

__attribute__((target("avx512f,avx512vnni"), noinline)) float vnni_loop(int64_t iters) {
  __m512i acc[kAcc];
  for (auto& a : acc) a = _mm512_setzero_si512();
  __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  float s = 0;
  for (auto& a : acc) s += static_cast<float>(_mm512_reduce_add_epi32(a));
  return s;
}

}  // namespace

InstructionPeak instruction_peak(Precision p, int bursts, double burst_ms) {
  InstructionPeak r;
  float (*loop)(int64_t) = nullptr;
  double flop_per_insn = 0;  // per zmm instruction: lanes × multiply-adds × 2
  switch (p) {
    case Precision::Int8:
      r.dtype = "int8";
      if (has_avx512() && __builtin_cpu_supports("avx512vnni")) loop = vnni_loop, flop_per_insn = 16 * 4 * 2;
      break;
    case Precision::BF16:
      r.dtype = "bf16";
      if (has_avx512() && __builtin_cpu_supports("avx512bf16")) loop = bf16_loop, flop_per_insn = 16 * 2 * 2;
      break;
    default:
      r.dtype = "f32";
      if (has_avx512()) loop = fma_loop, flop_per_insn = 16 * 2;
  }
  if (!loop) return r;
  // Calibrate iterations to the burst length on one thread.
  int64_t iters = 100'000;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float s = loop(iters);
    (void)s;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms > burst_ms / 4) {
      iters = static_cast<int64_t>(iters * burst_ms / ms);
      break;
    }
    iters *= 4;
  }
  const int nt = num_threads();
  for (int b = 0; b < bursts; ++b) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < nt; ++t) th.emplace_back([&] { volatile float s = loop(iters); (void)s; });
    for (auto& t : th) t.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.gflops = std::max(r.gflops, nt * static_cast<double>(iters) * kAcc * flop_per_insn / dt / 1e9);
  }
  return r;
}

}  // namespace pi0::cpu
