#include "model/embed.h"

#include <cmath>
#include <cstring>

namespace pi0 {

void time_embedding(float t, int dim, double min_period, double max_period, float* out) {
  const int half = dim / 2;
  for (int j = 0; j < half; ++j) {
    const double frac = half > 1 ? static_cast<double>(j) / (half - 1) : 0.0;
    const double period = min_period * std::pow(max_period / min_period, frac);
    const double arg = static_cast<double>(t) * (1.0 / period * 2.0 * M_PI);
    out[j] = static_cast<float>(std::sin(arg));
    out[half + j] = static_cast<float>(std::cos(arg));
  }
}

void build_layout(const ModelConfig& c, int64_t B, int64_t P, const std::vector<uint8_t>& prefix_valid,
                  SequenceLayout& L) {
  const int64_t S = c.suffix_len(), seq = P + S;
  L.valid.assign(static_cast<size_t>(B * seq), 1);
  L.group.assign(static_cast<size_t>(B * seq), 0);
  L.position.assign(static_cast<size_t>(B * seq), 0);
  // Suffix AR mask: π0 [1, 1, 0, ...] (state token, then the action block); π0.5 [1, 0, ...].
  std::vector<int32_t> suffix_group(static_cast<size_t>(S));
  int32_t g = 0;
  for (int64_t i = 0; i < S; ++i) {
    const bool ar = i == 0 || (!c.pi05 && i == 1);
    g += ar ? 1 : 0;
    suffix_group[i] = g;
  }
  for (int64_t b = 0; b < B; ++b) {
    int32_t count = 0;
    for (int64_t i = 0; i < seq; ++i) {
      const size_t k = static_cast<size_t>(b * seq + i);
      if (i < P) L.valid[k] = prefix_valid[static_cast<size_t>(b * P + i)];
      else L.group[k] = suffix_group[static_cast<size_t>(i - P)];
      count += L.valid[k];
      L.position[k] = count - 1;  // masked tokens repeat the previous position
    }
  }
}

void embed_suffix(Backend& be, const ModelConfig& c, const HeadWeights& w, const Mat& state, const Mat& x_t,
                  const float* t, SuffixScratch& s, const Mat& suffix, const Mat& cond) {
  const int64_t B = state.rows, H = c.action_horizon, De = c.expert.width, S = c.suffix_len();
  Mat temb = s.temb.mat(B, De);
  for (int64_t b = 0; b < B; ++b)
    time_embedding(t[b], c.time_dim, c.time_min_period, c.time_max_period, temb.row(b));
  if (c.pi05) {
    // Actions alone enter the expert; time drives adaRMS: c = silu(out(silu(in(temb)))).
    be.linear(x_t, *w.action_in, suffix);
    Mat hid = s.hid.mat(B, De);
    be.linear(temb, *w.time_in, hid, Epilogue::Silu);
    be.linear(hid, *w.time_out, cond, Epilogue::Silu);
    return;
  }
  // π0: [state_proj(state), out(silu(in([action_in(x), temb])))] per batch row.
  Mat st = s.state_tok.mat(B, De);
  be.linear(state, *w.state_proj, st);
  Mat cat = s.cat.mat(B * H, 2 * De);
  be.linear(x_t, *w.action_in, cat.cols_view(0, De));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) std::memcpy(cat.row(b * H + h) + De, temb.row(b), sizeof(float) * De);
  Mat hid = s.hid.mat(B * H, De), out = s.out.mat(B * H, De);
  be.linear(cat, *w.action_time_in, hid, Epilogue::Silu);
  be.linear(hid, *w.action_time_out, out);
  for (int64_t b = 0; b < B; ++b) {
    std::memcpy(suffix.row(b * S), st.row(b), sizeof(float) * De);
    for (int64_t h = 0; h < H; ++h) std::memcpy(suffix.row(b * S + 1 + h), out.row(b * H + h), sizeof(float) * De);
  }
}

}  // namespace pi0
