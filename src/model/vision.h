// SigLIP vision tower + projector (docs/model.md §2.1, docs/model.md §2): patchify conv (as im2col +
// linear), learned position table, pre-LN encoder blocks, post LayerNorm, linear projector.
#pragma once
#include <functional>

#include "backend/ops.h"
#include "model/buffer.h"
#include "model/weights.h"
#include "pi0/config.h"

namespace pi0 {

struct VisionScratch {
  Buf patches, x, y, q, k, v, attn, h;
};

// images: F32 [B, C, H, W] in [-1, 1]. Writes the projected tokens, [B · Np, D], into `out`.
// `on_layer(layer, x)` sees the residual stream after each encoder block when set.
void run_vision(Backend& be, const ModelConfig& c, const VisionWeights& w, const Tensor& images, VisionScratch& s,
                const Mat& out, const std::function<void(int, const Mat&)>& on_layer = {});

}  // namespace pi0
