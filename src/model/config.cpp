#include "pi0/config.h"

#include <cmath>
#include <limits>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "pi0/error.h"

namespace pi0 {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad_field(const std::string& src, const std::string& field, const std::string& msg,
                            const std::string& expected = {}, const std::string& got = {}) {
  throw Error({.message = msg, .file = src, .field = field, .expected = expected, .got = got});
}

GemmaConfig gemma_variant(const std::string& name, const std::string& src, const std::string& field) {
  GemmaConfig g;
  if (name == "gemma_2b" || name == "gemma_2b_lora") {
    g = {.width = 2048, .depth = 18, .num_heads = 8, .num_kv_heads = 1, .head_dim = 256, .mlp_dim = 16384,
         .vocab_size = 257152};
  } else if (name == "gemma_300m" || name == "gemma_300m_lora") {
    g = {.width = 1024, .depth = 18, .num_heads = 8, .num_kv_heads = 1, .head_dim = 256, .mlp_dim = 4096};
  } else if (name == "custom") {
    bad_field(src, field, "variant 'custom' needs an explicit 'architecture' object in config.json");
  } else {
    bad_field(src, field, "unknown Gemma variant", "gemma_2b, gemma_300m (or their _lora forms)", name);
  }
  return g;
}

// Patches per image, computed without overflow; -1 when it cannot be (validate() reports it).
int patch_count(int h, int w, int p) {
  if (p <= 0 || h <= 0 || w <= 0) return 0;
  const int64_t n = int64_t{h / p} * int64_t{w / p};
  return n > (1 << 30) ? -1 : static_cast<int>(n);
}

VisionConfig so400m() {
  return {.width = 1152, .depth = 27, .num_heads = 16, .head_dim = 72, .mlp_dim = 4304, .patch_size = 14,
          .num_patches = 256, .layer_norm_eps = 1e-6};
}

// Typed field access that names the JSON path on every failure.
template <class T>
T req(const json& o, const std::string& key, const std::string& path, const std::string& src) {
  const std::string f = path.empty() ? key : path + "." + key;
  if (!o.is_object() || !o.contains(key) || o[key].is_null()) bad_field(src, f, "required field is missing");
  const json& v = o[key];
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) throw std::runtime_error("");
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) throw std::runtime_error("");
      // Read as 64-bit and range-check: nlohmann's get<int> wraps (2^32 + 3 would become 3).
      const bool fits = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                            : v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                  v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max());
      if (!fits)
        bad_field(src, f, "integer out of range", "at most " + std::to_string(std::numeric_limits<T>::max()), v.dump());
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) throw std::runtime_error("");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) throw std::runtime_error("");
    }
    return v.get<T>();
  } catch (const Error&) {
    throw;  // out of range: already says so
  } catch (...) {
    bad_field(src, f, "field has the wrong type", std::is_same_v<T, bool> ? "a boolean"
                                                  : std::is_integral_v<T> ? "an integer"
                                                  : std::is_floating_point_v<T> ? "a number" : "a string",
              v.dump());
  }
}

template <class T>
bool opt(const json& o, const std::string& key, T& out, const std::string& path, const std::string& src) {
  if (!o.is_object() || !o.contains(key) || o[key].is_null()) return false;
  out = req<T>(o, key, path, src);
  return true;
}

void check_activation(const json& acts, const std::string& key, const std::string& want, const std::string& src) {
  std::string got;
  if (opt(acts, key, got, "architecture.activations", src) && got != want)
    bad_field(src, "architecture.activations." + key, "unsupported activation", want, got);
}

