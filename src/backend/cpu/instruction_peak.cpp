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
    // Inline asm on a scalar copy: GCC 12 moved _mm512_dpbusd_epi32's accumulators through the
    // stack (objdump: a load and a store per instruction), which read this peak as 695 GOP/s on a
    // Zen 5 where oneDNN's int8 GEMM ran at 1370.
    for (int i = 0; i < kAcc; ++i) {
      __m512i t = acc[i];  // an asm operand of acc[i] itself kept the array on the stack
      __asm__("vpdpbusd %2, %1, %0" : "+v"(t) : "v"(x), "v"(y));
      acc[i] = t;
    }
    __asm__ volatile("" : "+v"(x));
  }
  float s = 0;
  for (auto& a : acc) s += static_cast<float>(_mm512_reduce_add_epi32(a));
  return s;
}

constexpr int kAccInt8 = 12;  // 12 accumulators + 4 operands fill the 16 ymm registers

// Every s32 lane of n ymm accumulators, summed: what the int8 loops return.
__attribute__((target("avx2"))) inline float sum_lanes(const __m256i* acc, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) {
    alignas(32) int32_t v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), acc[i]);
    for (int32_t f : v) s += static_cast<float>(f);
  }
  return s;
}

// AVX-VNNI without AVX-512: the VEX vpdpbusd on ymm (gemm_s8_avxvnni), 12 accumulators.
__attribute__((target("avx2,avxvnni"), noinline)) float vnni_ymm_loop(int64_t iters) {
  constexpr int n = kAccInt8;
  __m256i acc[n];
  for (auto& a : acc) a = _mm256_setzero_si256();
  __m256i x = _mm256_set1_epi8(1), y = _mm256_set1_epi8(1);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < n; ++i) {
      __m256i t = acc[i];
      __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(t) : "x"(x), "x"(y));
      acc[i] = t;
    }
    __asm__ volatile("" : "+x"(x));
  }
  return sum_lanes(acc, kAccInt8);
}

// CPUs without AVX-512: fp32 FMA on ymm, and the int8 step the AVX2 GEMM runs (gemm_s8.h):
// vpsignb + vpmaddubsw + vpmaddwd + vpaddd, 32 multiply-adds per group of four instructions.
__attribute__((target("avx2,fma"), noinline)) float fma_loop_avx2(int64_t iters) {
  __m256 acc[kAcc];
  for (auto& a : acc) a = _mm256_setzero_ps();
  __m256 x = _mm256_set1_ps(1.f), y = _mm256_set1_ps(1e-9f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(x, y, acc[i]);
    __asm__ volatile("" : "+x"(x));
  }
  float s = 0;
  for (auto& a : acc) {
    alignas(32) float v[8];
    _mm256_store_ps(v, a);
    for (float f : v) s += f;
  }
  return s;
}

__attribute__((target("avx2"), noinline)) float maddubs_loop(int64_t iters) {
  __m256i acc[kAccInt8];
  for (auto& a : acc) a = _mm256_setzero_si256();
  __m256i x = _mm256_set1_epi8(1), w = _mm256_set1_epi8(1);
  const __m256i ones = _mm256_set1_epi16(1), wabs = _mm256_abs_epi8(w);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kAccInt8; ++i)
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(x, w)), ones));
    __asm__ volatile("" : "+x"(x));
  }
  return sum_lanes(acc, kAccInt8);
}

}  // namespace

InstructionPeak instruction_peak(Precision p, int bursts, double burst_ms) {
  InstructionPeak r;
  float (*loop)(int64_t) = nullptr;
  double flop_per_insn = 0;  // per vector instruction (group, for AVX2 int8): lanes × multiply-adds × 2
  int accs = kAcc;
  switch (p) {
    case Precision::Int8:
      r.dtype = "int8";
      if (has_avx512() && __builtin_cpu_supports("avx512vnni")) loop = vnni_loop, flop_per_insn = 16 * 4 * 2;
      else if (has_avx_vnni())
        loop = vnni_ymm_loop, flop_per_insn = 8 * 4 * 2, accs = kAccInt8, r.dtype = "int8 vpdpbusd (ymm)";
      else if (has_avx2_fma()) loop = maddubs_loop, flop_per_insn = 8 * 4 * 2, accs = kAccInt8, r.dtype = "int8 vpmaddubsw";
      break;
    case Precision::BF16:
      r.dtype = "bf16";
      if (has_avx512() && __builtin_cpu_supports("avx512bf16")) loop = bf16_loop, flop_per_insn = 16 * 2 * 2;
      break;
    default:
      r.dtype = "f32";
      if (has_avx512()) loop = fma_loop, flop_per_insn = 16 * 2;
      else if (has_avx2_fma()) loop = fma_loop_avx2, flop_per_insn = 8 * 2;
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
    r.gflops = std::max(r.gflops, nt * static_cast<double>(iters) * accs * flop_per_insn / dt / 1e9);
  }
  return r;
}

}  // namespace pi0::cpu
