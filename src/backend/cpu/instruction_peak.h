// The raw throughput of the multiply-add instruction each precision's GEMMs run on: fp32 FMA
// (zmm), bf16 `vdpbf16ps`, int8 `vpdpbusd`; register-only loops on num_threads() threads, the
// denominator of "fraction of peak" measured on the same machine in the same run.
#pragma once
#include <string>

#include "backend/precision.h"

namespace pi0::cpu {

struct InstructionPeak {
  double gflops = 0;  // GFLOP/s (GOP/s for int8); 0 when the CPU lacks the instruction
  std::string dtype;  // "f32", "bf16", "int8"
};

// Best of `bursts` bursts of about `burst_ms` each (short bursts read low on shared VMs).
InstructionPeak instruction_peak(Precision p, int bursts = 5, double burst_ms = 50);

}  // namespace pi0::cpu