ModelConfig from_architecture(const json& a, const std::string& src) {
  const std::string P = "architecture";
  ModelConfig c;
  c.pi05 = req<bool>(a, "pi05", P, src);
  std::string variant;
  if (opt(a, "variant", variant, P, src) && variant != (c.pi05 ? "pi05" : "pi0"))
    bad_field(src, P + ".variant", "variant contradicts pi05", c.pi05 ? "pi05" : "pi0", variant);
  c.discrete_state_input = c.pi05;
  opt(a, "discrete_state_input", c.discrete_state_input, P, src);
  c.action_dim = req<int>(a, "action_dim", P, src);
  c.action_horizon = req<int>(a, "action_horizon", P, src);
  c.max_token_len = req<int>(a, "max_token_len", P, src);
  opt(a, "num_steps", c.num_steps, P, src);
  if (!a.contains("cameras") || !a["cameras"].is_array()) bad_field(src, P + ".cameras", "required list of camera names");
  for (const auto& cam : a["cameras"]) {
    if (!cam.is_string()) bad_field(src, P + ".cameras", "camera names must be strings", {}, cam.dump());
    c.cameras.push_back(cam.get<std::string>());
  }
  c.image_height = req<int>(a, "image_height", P, src);
  c.image_width = req<int>(a, "image_width", P, src);
  opt(a, "image_channels", c.image_channels, P, src);
  const json& v = a.contains("vision") ? a["vision"] : json();
  const std::string V = P + ".vision";
  c.vision.width = req<int>(v, "width", V, src);
  c.vision.depth = req<int>(v, "depth", V, src);
  c.vision.num_heads = req<int>(v, "num_heads", V, src);
  c.vision.head_dim = c.vision.num_heads > 0 ? c.vision.width / c.vision.num_heads : 0;
  opt(v, "head_dim", c.vision.head_dim, V, src);
  c.vision.mlp_dim = req<int>(v, "mlp_dim", V, src);
  c.vision.patch_size = req<int>(v, "patch_size", V, src);
  c.vision.num_patches = patch_count(c.image_height, c.image_width, c.vision.patch_size);
  opt(v, "num_patches", c.vision.num_patches, V, src);
  opt(v, "layer_norm_eps", c.vision.layer_norm_eps, V, src);
  auto gemma = [&](const char* key, bool vlm) {
    const json& g = a.contains(key) ? a[key] : json();
    const std::string G = P + "." + key;
    GemmaConfig r;
    r.width = req<int>(g, "width", G, src);
    r.depth = req<int>(g, "depth", G, src);
    r.num_heads = req<int>(g, "num_heads", G, src);
    r.num_kv_heads = req<int>(g, "num_kv_heads", G, src);
    r.head_dim = req<int>(g, "head_dim", G, src);
    r.mlp_dim = req<int>(g, "mlp_dim", G, src);
    if (vlm) r.vocab_size = req<int>(g, "vocab_size", G, src);
    opt(g, "rms_norm_eps", r.rms_norm_eps, G, src);
    opt(g, "rope_theta", r.rope_theta, G, src);
    opt(g, "adarms", r.adarms, G, src);
    opt(g, "adarms_cond_dim", r.adarms_cond_dim, G, src);
    return r;
  };
  c.vlm = gemma("vlm", true);
  c.expert = gemma("expert", false);
  c.expert.rope_theta = c.vlm.rope_theta;  // one RoPE over the joint sequence
  if (!a.contains("expert") || !a["expert"].contains("adarms")) c.expert.adarms = c.pi05;
  if (c.expert.adarms && c.expert.adarms_cond_dim == 0) c.expert.adarms_cond_dim = c.expert.width;
  c.projection_dim = c.vlm.width;
  opt(a, "projection_dim", c.projection_dim, P, src);
  c.time_dim = c.expert.width;
  if (a.contains("time_embedding")) {
    const json& t = a["time_embedding"];
    const std::string T = P + ".time_embedding";
    opt(t, "dim", c.time_dim, T, src);
    opt(t, "min_period", c.time_min_period, T, src);
    opt(t, "max_period", c.time_max_period, T, src);
  }
  double mask = c.attention_mask_value;
  opt(a, "attention_mask_value", mask, P, src);
  c.attention_mask_value = static_cast<float>(mask);
  if (a.contains("activations")) {
    const json& acts = a["activations"];
    check_activation(acts, "vision_mlp", "gelu_tanh", src);
    check_activation(acts, "gemma_mlp", "gelu_tanh", src);
    check_activation(acts, "action_time_mlp", "silu", src);
    check_activation(acts, "time_mlp", "silu", src);
  }
  c.validate(src);  // before the derived checks below, which multiply dimensions
  // Derived sizes, when written, must agree with what the dimensions imply.
  int derived;
  if (opt(a, "tokens_per_image", derived, P, src) && derived != c.tokens_per_image())
    bad_field(src, P + ".tokens_per_image", "contradicts the vision config", std::to_string(c.tokens_per_image()),
              std::to_string(derived));
  if (opt(a, "prefix_len", derived, P, src) && derived != c.prefix_len())
    bad_field(src, P + ".prefix_len", "contradicts cameras x tokens_per_image + max_token_len",
              std::to_string(c.prefix_len()), std::to_string(derived));
  if (opt(a, "suffix_len", derived, P, src) && derived != c.suffix_len())
    bad_field(src, P + ".suffix_len", "contradicts action_horizon (+1 state token for pi0)",
              std::to_string(c.suffix_len()), std::to_string(derived));
  return c;
}

}  // namespace

