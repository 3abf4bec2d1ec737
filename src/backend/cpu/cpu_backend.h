#pragma once
#include <memory>

#include "backend/ops.h"

namespace pi0 {
// The fast default backend: oneDNN GEMMs on packed weights with fused epilogues, blocked
// MQA-aware attention, AVX-512 row kernels. GEMMs in bf16 or f32 (auto: whichever a probe
// measures faster here; f32 only on CPUs where oneDNN has no bf16 path, e.g. PI0_CPU_ISA=avx2),
// or int8 on request (int8_linear.h; attention and the tiny heads stay in the faster float type).
std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options = {});
}  // namespace pi0
