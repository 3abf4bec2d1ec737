// The compute type of a backend's matrix products, chosen by the user or (`auto`) by measuring
// this machine: which of bf16 and f32 is faster depends on the CPU (full-rate `vdpbf16ps` or AMX
// on some, half-rate bf16 behind fast fp32 FMA on others), so no table of CPU models decides it.
#pragma once
#include <string>

namespace pi0 {

// Auto: the faster of BF16 and F32 on this machine (never Int8: it changes results more).
enum class Precision { Auto, BF16, F32, Int8 };

// "auto" | "bf16" | "f32" | "int8"; throws pi0::Error naming the choices otherwise.
Precision parse_precision(const std::string& text);
std::string precision_name(Precision p);

// What the backend is asked for at creation.
struct BackendOptions {
  Precision precision = Precision::Auto;
  // Only where int8 runs on oneDNN's kernel (no longer the default on any CPU: ours run every
  // layer): int8 applies to layers that typically see at least this many rows, smaller products
  // stay in float. oneDNN 2.6's int8 brgemm was slow at small M on the Intel VM (full-size π0's
  // denoise step, M = 51: 3.4 s in int8 against 0.97 s in bf16).
  int64_t int8_min_rows = 128;
};

// Throughput of one representative packed GEMM in each float type on the thread team.
struct ProbeResult {
  double bf16_gflops = 0, f32_gflops = 0;
  bool has_bf16 = false;  // oneDNN has a bf16 matmul on this CPU (and within PI0_CPU_ISA)
};

struct PrecisionChoice {
  Precision precision = Precision::F32;
  std::string reason;  // one line, e.g. "auto: f32 (probe: f32 FMA 310 GFLOP/s vs bf16 150 GFLOP/s)"
};

// Auto's rule: bf16 unless f32 measured more than 5% faster. bf16 wins near-ties because its
// weights take half the memory and bandwidth; a 5% margin keeps auto within 5% of the faster type.
PrecisionChoice choose_precision(const ProbeResult& probe);

}  // namespace pi0
