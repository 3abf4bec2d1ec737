// Observations of each built-in robot for policy-level tests (small images, fixed state) and a
// deterministic noise tensor.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "pi0/config.h"
#include "pi0/value.h"

namespace pi0::test {

inline Tensor u8_image(int h, int w, uint8_t seed) {
  Tensor t = Tensor::zeros(DType::U8, {h, w, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t.data_mut<uint8_t>()[i] = static_cast<uint8_t>(i * 7 + seed);
  return t;
}

inline Tensor f64(std::vector<double> v) {
  Tensor t = Tensor::zeros(DType::F64, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data_mut<double>());
  return t;
}

inline Dict libero_obs() {
  Dict o;
  o["observation/image"] = Value(u8_image(40, 64, 1));
  o["observation/wrist_image"] = Value(u8_image(30, 30, 2));
  o["observation/state"] = Value(f64({0.1, -0.2, 0.3, 0.05, 0.0, -0.4, 0.02, -0.02}));
  o["prompt"] = Value("pick up the red block");
  return o;
}

inline Tensor noise_for(const ModelConfig& c, uint64_t salt) {
  Tensor t = Tensor::zeros(DType::F64, {c.action_horizon, c.action_dim});
  for (int64_t i = 0; i < t.numel(); ++i) t.data_mut<double>()[i] = std::sin(0.37 * i + salt);
  return t;
}

inline Dict droid_obs() {
  Dict o;
  o["observation/exterior_image_1_left"] = Value(u8_image(50, 50, 3));
  o["observation/wrist_image_left"] = Value(u8_image(50, 50, 4));
  o["observation/joint_position"] = Value(f64({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}));
  o["observation/gripper_position"] = Value(f64({0.9}));
  o["prompt"] = Value("open_the drawer");
  return o;
}

inline Dict aloha_obs() {
  Dict o;
  o["images"] = Value(Dict{{"cam_high", Value(Tensor::zeros(DType::U8, {3, 48, 64}))}});
  o["state"] = Value(f64(std::vector<double>(14, 0.3)));
  o["prompt"] = Value("fold the towel");
  return o;
}

inline Dict obs_for(const std::string& robot) {
  return robot == "libero" ? libero_obs() : robot == "droid" ? droid_obs() : aloha_obs();
}

}  // namespace pi0::test