void ModelConfig::validate(const std::string& src) const {
  // Bounds far above any real model keep every derived size (products of these) inside int64
  // and refuse hostile configs before anything is allocated from them.
  constexpr long kMaxDim = 1 << 20;
  auto positive = [&](const std::string& f, long v) {
    if (v <= 0) bad_field(src, f, "must be positive", "> 0", std::to_string(v));
    if (v > kMaxDim) bad_field(src, f, "is implausibly large", "<= " + std::to_string(kMaxDim), std::to_string(v));
  };
  if (cameras.size() > 64) bad_field(src, "cameras", "too many cameras", "<= 64", std::to_string(cameras.size()));
  positive("action_dim", action_dim);
  positive("action_horizon", action_horizon);
  positive("max_token_len", max_token_len);
  positive("num_steps", num_steps);
  positive("image_height", image_height);
  positive("image_width", image_width);
  positive("image_channels", image_channels);
  if (cameras.empty()) bad_field(src, "cameras", "at least one camera is needed");
  if (std::set<std::string>(cameras.begin(), cameras.end()).size() != cameras.size())
    bad_field(src, "cameras", "camera names must be unique");
  const VisionConfig& v = vision;
  for (auto [f, x] : {std::pair<const char*, int>{"vision.width", v.width}, {"vision.depth", v.depth},
                      {"vision.num_heads", v.num_heads}, {"vision.head_dim", v.head_dim},
                      {"vision.mlp_dim", v.mlp_dim}, {"vision.patch_size", v.patch_size}})
    positive(f, x);
  if (int64_t{v.num_heads} * v.head_dim != v.width)
    bad_field(src, "vision.head_dim", "num_heads x head_dim must equal the vision width", std::to_string(v.width),
              std::to_string(int64_t{v.num_heads} * v.head_dim));
  if (image_height % v.patch_size || image_width % v.patch_size)
    bad_field(src, "vision.patch_size", "image size must be a multiple of the patch size",
              "divisor of " + std::to_string(image_height) + "x" + std::to_string(image_width),
              std::to_string(v.patch_size));
  const int np = patch_count(image_height, image_width, v.patch_size);
  positive("vision.num_patches", v.num_patches);
  if (v.depth > 1024) bad_field(src, "vision.depth", "is implausibly large", "<= 1024", std::to_string(v.depth));
  if (v.num_patches != np)
    bad_field(src, "vision.num_patches", "does not match image size / patch size", std::to_string(np),
              std::to_string(v.num_patches));
  for (auto* g : {&vlm, &expert}) {
    const std::string n = g == &vlm ? "vlm." : "expert.";
    positive(n + "width", g->width);
    positive(n + "depth", g->depth);
    if (g->depth > 1024) bad_field(src, n + "depth", "is implausibly large", "<= 1024", std::to_string(g->depth));
    positive(n + "num_heads", g->num_heads);
    positive(n + "num_kv_heads", g->num_kv_heads);
    positive(n + "head_dim", g->head_dim);
    positive(n + "mlp_dim", g->mlp_dim);
    if (g->num_heads % g->num_kv_heads)
      bad_field(src, n + "num_kv_heads", "num_heads must be a multiple of num_kv_heads",
                "divisor of " + std::to_string(g->num_heads), std::to_string(g->num_kv_heads));
    if (g->head_dim % 2) bad_field(src, n + "head_dim", "RoPE needs an even head_dim", "even", std::to_string(g->head_dim));
  }
  positive("vlm.vocab_size", vlm.vocab_size);
  // The towers meet in one joint attention: they must agree on its geometry (docs/model.md §1.2).
  auto same = [&](const char* f, int a, int b) {
    if (a != b) bad_field(src, std::string("expert.") + f, "must equal the VLM's (joint attention)", std::to_string(a), std::to_string(b));
  };
  same("depth", vlm.depth, expert.depth);
  same("num_heads", vlm.num_heads, expert.num_heads);
  same("num_kv_heads", vlm.num_kv_heads, expert.num_kv_heads);
  same("head_dim", vlm.head_dim, expert.head_dim);
  if (projection_dim != vlm.width)
    bad_field(src, "projection_dim", "the projector must output the VLM width", std::to_string(vlm.width),
              std::to_string(projection_dim));
  if (time_dim != expert.width)
    bad_field(src, "time_embedding.dim", "must equal the expert width", std::to_string(expert.width), std::to_string(time_dim));
  if (time_dim % 2 || time_dim < 4)
    bad_field(src, "time_embedding.dim", "must be even and >= 4", "even >= 4", std::to_string(time_dim));
  // A zero or negative epsilon divides by zero (or takes the root of a negative number) on a
  // constant row: NaN actions. Real models use 1e-6.
  auto eps_ok = [&](const std::string& f, double e) {
    if (!(e > 0) || !(e < 1)) bad_field(src, f, "epsilon must be in (0, 1)", "e.g. 1e-06", std::to_string(e));
  };
  eps_ok("vision.layer_norm_eps", vision.layer_norm_eps);
  eps_ok("vlm.rms_norm_eps", vlm.rms_norm_eps);
  eps_ok("expert.rms_norm_eps", expert.rms_norm_eps);
  if (!(vlm.rope_theta > 0) || !std::isfinite(vlm.rope_theta))
    bad_field(src, "vlm.rope_theta", "must be positive", "e.g. 10000", std::to_string(vlm.rope_theta));
  if (!(time_min_period > 0) || !(time_max_period > 0))
    bad_field(src, "time_embedding.min_period", "periods must be positive");
  if (expert.adarms != pi05)
    bad_field(src, "expert.adarms", "adaptive RMSNorm goes with pi05 exactly", pi05 ? "true" : "false",
              expert.adarms ? "true" : "false");
  if (expert.adarms && expert.adarms_cond_dim != expert.width)
    bad_field(src, "expert.adarms_cond_dim", "must equal the expert width", std::to_string(expert.width),
              std::to_string(expert.adarms_cond_dim));
}

