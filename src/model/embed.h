// Token assembly around the towers (docs/model.md §2.2–§2.5): the sinusoidal time embedding, the
// sequence layout (validity, AR groups, RoPE positions) and the suffix tokens of π0 / π0.5.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/ops.h"
#include "model/buffer.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "pi0/config.h"

namespace pi0 {

// [sin(2π t / period_j), cos(2π t / period_j)], arguments in float64 as openpi's PyTorch model.
void time_embedding(float t, int dim, double min_period, double max_period, float* out);

// prefix_valid: [B · P]. Fills validity, groups (prefix 0; suffix cumsum of the suffix AR mask)
// and positions (cumsum(valid) − 1 over prefix + suffix) for sequences of P + S tokens.
void build_layout(const ModelConfig& c, int64_t B, int64_t P, const std::vector<uint8_t>& prefix_valid,
                  SequenceLayout& out);

struct SuffixScratch {
  Buf temb, state_tok, act, cat, hid, out;
};

// Suffix tokens for x_t [B · H, A] at times t[b] into `suffix` [B · S, De]; for π0.5 also the
// adaRMS condition into `cond` [B, De]. `temb_out` keeps the time embedding [B, De].
void embed_suffix(Backend& be, const ModelConfig& c, const HeadWeights& w, const Mat& state, const Mat& x_t,
                  const float* t, SuffixScratch& s, const Mat& suffix, const Mat& cond);

}  // namespace pi0
