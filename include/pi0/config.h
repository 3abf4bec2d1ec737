// Every dimension of a π0 / π0.5 model (docs/model.md §1, docs/model.md §1). Nothing else in the
// library hard-codes a size: presets below are the only place real sizes appear.
#pragma once
#include <string>
#include <vector>

namespace pi0 {

struct VisionConfig {  // SigLIP
  int width = 0, depth = 0, num_heads = 0, head_dim = 0, mlp_dim = 0, patch_size = 0, num_patches = 0;
  double layer_norm_eps = 1e-6;
};

struct GemmaConfig {  // one tower of the mixture of transformers
  int width = 0, depth = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0, mlp_dim = 0;
  int vocab_size = 0;  // VLM only (the embedding table); 0 for the expert
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool adarms = false;  // expert of π0.5: adaptive RMSNorm driven by the time condition
  int adarms_cond_dim = 0;
};

struct ModelConfig {
  bool pi05 = false;
  bool discrete_state_input = false;  // the prompt carries the discretised state (π0.5 default)
  int action_dim = 0, action_horizon = 0, max_token_len = 0, num_steps = 10;
  std::vector<std::string> cameras;
  int image_height = 0, image_width = 0, image_channels = 3;
  VisionConfig vision;
  int projection_dim = 0;
  GemmaConfig vlm, expert;
  int time_dim = 0;
  double time_min_period = 4e-3, time_max_period = 4.0;
  float attention_mask_value = -2.3819763e38f;

  std::string variant() const { return pi05 ? "pi05" : "pi0"; }
  int tokens_per_image() const { return vision.num_patches; }
  int prefix_len() const { return static_cast<int>(cameras.size()) * tokens_per_image() + max_token_len; }
  int suffix_len() const { return action_horizon + (pi05 ? 0 : 1); }

  // Throws pi0::Error naming the field when the dimensions are inconsistent.
  void validate(const std::string& source = "config") const;
};

// "pi0", "pi05" (full size, docs/model.md §1) and "tiny-pi0", "tiny-pi05" (the embedded demo).
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

// config.json: the explicit `architecture` object (docs/model.md §1) when present; otherwise
// openpi / LeRobot fields over the named variants. `file` is used in error messages.
// Fields it cannot know (pi05 / action_dim for a plain openpi config) are returned as given by
// the variant defaults and settled against the tensors by the checkpoint loader.
struct ConfigHints {
  bool pi05_given = false, action_dim_given = false, vocab_given = false, horizon_given = false;
};
ModelConfig parse_config_json(const std::string& text, const std::string& file, ConfigHints* hints = nullptr);
// The JSON we write next to generated checkpoints: openpi's top-level fields + `architecture`.
std::string config_to_json(const ModelConfig& c);

}  // namespace pi0