std::vector<std::string> model_preset_names() { return {"pi0", "pi05", "tiny-pi0", "tiny-pi05"}; }

ModelConfig model_preset(const std::string& name) {
  const auto names = model_preset_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw Error({.message = "unknown preset", .field = "preset", .expected = known, .got = name});
  }
  ModelConfig c;
  c.cameras = {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"};
  c.action_dim = 32;
  c.num_steps = 10;
  const bool pi05 = name == "pi05" || name == "tiny-pi05";
  if (name == "pi0" || name == "pi05") {
    c.action_horizon = 50;
    c.max_token_len = pi05 ? 200 : 48;
    c.image_height = c.image_width = 224;
    c.vision = so400m();
    c.vlm = gemma_variant("gemma_2b", "preset", "paligemma_variant");
    c.expert = gemma_variant("gemma_300m", "preset", "action_expert_variant");
  } else {  // tiny-pi0, tiny-pi05
    c.action_horizon = 10;
    c.max_token_len = pi05 ? 96 : 24;
    c.image_height = c.image_width = 56;
    c.vision = {.width = 32, .depth = 2, .num_heads = 2, .head_dim = 16, .mlp_dim = 64, .patch_size = 14,
                .num_patches = 16, .layer_norm_eps = 1e-6};
    c.vlm = {.width = 64, .depth = 2, .num_heads = 4, .num_kv_heads = 1, .head_dim = 16, .mlp_dim = 128,
             .vocab_size = 512};
    c.expert = {.width = 32, .depth = 2, .num_heads = 4, .num_kv_heads = 1, .head_dim = 16, .mlp_dim = 64};
  }
  c.pi05 = c.discrete_state_input = pi05;
  c.expert.adarms = pi05;
  c.expert.adarms_cond_dim = pi05 ? c.expert.width : 0;
  c.projection_dim = c.vlm.width;
  c.time_dim = c.expert.width;
  c.validate("preset " + name);
  return c;
}

