#include "model/transformer.h"

#include <cmath>

namespace pi0 {

void KVStore::resize(int depth, int64_t batch, int64_t seq_len, int64_t kv_width) {
  seq = seq_len;
  k.resize(static_cast<size_t>(depth));
  v.resize(static_cast<size_t>(depth));
  for (int l = 0; l < depth; ++l) {
    k[l].resize(batch * seq_len * kv_width);
    v[l].resize(batch * seq_len * kv_width);
  }
}

void Stream::prepare(int64_t batch, int num_heads) {
  const GemmaConfig& g = *config;
  const int64_t rows = batch * tokens;
  y.resize(rows * g.width);
  q.resize(rows * int64_t{num_heads} * g.head_dim);
  attn.resize(rows * int64_t{num_heads} * g.head_dim);
  tmp.resize(rows * g.width);
  gate.resize(rows * g.mlp_dim);
  up.resize(rows * g.mlp_dim);
  mod.resize(batch * 3 * g.width);
}

namespace {

// Norm before attention / MLP. Plain RMSNorm scales by (1 + w); adaRMS computes
// (scale, shift, gate) = dense(cond) per batch row and returns the gate rows in s.mod.
void pre_norm(Backend& be, Stream& s, int64_t B, const Vec& norm_w, const LinearWeight* mod_w) {
  const GemmaConfig& g = *s.config;
  const int64_t D = g.width, T = s.tokens;
  Mat y = s.y.mat(B * T, D);
  if (!mod_w) {
    be.rms_norm(s.x, norm_w.data(), nullptr, static_cast<float>(g.rms_norm_eps), y);
    return;
  }
  Mat mod = s.mod.mat(B, 3 * D);
  be.linear(s.cond, *mod_w, mod);
  for (int64_t b = 0; b < B; ++b)
    be.rms_norm(s.x.rows_view(b * T, T), mod.row(b), mod.row(b) + D, static_cast<float>(g.rms_norm_eps),
                y.rows_view(b * T, T));
}

// x += out (plain) or x += gate ⊙ out (adaRMS); `out` holds the branch output.
void gated_residual(Backend& be, Stream& s, int64_t B, const Mat& out, bool adarms) {
  const int64_t D = s.config->width, T = s.tokens;
  if (!adarms) {
    be.add(s.x, out, nullptr);
    return;
  }
  Mat mod = s.mod.mat(B, 3 * D);
  for (int64_t b = 0; b < B; ++b) be.add(s.x.rows_view(b * T, T), out.rows_view(b * T, T), mod.row(b) + 2 * D);
}

}  // namespace

void run_transformer(Backend& be, std::span<Stream* const> streams, KVStore& kv, const SequenceLayout& L,
                     int64_t B, int64_t kv_len, float mask_value, const LayerCallback& on_layer) {
  const GemmaConfig& g0 = *streams.front()->config;
  const int N = g0.num_heads, K = g0.num_kv_heads, Hd = g0.head_dim;
  const int64_t qw = int64_t{N} * Hd, kvw = int64_t{K} * Hd;
  const AttentionShape shape{N, K, Hd, 1.f / std::sqrt(static_cast<float>(Hd))};
  for (Stream* s : streams) s->prepare(B, N);

  for (int l = 0; l < g0.depth; ++l) {
    const bool last = l == g0.depth - 1;
    // 1. Each stream: norm, Q into its own buffer, K/V into the shared key sequence, RoPE.
    for (Stream* s : streams) {
      const GemmaLayerWeights& w = s->weights->layers[l];
      const int64_t T = s->tokens;
      pre_norm(be, *s, B, w.attn_norm, w.attn_mod.get());
      Mat y = s->y.mat(B * T, s->config->width);
      Mat q = s->q.mat(B * T, qw);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row0 = b * kv.seq + s->offset;
        Mat kb{kv.k[l].data.data() + row0 * kvw, T, kvw, kvw};
        Mat vb{kv.v[l].data.data() + row0 * kvw, T, kvw, kvw};
        const LinearWeight* qkv[] = {w.q.get(), w.k.get(), w.v.get()};
        const Mat outs[] = {q.rows_view(b * T, T), kb, vb};
        be.linears(y.rows_view(b * T, T), qkv, outs);
        const int32_t* pos = L.position.data() + b * kv.seq + s->offset;
        be.rope(q.rows_view(b * T, T), N, Hd, pos, s->config->rope_theta);
        be.rope(kb, K, Hd, pos, s->config->rope_theta);
      }
    }
    // 2. Joint attention: every query of every stream over the whole key sequence of its batch row.
    for (Stream* s : streams) {
      if (last && s->skip_last_tail) continue;
      const int64_t T = s->tokens;
      Mat q = s->q.mat(B * T, qw), out = s->attn.mat(B * T, qw);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t base = b * kv.seq;
        Mat kb{kv.k[l].data.data() + base * kvw, kv_len, kvw, kvw};
        Mat vb{kv.v[l].data.data() + base * kvw, kv_len, kvw, kvw};
        AttentionMask m{L.valid.data() + base + s->offset, L.group.data() + base + s->offset,
                        L.valid.data() + base, L.group.data() + base, mask_value};
        be.attention(q.rows_view(b * T, T), kb, vb, m, shape, out.rows_view(b * T, T));
      }
    }
    // 3. Each stream: output projection + residual, then the GeGLU MLP + residual.
    for (Stream* s : streams) {
      if (last && s->skip_last_tail) continue;
      const GemmaLayerWeights& w = s->weights->layers[l];
      const GemmaConfig& g = *s->config;
      const int64_t rows = B * s->tokens;
      const bool ada = g.adarms;
      Mat attn = s->attn.mat(rows, qw);
      if (ada) {
        Mat tmp = s->tmp.mat(rows, g.width);
        be.linear(attn, *w.o, tmp);
        gated_residual(be, *s, B, tmp, true);
      } else {
        be.linear(attn, *w.o, s->x, Epilogue::None, /*accumulate=*/true);
      }
      pre_norm(be, *s, B, w.ffw_norm, w.ffw_mod.get());
      Mat y = s->y.mat(rows, g.width);
      Mat gate = s->gate.mat(rows, g.mlp_dim), up = s->up.mat(rows, g.mlp_dim);
      if (ada) {
        Mat tmp = s->tmp.mat(rows, g.width);
        be.mlp_geglu(y, *w.gate, *w.up, *w.down, gate, up, tmp, false);
        gated_residual(be, *s, B, tmp, true);
      } else {
        be.mlp_geglu(y, *w.gate, *w.up, *w.down, gate, up, s->x, true);
      }
      if (on_layer) on_layer(*s, l);
    }
  }
}

void final_norm(Backend& be, Stream& s, int64_t B, const Mat& out) {
  const GemmaConfig& g = *s.config;
  const int64_t D = g.width, T = s.tokens;
  if (!g.adarms) {
    be.rms_norm(s.x, s.weights->final_norm.data(), nullptr, static_cast<float>(g.rms_norm_eps), out);
    return;
  }
  Mat mod = s.mod.mat(B, 3 * D);
  be.linear(s.cond, *s.weights->final_mod, mod);
  for (int64_t b = 0; b < B; ++b)
    be.rms_norm(s.x.rows_view(b * T, T), mod.row(b), mod.row(b) + D, static_cast<float>(g.rms_norm_eps),
                out.rows_view(b * T, T));
}

}  // namespace pi0
