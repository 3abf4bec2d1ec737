// The tensor files of a checkpoint directory as stored: one model.safetensors, or the shards that
// model.safetensors.index.json names, with LeRobot's "model." key prefix taken off. This layer
// only reads files; what a π0 checkpoint must contain is decided in model/checkpoint.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace pi0 {

struct StoredTensor {
  const SafeTensorsFile* file = nullptr;
  const SafeTensorsEntry* entry = nullptr;
};

struct TensorFiles {
  std::vector<std::shared_ptr<SafeTensorsFile>> files;  // keep the maps (and the views) alive
  std::map<std::string, StoredTensor> tensors;          // by name, prefix removed
  bool lerobot_prefix = false;                          // every key was stored as "model.<name>"
  // LeRobot's pre-rewrite policies keep their normaliser modules' buffers beside the model
  // ("normalize_inputs.buffer_observation_state.mean", ...): set aside here, by stored name, so
  // they neither block the "model." prefix nor count as unexpected model tensors.
  std::map<std::string, StoredTensor> normalizer_buffers;
  std::string where;  // the single file, or the directory for shards (for error messages)

  const Shape* shape_of(const std::string& name) const;
};

// The modules LeRobot's pre-rewrite policies keep their normalisation stats in.
bool is_lerobot_normalizer_buffer(const std::string& name);

// Maps every tensor file of `dir`; a tensor stored in two shards is an error naming both files.
// `populate` prefaults the maps (when every tensor will be read).
TensorFiles open_tensor_files(const std::string& dir, bool populate);

// A whole (small) file: JSON configs, indexes, norm stats, robot files, tokenizers, images. Refuses anything but a
// regular file (a device, a FIFO, a directory) and files over `max_bytes`, naming the path.
std::string read_text_file(const std::string& path, uint64_t max_bytes = uint64_t{64} << 20);

}  // namespace pi0
