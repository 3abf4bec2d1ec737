// Helpers for model tests: random (but consistent) configurations of any shape, checkpoints
// written for them, and random inputs.
#pragma once
#include <filesystem>
#include <random>
#include <string>

#include "model/random_checkpoint.h"
#include "model/pi0_model.h"
#include "temp_dir.h"

namespace pi0::test {

// A small configuration whose every dimension is drawn at random: layers, heads (MQA/GQA/MHA),
// head_dim, widths, image size and patch, cameras, horizon, steps, token length, π0 or π0.5.
inline ModelConfig random_config(uint32_t seed, int pi05 = -1) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  ModelConfig c;
  c.pi05 = pi05 < 0 ? pick(0, 1) == 1 : pi05 == 1;
  c.discrete_state_input = c.pi05;
  c.action_dim = pick(2, 9);
  c.action_horizon = pick(1, 7);
  c.max_token_len = pick(1, 9);
  c.num_steps = pick(1, 5);
  const int ncam = pick(1, 3);
  for (int k = 0; k < ncam; ++k) c.cameras.push_back("cam" + std::to_string(k));
  c.vision.patch_size = pick(2, 5);
  c.image_height = c.vision.patch_size * pick(1, 3);
  c.image_width = c.vision.patch_size * pick(1, 3);
  c.image_channels = 3;
  c.vision.num_patches = (c.image_height / c.vision.patch_size) * (c.image_width / c.vision.patch_size);
  c.vision.num_heads = pick(1, 3);
  c.vision.head_dim = pick(2, 6);
  c.vision.width = c.vision.num_heads * c.vision.head_dim;
  c.vision.depth = pick(1, 2);
  c.vision.mlp_dim = pick(4, 20);
  const int kv = pick(1, 2), group = pick(1, 3);
  const int heads = kv * group, hd = 2 * pick(1, 5), depth = pick(1, 3);
  c.vlm = {.width = pick(6, 24), .depth = depth, .num_heads = heads, .num_kv_heads = kv, .head_dim = hd,
           .mlp_dim = pick(4, 30), .vocab_size = pick(20, 60)};
  c.expert = {.width = 2 * pick(2, 9), .depth = depth, .num_heads = heads, .num_kv_heads = kv, .head_dim = hd,
              .mlp_dim = pick(4, 30)};
  c.expert.adarms = c.pi05;
  c.expert.adarms_cond_dim = c.pi05 ? c.expert.width : 0;
  c.projection_dim = c.vlm.width;
  c.time_dim = c.expert.width;
  c.validate("random config");
  return c;
}

inline std::unique_ptr<Pi0Model> random_model(const ModelConfig& c, const std::string& name, uint64_t seed = 1,
                                              const std::string& backend = "reference") {
  std::string dir = temp_dir(name);
  write_random_checkpoint(dir, c, {.dtype = DType::F32, .seed = seed});
  return Pi0Model::load(dir, backend);
}

// Random inputs; row b > 0 masks camera 0 (when there are two or more) and pads half the prompt.
inline ModelInputs random_inputs(const ModelConfig& c, int64_t B, uint32_t seed, bool with_noise = true) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::normal_distribution<float> n(0.f, 1.f);
  auto fill = [&](Tensor& t, auto dist) { for (int64_t i = 0; i < t.numel(); ++i) t.data_mut<float>()[i] = dist(rng); };
  ModelInputs in;
  for (size_t k = 0; k < c.cameras.size(); ++k) {
    Tensor img = Tensor::zeros(DType::F32, {B, c.image_channels, c.image_height, c.image_width});
    fill(img, u);
    Tensor m = Tensor::zeros(DType::U8, {B});
    for (int64_t b = 0; b < B; ++b) m.data_mut<uint8_t>()[b] = (b > 0 && k == 0 && c.cameras.size() > 1) ? 0 : 1;
    in.images.push_back(img);
    in.image_masks.push_back(m);
  }
  in.tokens = Tensor::zeros(DType::I32, {B, c.max_token_len});
  in.token_mask = Tensor::zeros(DType::U8, {B, c.max_token_len});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t valid = b == 0 ? c.max_token_len : std::max<int64_t>(1, c.max_token_len / 2);
    for (int64_t t = 0; t < c.max_token_len; ++t) {
      in.tokens.data_mut<int32_t>()[b * c.max_token_len + t] =
          t < valid ? std::uniform_int_distribution<int>(1, c.vlm.vocab_size - 1)(rng) : 0;
      in.token_mask.data_mut<uint8_t>()[b * c.max_token_len + t] = t < valid;
    }
  }
  in.state = Tensor::zeros(DType::F32, {B, c.action_dim});
  fill(in.state, u);
  if (with_noise) {
    in.noise = Tensor::zeros(DType::F32, {B, c.action_horizon, c.action_dim});
    fill(in.noise, n);
  }
  return in;
}

}  // namespace pi0::test
