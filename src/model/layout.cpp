#include "model/layout.h"

namespace pi0 {

const char* category_name(Category c) {
  switch (c) {
    case Category::Vision: return "vision";
    case Category::Projector: return "projector";
    case Category::Language: return "language";
    case Category::Expert: return "expert";
    case Category::Heads: return "heads";
    case Category::Unused: return "unused";
  }
  return "?";
}

std::vector<TensorSpec> checkpoint_layout(const ModelConfig& c) {
  using namespace names;
  std::vector<TensorSpec> t;
  auto add = [&](std::string n, Shape s, Category cat, Init init) { t.push_back({std::move(n), std::move(s), cat, init}); };
  const int64_t Dv = c.vision.width, Fv = c.vision.mlp_dim, p = c.vision.patch_size;
  const auto V = Category::Vision;
  add(kVision + "embeddings.patch_embedding.weight", {Dv, c.image_channels, p, p}, V, Init::Linear);
  add(kVision + "embeddings.patch_embedding.bias", {Dv}, V, Init::Bias);
  add(kVision + "embeddings.position_embedding.weight", {c.vision.num_patches, Dv}, V, Init::Small);
  for (int i = 0; i < c.vision.depth; ++i) {
    const std::string L = kVision + "encoder.layers." + std::to_string(i) + ".";
    add(L + "layer_norm1.weight", {Dv}, V, Init::LayerNormScale);
    add(L + "layer_norm1.bias", {Dv}, V, Init::Bias);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(L + "self_attn." + proj + ".weight", {Dv, Dv}, V, Init::Linear);
      add(L + "self_attn." + proj + ".bias", {Dv}, V, Init::Bias);
    }
    add(L + "layer_norm2.weight", {Dv}, V, Init::LayerNormScale);
    add(L + "layer_norm2.bias", {Dv}, V, Init::Bias);
    add(L + "mlp.fc1.weight", {Fv, Dv}, V, Init::Linear);
    add(L + "mlp.fc1.bias", {Fv}, V, Init::Bias);
    add(L + "mlp.fc2.weight", {Dv, Fv}, V, Init::Linear);
    add(L + "mlp.fc2.bias", {Dv}, V, Init::Bias);
  }
  add(kVision + "post_layernorm.weight", {Dv}, V, Init::LayerNormScale);
  add(kVision + "post_layernorm.bias", {Dv}, V, Init::Bias);
  add(kProjector + "weight", {c.projection_dim, Dv}, Category::Projector, Init::Linear);
  add(kProjector + "bias", {c.projection_dim}, Category::Projector, Init::Bias);

  add(kEmbedding, {c.vlm.vocab_size, c.vlm.width}, Category::Language, Init::Embedding);
  auto gemma = [&](const std::string& P, const GemmaConfig& g, Category cat) {
    const int64_t D = g.width, F = g.mlp_dim, q = int64_t{g.num_heads} * g.head_dim,
                  kv = int64_t{g.num_kv_heads} * g.head_dim;
    for (int i = 0; i < g.depth; ++i) {
      const std::string L = P + "layers." + std::to_string(i) + ".";
      add(L + "self_attn.q_proj.weight", {q, D}, cat, Init::Linear);
      add(L + "self_attn.k_proj.weight", {kv, D}, cat, Init::Linear);
      add(L + "self_attn.v_proj.weight", {kv, D}, cat, Init::Linear);
      add(L + "self_attn.o_proj.weight", {D, q}, cat, Init::Linear);
      add(L + "mlp.gate_proj.weight", {F, D}, cat, Init::Linear);
      add(L + "mlp.up_proj.weight", {F, D}, cat, Init::Linear);
      add(L + "mlp.down_proj.weight", {D, F}, cat, Init::Linear);
      for (const char* norm : {"input_layernorm", "post_attention_layernorm"}) {
        if (g.adarms) {
          add(L + norm + ".dense.weight", {3 * D, g.adarms_cond_dim}, cat, Init::Small);
          add(L + norm + ".dense.bias", {3 * D}, cat, Init::Bias);
        } else {
          add(L + norm + ".weight", {D}, cat, Init::NormOffset);
        }
      }
    }
    if (g.adarms) {
      add(P + "norm.dense.weight", {3 * D, g.adarms_cond_dim}, cat, Init::Small);
      add(P + "norm.dense.bias", {3 * D}, cat, Init::Bias);
    } else {
      add(P + "norm.weight", {D}, cat, Init::NormOffset);
    }
  };
  gemma(kLanguage, c.vlm, Category::Language);
  gemma(kExpert, c.expert, Category::Expert);
  add(kExpertLmHead, {c.vlm.vocab_size, c.expert.width}, Category::Unused, Init::Small);

  const int64_t A = c.action_dim, De = c.expert.width;
  const auto H = Category::Heads;
  add("action_in_proj.weight", {De, A}, H, Init::Linear);
  add("action_in_proj.bias", {De}, H, Init::Bias);
  add("action_out_proj.weight", {A, De}, H, Init::Linear);
  add("action_out_proj.bias", {A}, H, Init::Bias);
  if (c.pi05) {
    add("time_mlp_in.weight", {De, c.time_dim}, H, Init::Linear);
    add("time_mlp_in.bias", {De}, H, Init::Bias);
    add("time_mlp_out.weight", {De, De}, H, Init::Linear);
    add("time_mlp_out.bias", {De}, H, Init::Bias);
  } else {
    add("state_proj.weight", {De, A}, H, Init::Linear);
    add("state_proj.bias", {De}, H, Init::Bias);
    add("action_time_mlp_in.weight", {De, De + c.time_dim}, H, Init::Linear);
    add("action_time_mlp_in.bias", {De}, H, Init::Bias);
    add("action_time_mlp_out.weight", {De, De}, H, Init::Linear);
    add("action_time_mlp_out.bias", {De}, H, Init::Bias);
  }
  return t;
}

}  // namespace pi0
