// A π0 checkpoint: a directory with config.json and the tensor files io/tensor_files reads.
// Opening it settles the config against the stored tensors (what config.json leaves out) and
// checks the complete tensor set against model/layout, reporting every problem at once.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_files.h"
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
  std::string key_layout = "current";           // model/key_layouts id of the stored names
  std::string key_layout_description;
  std::vector<std::string> normalizer_buffers;  // LeRobot normaliser buffers in the weights, stored names
  std::vector<std::shared_ptr<SafeTensorsFile>> files;

  const Tensor& at(const std::string& name) const;  // throws naming the tensor when absent
};

struct OpenOptions {
  bool populate = false;  // prefault the maps (model loading); off for inspection
};

Checkpoint open_checkpoint(const std::string& dir, const OpenOptions& opt = {});

}  // namespace pi0