ModelConfig parse_config_json(const std::string& text, const std::string& src, ConfigHints* hints) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error({.message = std::string("invalid JSON: ") + e.what(), .file = src});
  }
  if (!j.is_object()) throw Error({.message = "config must be a JSON object", .file = src});
  ConfigHints h;
  ModelConfig c;
  if (j.contains("architecture")) {
    c = from_architecture(j["architecture"], src);
    h.pi05_given = h.action_dim_given = h.vocab_given = h.horizon_given = true;
    // Top-level openpi fields must not contradict the architecture.
    bool b; int i;
    if (opt(j, "pi05", b, "", src) && b != c.pi05)
      bad_field(src, "pi05", "contradicts architecture.pi05", c.pi05 ? "true" : "false", b ? "true" : "false");
    if (opt(j, "action_dim", i, "", src) && i != c.action_dim)
      bad_field(src, "action_dim", "contradicts architecture.action_dim", std::to_string(c.action_dim), std::to_string(i));
    if (opt(j, "action_horizon", i, "", src) && i != c.action_horizon)
      bad_field(src, "action_horizon", "contradicts architecture.action_horizon", std::to_string(c.action_horizon), std::to_string(i));
    if (opt(j, "max_token_len", i, "", src) && i != c.max_token_len)
      bad_field(src, "max_token_len", "contradicts architecture.max_token_len", std::to_string(c.max_token_len), std::to_string(i));
  } else {
    // openpi PyTorch (action_dim, action_horizon, *_variant, precision[, pi05, max_token_len])
    // or LeRobot (type, chunk_size, max_action_dim, tokenizer_max_length, num_inference_steps).
    std::string type;
    bool lerobot = opt(j, "type", type, "", src);
    if (lerobot && type != "pi0" && type != "pi05")
      bad_field(src, "type", "not a pi0 / pi05 LeRobot config", "pi0 or pi05", type);
    std::string pv = "gemma_2b", ev = "gemma_300m";
    opt(j, "paligemma_variant", pv, "", src);
    opt(j, "action_expert_variant", ev, "", src);
    c.vlm = gemma_variant(pv, src, "paligemma_variant");
    c.expert = gemma_variant(ev, src, "action_expert_variant");
    c.vision = so400m();
    c.cameras = {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"};
    c.image_height = c.image_width = 224;
    if (j.contains("image_resolution")) {
      const json& r = j["image_resolution"];
      if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer())
        bad_field(src, "image_resolution", "must be [height, width]", "[224, 224]", r.dump());
      c.image_height = r[0].get<int>();
      c.image_width = r[1].get<int>();
      c.vision.num_patches = patch_count(c.image_height, c.image_width, c.vision.patch_size);
    }
    c.action_dim = 32;
    c.action_horizon = 50;
    if (lerobot) {
      c.pi05 = type == "pi05";
      h.pi05_given = true;
      h.action_dim_given = opt(j, "max_action_dim", c.action_dim, "", src);
      h.horizon_given = opt(j, "chunk_size", c.action_horizon, "", src);
      opt(j, "num_inference_steps", c.num_steps, "", src);
    } else {
      h.pi05_given = opt(j, "pi05", c.pi05, "", src);
      h.action_dim_given = opt(j, "action_dim", c.action_dim, "", src);
      h.horizon_given = opt(j, "action_horizon", c.action_horizon, "", src);
      opt(j, "num_steps", c.num_steps, "", src);
    }
    c.max_token_len = c.pi05 ? 200 : 48;
    bool tl = opt(j, lerobot ? "tokenizer_max_length" : "max_token_len", c.max_token_len, "", src);
    if (!tl && !h.pi05_given) c.max_token_len = 0;  // settled once pi05 is known from the tensors
    c.discrete_state_input = c.pi05;
    opt(j, "discrete_state_input", c.discrete_state_input, "", src);
    c.expert.adarms = c.pi05;
    c.expert.adarms_cond_dim = c.pi05 ? c.expert.width : 0;
    c.projection_dim = c.vlm.width;
    c.time_dim = c.expert.width;
  }
  if (hints) *hints = h;
  return c;
}

