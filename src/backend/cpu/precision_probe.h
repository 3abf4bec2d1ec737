// The measurement behind `--precision auto`: one packed oneDNN GEMM of a π0-like shape in bf16
// and in f32 on the thread team, timed after a warm-up. Run once per process (cached): ≈ 100 ms
// where one type is half-rate.
#pragma once
#include "backend/precision.h"

namespace pi0::cpu {

ProbeResult probe_float_gemms();

}  // namespace pi0::cpu
