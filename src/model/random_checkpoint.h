// Writes a checkpoint directory with random weights in exactly openpi's layout (config.json +
// model.safetensors), for the demo, for tests on arbitrary shapes and for full-size benchmarks.
#pragma once
#include <cstdint>
#include <string>

#include "pi0/config.h"
#include "pi0/tensor.h"

namespace pi0 {

struct RandomCheckpointOptions {
  DType dtype = DType::F32;  // F32 or BF16
  uint64_t seed = 0;
  bool progress = false;     // progress bar on stderr
};

void write_random_checkpoint(const std::string& dir, const ModelConfig& cfg, const RandomCheckpointOptions& opt);

}  // namespace pi0
