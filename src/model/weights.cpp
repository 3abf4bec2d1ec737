#include "model/weights.h"

#include "core/finite.h"
#include "core/progress.h"
#include "model/layout.h"
#include "pi0/error.h"

namespace pi0 {

namespace {

struct Loader {
  const Checkpoint& ck;
  Backend& be;
  Progress& bar;     // bytes of weights prepared: packing full-size π0 takes seconds
  uint64_t done = 0;
  int64_t rows = 0;  // rows the layers being loaded typically see (a layout hint for the backend)
  bool head = false;  // loading the input/output heads (a backend may keep them in float)
  // Every weight is checked once here, as it passes on its way to the backend: a NaN or inf
  // weight would turn every action into NaN, so the checkpoint is refused instead.
  const Tensor& at(const std::string& name) const {
    const Tensor& t = ck.at(name);
    if (const int64_t i = first_non_finite(t); i >= 0)
      throw Error({.message = "checkpoint holds a non-finite weight (NaN or inf) at element " + std::to_string(i),
                   .file = ck.dir, .tensor = name, .expected = "finite values", .got = std::to_string(t.get_f32(i))});
    return t;
  }
  Linear linear(const std::string& w, const std::string& b = {}) {
    Tensor bias;
    if (!b.empty()) bias = at(b);
    const Tensor& t = at(w);
    Linear l = be.prepare_linear(t, b.empty() ? nullptr : &bias, rows, head);
    t.release_mapped_pages();  // backends keep their own copies: the map's pages can go
    bar.update(done += static_cast<uint64_t>(t.nbytes()));
    return l;
  }
  Vec vec(const std::string& n) {
    const Tensor& t = at(n);
    Vec v = t.to_f32_vector();
    t.release_mapped_pages();
    return v;
  }
};

GemmaWeights gemma(Loader& L, const std::string& P, const GemmaConfig& g, int64_t rows) {
  GemmaWeights w;
  for (int i = 0; i < g.depth; ++i) {
    const std::string p = P + "layers." + std::to_string(i) + ".";
    GemmaLayerWeights l;
    L.rows = 1;  // the adaRMS modulation runs on the condition, one row per batch row
    if (g.adarms) {
      l.attn_mod = L.linear(p + "input_layernorm.dense.weight", p + "input_layernorm.dense.bias");
      l.ffw_mod = L.linear(p + "post_attention_layernorm.dense.weight", p + "post_attention_layernorm.dense.bias");
    } else {
      l.attn_norm = L.vec(p + "input_layernorm.weight");
      l.ffw_norm = L.vec(p + "post_attention_layernorm.weight");
    }
    L.rows = rows;
    l.q = L.linear(p + "self_attn.q_proj.weight");
    l.k = L.linear(p + "self_attn.k_proj.weight");
    l.v = L.linear(p + "self_attn.v_proj.weight");
    l.o = L.linear(p + "self_attn.o_proj.weight");
    l.gate = L.linear(p + "mlp.gate_proj.weight");
    l.up = L.linear(p + "mlp.up_proj.weight");
    L.be.pair_geglu(*l.gate, *l.up);  // a backend may merge them into one product
    l.down = L.linear(p + "mlp.down_proj.weight");
    w.layers.push_back(std::move(l));
  }
  L.rows = 1;
  if (g.adarms) w.final_mod = L.linear(P + "norm.dense.weight", P + "norm.dense.bias");
  else w.final_norm = L.vec(P + "norm.weight");
  return w;
}

}  // namespace

ModelWeights prepare_weights(const Checkpoint& ck, Backend& backend) {
  using namespace names;
  const ModelConfig& c = ck.config;
  uint64_t total = 0;
  for (const auto& [name, t] : ck.tensors) total += static_cast<uint64_t>(t.nbytes());
  Progress bar("preparing weights", total);
  Loader L{ck, backend, bar, 0, static_cast<int64_t>(c.cameras.size()) * c.tokens_per_image()};
  ModelWeights w;
  w.vision.patch = L.linear(kVision + "embeddings.patch_embedding.weight", kVision + "embeddings.patch_embedding.bias");
  w.vision.position = L.vec(kVision + "embeddings.position_embedding.weight");
  for (int i = 0; i < c.vision.depth; ++i) {
    const std::string p = kVision + "encoder.layers." + std::to_string(i) + ".";
    VisionLayerWeights l;
    l.ln1_w = L.vec(p + "layer_norm1.weight");
    l.ln1_b = L.vec(p + "layer_norm1.bias");
    l.ln2_w = L.vec(p + "layer_norm2.weight");
    l.ln2_b = L.vec(p + "layer_norm2.bias");
    l.q = L.linear(p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias");
    l.k = L.linear(p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias");
    l.v = L.linear(p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias");
    l.out = L.linear(p + "self_attn.out_proj.weight", p + "self_attn.out_proj.bias");
    l.fc1 = L.linear(p + "mlp.fc1.weight", p + "mlp.fc1.bias");
    l.fc2 = L.linear(p + "mlp.fc2.weight", p + "mlp.fc2.bias");
    w.vision.layers.push_back(std::move(l));
  }
  w.vision.post_w = L.vec(kVision + "post_layernorm.weight");
  w.vision.post_b = L.vec(kVision + "post_layernorm.bias");
  w.vision.projector = L.linear(kProjector + "weight", kProjector + "bias");
  // The token table is read row by row at every call: our own copy, not the map. It is a lookup,
  // not a product, so no backend packs it; it is kept in bf16 unless the backend computes in f32
  // (an F32 checkpoint's table is 2.1 GB in f32, 1.05 GB in bf16: what lets full-size π0.5 from
  // an F32 checkpoint fit int8's memory budget), and copied with its source pages released as it goes.
  const Tensor& table = L.at(kEmbedding);
  const bool narrow = table.dtype() == DType::F32 && backend.precision() != Precision::F32;
  w.embedding = table.owns_memory() && !narrow ? table : table.to_releasing(narrow ? DType::BF16 : table.dtype());
  w.vlm = gemma(L, kLanguage, c.vlm, c.prefix_len());
  w.expert = gemma(L, kExpert, c.expert, c.suffix_len());
  L.rows = c.action_horizon;
  L.head = true;
  w.heads.action_in = L.linear("action_in_proj.weight", "action_in_proj.bias");
  w.heads.action_out = L.linear("action_out_proj.weight", "action_out_proj.bias");
  L.rows = 1;
  if (c.pi05) {
    w.heads.time_in = L.linear("time_mlp_in.weight", "time_mlp_in.bias");
    w.heads.time_out = L.linear("time_mlp_out.weight", "time_mlp_out.bias");
  } else {
    w.heads.state_proj = L.linear("state_proj.weight", "state_proj.bias");
    L.rows = c.action_horizon;  // the action/time MLP runs on every action token
    w.heads.action_time_in = L.linear("action_time_mlp_in.weight", "action_time_mlp_in.bias");
    w.heads.action_time_out = L.linear("action_time_mlp_out.weight", "action_time_mlp_out.bias");
  }
  bar.finish();
  return w;
}

}  // namespace pi0
