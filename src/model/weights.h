// The model's weights, prepared once by the backend at load: linear layers become opaque
// backend objects; small vectors (norm scales, position table) become f32 arrays the model reads.
#pragma once
#include <memory>
#include <vector>

#include "backend/ops.h"
#include "model/checkpoint.h"

namespace pi0 {

using Linear = std::unique_ptr<LinearWeight>;
using Vec = std::vector<float>;

struct VisionLayerWeights {
  Vec ln1_w, ln1_b, ln2_w, ln2_b;
  Linear q, k, v, out, fc1, fc2;
};

struct VisionWeights {
  Linear patch;      // conv kernel [Dv, C, p, p] used as [Dv, C·p·p] on im2col rows, with bias
  Vec position;      // [Np, Dv]
  std::vector<VisionLayerWeights> layers;
  Vec post_w, post_b;
  Linear projector;  // [D, Dv]
};

// One tower's layer. Regular RMSNorm keeps `*_norm` (the stored offset); adaRMS keeps a dense
// layer mapping the condition to (scale, shift, gate).
struct GemmaLayerWeights {
  Vec attn_norm, ffw_norm;
  Linear attn_mod, ffw_mod;
  Linear q, k, v, o, gate, up, down;
};

struct GemmaWeights {
  std::vector<GemmaLayerWeights> layers;
  Vec final_norm;
  Linear final_mod;
};

struct HeadWeights {
  Linear action_in, action_out;
  Linear state_proj, action_time_in, action_time_out;  // π0
  Linear time_in, time_out;                            // π0.5
};

struct ModelWeights {
  VisionWeights vision;
  Tensor embedding;  // [V, D] view into the checkpoint (rows are gathered, never multiplied whole)
  GemmaWeights vlm, expert;
  HeadWeights heads;
};

ModelWeights prepare_weights(const Checkpoint& ck, Backend& backend);

}  // namespace pi0
