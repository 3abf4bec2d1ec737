// The raw throughput of the multiply-add instruction each precision's GEMMs run on: fp32 FMA
// (zmm; ymm on AVX2-only CPUs), bf16 `vdpbf16ps`, int8 `vpdpbusd` (on AVX2-only CPUs the
// vpsignb/vpmaddubsw/vpmaddwd/vpaddd group of gemm_s8.h); register-only loops on num_threads()
// threads, the denominator of "fraction of peak" measured on the same machine in the same run.
#pragma once
#include <string>

#include "backend/precision.h"

namespace pi0::cpu {

struct InstructionPeak {
  double gflops = 0;  // GFLOP/s (GOP/s for int8); 0 when the CPU lacks the instruction
  std::string dtype;  // "f32", "bf16", "int8" (vpdpbusd), "int8 vpdpbusd (ymm)" (AVX-VNNI), "int8 vpmaddubsw" (AVX2)
};

// Best of `bursts` bursts of about `burst_ms` each (short bursts read low on shared VMs).
InstructionPeak instruction_peak(Precision p, int bursts = 5, double burst_ms = 50);

}  // namespace pi0::cpu