std::string config_to_json(const ModelConfig& c) {
  json a = {
      {"variant", c.variant()}, {"pi05", c.pi05}, {"discrete_state_input", c.discrete_state_input},
      {"action_dim", c.action_dim}, {"action_horizon", c.action_horizon}, {"max_token_len", c.max_token_len},
      {"num_steps", c.num_steps}, {"cameras", c.cameras}, {"image_height", c.image_height},
      {"image_width", c.image_width}, {"image_channels", c.image_channels},
      {"vision", {{"width", c.vision.width}, {"depth", c.vision.depth}, {"num_heads", c.vision.num_heads},
                  {"head_dim", c.vision.head_dim}, {"mlp_dim", c.vision.mlp_dim}, {"patch_size", c.vision.patch_size},
                  {"num_patches", c.vision.num_patches}, {"layer_norm_eps", c.vision.layer_norm_eps}}},
      {"projection_dim", c.projection_dim},
      {"vlm", {{"width", c.vlm.width}, {"depth", c.vlm.depth}, {"num_heads", c.vlm.num_heads},
               {"num_kv_heads", c.vlm.num_kv_heads}, {"head_dim", c.vlm.head_dim}, {"mlp_dim", c.vlm.mlp_dim},
               {"vocab_size", c.vlm.vocab_size}, {"rms_norm_eps", c.vlm.rms_norm_eps}, {"rope_theta", c.vlm.rope_theta}}},
      {"expert", {{"width", c.expert.width}, {"depth", c.expert.depth}, {"num_heads", c.expert.num_heads},
                  {"num_kv_heads", c.expert.num_kv_heads}, {"head_dim", c.expert.head_dim},
                  {"mlp_dim", c.expert.mlp_dim}, {"rms_norm_eps", c.expert.rms_norm_eps},
                  {"adarms", c.expert.adarms},
                  {"adarms_cond_dim", c.expert.adarms ? json(c.expert.adarms_cond_dim) : json(nullptr)}}},
      {"time_embedding", {{"dim", c.time_dim}, {"min_period", c.time_min_period}, {"max_period", c.time_max_period}}},
      {"attention_mask_value", c.attention_mask_value},
      {"activations", {{"vision_mlp", "gelu_tanh"}, {"gemma_mlp", "gelu_tanh"}, {"action_time_mlp", "silu"}, {"time_mlp", "silu"}}},
      {"tokens_per_image", c.tokens_per_image()}, {"prefix_len", c.prefix_len()}, {"suffix_len", c.suffix_len()}};
  const bool full = c.vlm.width == 2048 && c.expert.width == 1024;
  json j = {{"action_dim", c.action_dim}, {"action_horizon", c.action_horizon},
            {"paligemma_variant", full ? "gemma_2b" : "custom"}, {"action_expert_variant", full ? "gemma_300m" : "custom"},
            {"precision", "float32"}, {"pi05", c.pi05}, {"max_token_len", c.max_token_len},
            {"discrete_state_input", c.discrete_state_input}, {"architecture", a}};
  return j.dump(2) + "\n";
}

}  // namespace pi0
