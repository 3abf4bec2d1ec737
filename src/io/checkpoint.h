// A checkpoint directory (SPEC §4.2, §4.3): config.json + model.safetensors (or shards with
// model.safetensors.index.json), openpi or LeRobot key names. Opening it maps the files, settles
// the config against the tensors and checks the complete tensor set, reporting every problem at once.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/layout.h"
#include "pi0/config.h"
#include "pi0/tensor.h"

namespace pi0 {

struct Checkpoint {
  std::string dir;
  ModelConfig config;
  std::vector<TensorSpec> layout;               // what the config demands, openpi names
  std::map<std::string, Tensor> tensors;        // openpi names -> views into the maps
  std::vector<std::string> ignored;             // present but unused (expert lm_head)
  bool lerobot_prefix = false;                  // keys were stored as "model.<openpi name>"
  std::vector<std::shared_ptr<SafeTensorsFile>> files;

  const Tensor& at(const std::string& name) const;  // throws naming the tensor when absent
};

struct OpenOptions {
  bool populate = false;  // prefault the maps (model loading); off for inspection
};

Checkpoint open_checkpoint(const std::string& dir, const OpenOptions& opt = {});

}  // namespace pi0
