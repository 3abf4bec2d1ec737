// bf16 GEMM kernels on π0's real shapes (M × K → N): oneDNN with the weights as stored, oneDNN
// with the weights reordered once into its blocked layout, and the hand-written AVX-512-BF16
// kernel reading the stored [out, in] layout. Reports GFLOP/s and the percentage of the
// machine's `vdpbf16ps` instruction peak, measured at start-up with a register-only loop on the
// same threads. README, "GEMM kernels", records a run.
//
//   build/pi0_bench_gemm [--benchmark_filter=816x] [--benchmark_min_time=0.5]
//   PI0_THREADS=1 build/pi0_bench_gemm        (default: every core)
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm_avx512bf16.h"
#include "pi0/tensor.h"
#include "pi0/threads.h"

using namespace pi0;

namespace {

// 24 independent accumulators cover vdpbf16ps's latency × throughput on current cores.
__attribute__((target("avx512f,avx512bf16"), noinline)) float dp_loop(int64_t iters) {
  constexpr int A = 24;
  __m512 acc[A];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < A; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __asm__ volatile("" : "+v"(x));
  }
  alignas(64) float lanes[16];
  float s = 0;
  for (auto& a : acc) {
    _mm512_store_ps(lanes, a);
    s += lanes[0];
  }
  return s;
}

// Best of five bursts of ≈ 50 ms on num_threads() threads: 64 FLOP per instruction (16 lanes ×
// 2 pairs × multiply-add). Bursts of a few ms read anywhere from 50% to 100% of the real peak on
// these shared VMs.
double instruction_peak_gflops() {
  if (!cpu::has_avx512_bf16()) return 0;
  const int nt = num_threads();
  const int64_t iters = 20'000'000;
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < nt; ++t) th.emplace_back([&] { volatile float s = dp_loop(iters); (void)s; });
    for (auto& t : th) t.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, nt * static_cast<double>(iters) * 24 * 64 / dt / 1e9);
  }
  return best;
}

double g_peak = 0;

struct GemmShape {
  int64_t M, K, N;
  const char* where;
};

// The shapes of π0 / π0.5 inference (README table): prefix (816 rows for π0), SigLIP (768 =
// 3 cameras × 256), the action expert (51 suffix rows), and the per-call heads (M = 1).
const GemmShape kShapes[] = {
    {816, 2048, 16384, "vlm_gate_up"}, {816, 16384, 2048, "vlm_down"}, {816, 2048, 2048, "vlm_q_o"},
    {816, 2048, 256, "vlm_kv"},        {768, 1152, 4304, "siglip_fc1"}, {768, 4304, 1152, "siglip_fc2"},
    {768, 1152, 1152, "siglip_qkvo"},  {768, 1152, 2048, "projector"},  {51, 1024, 4096, "expert_gate_up"},
    {51, 4096, 1024, "expert_down"},   {51, 1024, 2048, "expert_q"},    {51, 2048, 1024, "expert_o"},
    {51, 1024, 256, "expert_kv"},      {50, 1024, 32, "action_out"},    {1, 1024, 3072, "adarms_mod"},
    {1, 1024, 1024, "time_mlp"},
};

enum class Impl { OneDnn, OneDnnPacked, Avx512Bf16 };

struct Data {
  std::vector<uint16_t> a, w;
  std::vector<float> c;
  explicit Data(const GemmShape& s) : a(s.M * s.K), w(s.N * s.K), c(s.M * s.N) {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.f, 1.f);
    for (auto& x : a) x = f32_to_bf16(n(rng));
    for (auto& x : w) x = f32_to_bf16(n(rng) * 0.03f);
  }
};

void run(benchmark::State& st, GemmShape sh, Impl impl) {
  if (impl == Impl::Avx512Bf16 && !cpu::has_avx512_bf16()) {
    st.SkipWithError("no AVX512_BF16 on this CPU");
    return;
  }
  Data d(sh);
  cpu::MatmulSpec s{.M = sh.M, .K = sh.K, .N = sh.N, .lda = sh.K, .b_sk = 1, .b_sn = sh.K, .ldc = sh.N};
  std::shared_ptr<const cpu::PackedWeights> packed;
  if (impl == Impl::OneDnnPacked) packed = cpu::pack_weights(d.w.data(), sh.N, sh.K, true, sh.M);
  auto once = [&] {
    switch (impl) {
      case Impl::OneDnn: cpu::matmul(s, d.a.data(), d.w.data(), nullptr, d.c.data()); break;
      case Impl::OneDnnPacked: cpu::matmul(s, d.a.data(), *packed, nullptr, d.c.data()); break;
      case Impl::Avx512Bf16: cpu::gemm_bf16_nk(s, d.a.data(), d.w.data(), nullptr, d.c.data()); break;
    }
  };
  once();  // primitive creation / first touch outside the timing
  for (auto _ : st) {
    once();
    benchmark::DoNotOptimize(d.c.data());
  }
  const double flop = 2.0 * sh.M * sh.K * sh.N;
  st.counters["GFLOP/s"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak"] = g_peak;
  st.SetLabel(sh.where);
}

}  // namespace

int main(int argc, char** argv) {
  const char* t = std::getenv("PI0_THREADS");
  set_num_threads(t ? std::atoi(t) : 0);
  g_peak = instruction_peak_gflops();
  std::fprintf(stderr, "threads %d, vdpbf16ps instruction peak %.1f GFLOP/s\n", num_threads(), g_peak);
  for (const GemmShape& sh : kShapes) {
    const std::string name = std::to_string(sh.M) + "x" + std::to_string(sh.K) + "x" + std::to_string(sh.N);
    for (auto [impl, tag] : {std::pair{Impl::OneDnn, "onednn"}, {Impl::OneDnnPacked, "onednn_packed"},
                             {Impl::Avx512Bf16, "avx512bf16"}})
      benchmark::RegisterBenchmark((name + "/" + tag).c_str(), run, sh, impl)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
