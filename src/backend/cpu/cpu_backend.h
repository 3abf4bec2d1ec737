#pragma once
#include <memory>

#include "backend/ops.h"

namespace pi0 {
// The fast default backend: bf16 weights (zero-copy from bf16 checkpoints), oneDNN GEMMs with
// fused epilogues, blocked MQA-aware attention, AVX-512 row kernels; fp32 GEMMs on CPUs where
// oneDNN has no bf16 path.
std::unique_ptr<Backend> make_cpu_backend();
}  // namespace pi0
