// The names π0's PaliGemma tower has had. transformers 4.52 moved PaliGemma's towers under a
// `model.` level, so checkpoints fine-tuned with LeRobot before its π0 rewrite (and ports made with
// older transformers) store `paligemma.language_model.model.layers.…` where openpi and LeRobot
// today store `paligemma.model.language_model.layers.…`. One table says how each known layout maps
// onto today's names; a checkpoint is detected as one layout as a whole, never a mix.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/tensor_files.h"

namespace pi0 {

struct KeyLayout {
  std::string id;           // short name (inspect --json)
  std::string description;  // where such checkpoints come from (inspect, errors)
  // (stored prefix, today's prefix), both after "paligemma_with_expert.paligemma.".
  std::vector<std::pair<std::string, std::string>> renames;
};

// Every known layout, today's first: detection prefers the earliest layout that names every
// PaliGemma tensor of a checkpoint.
const std::vector<KeyLayout>& key_layouts();

// Detects the layout of `stored` and renames its tensors to today's names in place. Names outside
// the PaliGemma tower (the expert, the heads) are the same in every layout. Throws naming two
// tensors when the names mix layouts, or naming both when a rename would collide.
const KeyLayout& adopt_key_layout(TensorFiles& stored);

}  // namespace pi0
