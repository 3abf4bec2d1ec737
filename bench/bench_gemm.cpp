// bf16 GEMM kernels on π0's real shapes (M × K → N): oneDNN with the weights as stored, oneDNN
// with the weights reordered once into its blocked layout, and the hand-written AVX-512-BF16
// kernel reading the stored [out, in] layout; and the int8 (W8A8) linear layer. Reports GFLOP/s
// (GOP/s for int8) and the instruction peak (`vdpbf16ps`, or `vpdpbusd` for int8), measured at
// start-up with register-only loops on the same threads. README, "GEMM kernels", records a run.
//
//   build/pi0_bench_gemm [--benchmark_filter=816x] [--benchmark_min_time=0.5]
//   PI0_THREADS=1 build/pi0_bench_gemm        (default: every core)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/gemm_avx512bf16.h"
#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/instruction_peak.h"
#include "backend/cpu/int8_linear.h"
#include "pi0/tensor.h"
#include "pi0/threads.h"

using namespace pi0;

namespace {

double g_peak = 0, g_peak_int8 = 0, g_peak_f32 = 0;

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

enum class Impl { OneDnn, OneDnnPacked, Avx512Bf16, Int8, F32Packed, S8Hand, S8Vnni, S8AvxVnni };

struct Data {
  std::vector<uint16_t> a, w;
  std::vector<float> c, af, wf;
  explicit Data(const GemmShape& s) : a(s.M * s.K), w(s.N * s.K), c(s.M * s.N) {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.f, 1.f);
    for (auto& x : a) x = f32_to_bf16(n(rng));
    for (auto& x : w) x = f32_to_bf16(n(rng) * 0.03f);
    for (uint16_t v : a) af.push_back(bf16_to_f32(v));
    for (uint16_t v : w) wf.push_back(bf16_to_f32(v));
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
  if (impl == Impl::Int8 && !cpu::dnnl_int8_vnni_supported()) {
    st.SkipWithError("no AVX512-VNNI int8 matmul on this CPU");
    return;
  }
  if (impl == Impl::S8Hand && !cpu::gemm_s8_supported()) {
    st.SkipWithError("no AVX2 on this CPU");
    return;
  }
  if (impl == Impl::S8Vnni && !cpu::gemm_s8_vnni_supported()) {
    st.SkipWithError("no AVX512-VNNI on this CPU");
    return;
  }
  if (impl == Impl::S8AvxVnni && !cpu::gemm_s8_avxvnni_supported()) {
    st.SkipWithError("no AVX-VNNI on this CPU");
    return;
  }
  if (impl == Impl::OneDnn || impl == Impl::OneDnnPacked) {
    if (!cpu::dnnl_bf16_supported()) {
      st.SkipWithError("no bf16 matmul in oneDNN on this CPU");
      return;
    }
  }
  cpu::MatmulSpec f{.M = sh.M, .K = sh.K, .N = sh.N, .lda = sh.K, .b_sk = 1, .b_sn = sh.K, .ldc = sh.N, .bf16 = false};
  if (impl == Impl::F32Packed) packed = cpu::pack_weights(d.wf.data(), sh.N, sh.K, false, sh.M);
  // int8: the whole W8A8 linear the backend runs (Hadamard rotation and quantisation of the rows,
  // the s8 GEMM: oneDNN's VNNI one or a hand-written one, AVX2 or VNNI; the scaling epilogue), on f32 inputs.
  const bool int8 = impl == Impl::Int8 || impl == Impl::S8Hand || impl == Impl::S8Vnni || impl == Impl::S8AvxVnni;
  cpu::Int8Weights q;
  if (int8)
    q = cpu::quantize_weights(Tensor::view(DType::BF16, {sh.N, sh.K}, d.w.data(), nullptr), sh.M, cpu::Int8Scheme::Hadamard,
                              impl == Impl::S8Hand   ? cpu::Int8Kernel::HandAvx2
                              : impl == Impl::S8Vnni ? cpu::Int8Kernel::HandVnni
                              : impl == Impl::S8AvxVnni ? cpu::Int8Kernel::HandAvxVnni
                                                     : cpu::Int8Kernel::OneDnnVnni);
  auto once = [&] {
    switch (impl) {
      case Impl::OneDnn: cpu::matmul(s, d.a.data(), d.w.data(), nullptr, d.c.data()); break;
      case Impl::OneDnnPacked: cpu::matmul(s, d.a.data(), *packed, nullptr, d.c.data()); break;
      case Impl::Avx512Bf16: cpu::gemm_bf16_nk(s, d.a.data(), d.w.data(), nullptr, d.c.data()); break;
      case Impl::Int8:
      case Impl::S8Hand:
      case Impl::S8Vnni:
      case Impl::S8AvxVnni:
        cpu::int8_linear({d.af.data(), sh.M, sh.K, sh.K}, q, nullptr, cpu::Post::None, false, {d.c.data(), sh.M, sh.N, sh.N});
        break;
      case Impl::F32Packed: cpu::matmul(f, d.af.data(), *packed, nullptr, d.c.data()); break;
    }
  };
  once();  // primitive creation / first touch outside the timing
  for (auto _ : st) {
    once();
    benchmark::DoNotOptimize(d.c.data());
  }
  const double flop = 2.0 * sh.M * sh.K * sh.N;
  st.counters["GFLOP/s"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak"] = int8 ? g_peak_int8 : impl == Impl::F32Packed ? g_peak_f32 : g_peak;
  st.SetLabel(sh.where);
}

}  // namespace

int main(int argc, char** argv) {
  const char* t = std::getenv("PI0_THREADS");
  set_num_threads(t ? std::atoi(t) : 0);
  g_peak = cpu::instruction_peak(Precision::BF16).gflops;
  const cpu::InstructionPeak int8 = cpu::instruction_peak(Precision::Int8);
  g_peak_int8 = int8.gflops;
  g_peak_f32 = cpu::instruction_peak(Precision::F32).gflops;
  std::fprintf(stderr, "threads %d, instruction peaks: vdpbf16ps %.1f GFLOP/s, %s %.1f GOP/s, fp32 FMA %.1f GFLOP/s\n",
               num_threads(), g_peak, int8.dtype.c_str(), g_peak_int8, g_peak_f32);
  for (const GemmShape& sh : kShapes) {
    const std::string name = std::to_string(sh.M) + "x" + std::to_string(sh.K) + "x" + std::to_string(sh.N);
    for (auto [impl, tag] : {std::pair{Impl::OneDnn, "onednn"}, {Impl::OneDnnPacked, "onednn_packed"},
                             {Impl::Avx512Bf16, "avx512bf16"}, {Impl::Int8, "onednn_int8"},
                             {Impl::F32Packed, "onednn_f32_packed"}, {Impl::S8Hand, "hand_int8"},
                             {Impl::S8Vnni, "vnni_int8"}, {Impl::S8AvxVnni, "avxvnni_int8"}})
      benchmark::RegisterBenchmark((name + "/" + tag).c_str(), run, sh, impl)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
