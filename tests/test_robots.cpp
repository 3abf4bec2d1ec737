// Robot configs (docs/model.md §6.4): observation mapping, state layout, delta/absolute actions, output
// slicing and ALOHA's adapt_to_pi encodings; custom robots from JSON.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>

#include "pi0/error.h"
#include "policy/robots.h"

using namespace pi0;

namespace {

Tensor u8_image(int h, int w, bool chw, uint8_t fill = 100) {
  Tensor t = Tensor::zeros(DType::U8, chw ? Shape{3, h, w} : Shape{h, w, 3});
  std::fill_n(t.data_mut<uint8_t>(), t.numel(), fill);
  return t;
}

Tensor f64(std::vector<double> v) {
  Tensor t = Tensor::zeros(DType::F64, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data_mut<double>());
  return t;
}

using pi0::test::error_of;

// The formulas of openpi's aloha_policy.py, written out independently of robots.cpp.
double to_angular(double v) {
  const double lin = v * (0.058 - 0.01844) + 0.01844;
  const double a = std::asin(std::clamp((0.022 * 0.022 + lin * lin - 0.036 * 0.036) / (2 * 0.022 * lin), -1.0, 1.0));
  return (a - 0.5476) / (1.6296 - 0.5476);
}
double from_angular(double v) { return (v + 0.5476 + 0.6213) / (1.4910 + 0.6213); }

Dict libero_obs() {
  Dict o;
  o["observation/image"] = Value(u8_image(20, 30, false));
  o["observation/wrist_image"] = Value(u8_image(20, 30, true, 7));
  o["observation/state"] = Value(f64({1, 2, 3, 4, 5, 6, 7, 8}));
  o["prompt"] = Value("do it");
  return o;
}

}  // namespace

TEST(Robots, LiberoMappingAndDeltaPerModel) {
  const RobotConfig pi0 = builtin_robot("libero", false), pi05 = builtin_robot("libero", true);
  EXPECT_EQ(pi0.asset_id, "physical-intelligence/libero");
  EXPECT_EQ(pi0.state_dim(), 8);
  EXPECT_EQ(pi0.action_dim, 7);
  EXPECT_EQ(pi0.delta_mask, (std::vector<bool>{true, true, true, true, true, true, false}));  // pi0_libero
  EXPECT_TRUE(pi05.delta_mask.empty());                                                      // pi05_libero
  RobotObservation ro = robot_inputs(pi0, libero_obs());
  EXPECT_EQ(ro.state, (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}));
  ASSERT_EQ(ro.images.size(), 2u);
  EXPECT_EQ(ro.images.at("left_wrist_0_rgb").at(0, 0, 0), 7);  // CHW array accepted
  EXPECT_EQ(ro.images.count("right_wrist_0_rgb"), 0u);           // masked by the policy
  EXPECT_EQ(*ro.prompt, "do it");

  // Two steps of width 10 (model width); state 8 wide.
  std::vector<double> act(20);
  for (int i = 0; i < 20; ++i) act[i] = 0.1 * i;
  const std::vector<double> state = {1, 2, 3, 4, 5, 6, 7, 8};
  auto d = robot_outputs(pi0, act, 2, 10, state);
  auto a = robot_outputs(pi05, act, 2, 10, state);
  ASSERT_EQ(d.size(), 14u);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 7; ++i) {
      EXPECT_DOUBLE_EQ(a[h * 7 + i], act[h * 10 + i]);
      EXPECT_DOUBLE_EQ(d[h * 7 + i], act[h * 10 + i] + (i < 6 ? state[i] : 0.0));
    }
}

TEST(Robots, DroidConcatenatesStateAbsoluteActions) {
  const RobotConfig r = builtin_robot("droid", true);
  Dict o;
  o["observation/exterior_image_1_left"] = Value(u8_image(8, 8, false));
  o["observation/wrist_image_left"] = Value(u8_image(8, 8, false));
  o["observation/joint_position"] = Value(List{Value(0.5), Value(1), Value(2), Value(3), Value(4), Value(5), Value(6)});
  o["observation/gripper_position"] = Value(0.25);  // a scalar, as DROID clients send it
  RobotObservation ro = robot_inputs(r, o);
  EXPECT_EQ(ro.state, (std::vector<double>{0.5, 1, 2, 3, 4, 5, 6, 0.25}));
  EXPECT_FALSE(ro.prompt.has_value());
  std::vector<double> act(32, 0.5);
  auto out = robot_outputs(r, act, 1, 32, ro.state);
  EXPECT_EQ(out, std::vector<double>(8, 0.5));  // slice to 8, nothing added
}

TEST(Robots, AlohaAdaptToPiBothWays) {
  const RobotConfig r = builtin_robot("aloha", false);
  EXPECT_EQ(r.asset_id, "trossen");
  ASSERT_TRUE(r.metadata.count("reset_pose"));
  EXPECT_EQ(r.metadata.at("reset_pose").get_if<List>()->size(), 6u);
  std::vector<double> s(14);
  for (int i = 0; i < 14; ++i) s[i] = 0.1 * (i + 1);
  s[6] = 0.3;
  s[13] = 0.8;
  Dict o;
  Dict images;
  images["cam_high"] = Value(u8_image(12, 16, true));
  images["cam_right_wrist"] = Value(u8_image(12, 16, true));
  images["cam_low"] = Value(u8_image(12, 16, true));  // accepted, unused
  o["images"] = Value(images);
  o["state"] = Value(f64(s));
  RobotObservation ro = robot_inputs(r, o);
  EXPECT_EQ(ro.images.count("base_0_rgb"), 1u);
  EXPECT_EQ(ro.images.count("left_wrist_0_rgb"), 0u);
  EXPECT_EQ(ro.images.count("right_wrist_0_rgb"), 1u);
  const double flip[14] = {1, -1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1};
  for (int i = 0; i < 14; ++i) {
    if (i == 6 || i == 13) EXPECT_NEAR(ro.state[i], to_angular(s[i]), 1e-12) << i;
    else EXPECT_DOUBLE_EQ(ro.state[i], flip[i] * s[i]) << i;
  }
  // Outputs: joints delta -> absolute (+ pi-space state), grippers absolute; then flip / convert.
  std::vector<double> act(16, 0.0);
  for (int i = 0; i < 16; ++i) act[i] = 0.01 * i;
  std::vector<double> st(16, 0.0);
  for (int i = 0; i < 14; ++i) st[i] = ro.state[i];
  auto out = robot_outputs(r, act, 1, 16, st);
  ASSERT_EQ(out.size(), 14u);
  for (int i = 0; i < 14; ++i) {
    const bool gripper = i == 6 || i == 13;
    const double absolute = act[i] + (gripper ? 0.0 : st[i]);
    if (gripper) EXPECT_NEAR(out[i], from_angular(absolute), 1e-12) << i;
    else EXPECT_DOUBLE_EQ(out[i], flip[i] * absolute) << i;
  }
  // aloha_sim: absolute joints, same encodings.
  const RobotConfig sim = builtin_robot("aloha_sim", false);
  EXPECT_TRUE(sim.delta_mask.empty());
  EXPECT_EQ(sim.default_prompt, "Transfer cube");
  auto out_sim = robot_outputs(sim, act, 1, 16, st);
  EXPECT_DOUBLE_EQ(out_sim[1], -act[1]);
}

TEST(Robots, BadObservationsAreClearErrors) {
  const RobotConfig libero = builtin_robot("libero", true);
  Dict o = libero_obs();
  o.erase("observation/wrist_image");
  EXPECT_NE(error_of([&] { robot_inputs(libero, o); }).find("observation/wrist_image"), std::string::npos);
  o = libero_obs();
  o["observation/state"] = Value(f64({1, 2, 3}));
  std::string e = error_of([&] { robot_inputs(libero, o); });
  EXPECT_NE(e.find("expected 8 values, got 3"), std::string::npos) << e;
  o = libero_obs();
  o["observation/state"] = Value(f64({1, 2, NAN, 4, 5, 6, 7, 8}));
  e = error_of([&] { robot_inputs(libero, o); });
  EXPECT_NE(e.find("observation/state[2]"), std::string::npos) << e;
  EXPECT_NE(e.find("nan"), std::string::npos) << e;
  o["observation/state"] = Value(f64({1, 2, 3, INFINITY, 5, 6, 7, 8}));
  EXPECT_NE(error_of([&] { robot_inputs(libero, o); }).find("not finite"), std::string::npos);
  o = libero_obs();
  o["observation/image"] = Value(u8_image(4, 4, false).reshaped({2, 24}));
  EXPECT_NE(error_of([&] { robot_inputs(libero, o); }).find("observation/image"), std::string::npos);
  o = libero_obs();
  o["observation/state"] = Value("eight numbers");
  EXPECT_NE(error_of([&] { robot_inputs(libero, o); }).find("numeric"), std::string::npos);
  o = libero_obs();
  o["prompt"] = Value(3);
  EXPECT_NE(error_of([&] { robot_inputs(libero, o); }).find("prompt"), std::string::npos);

  const RobotConfig aloha = builtin_robot("aloha", false);
  Dict a;
  Dict images;
  images["cam_high"] = Value(u8_image(4, 4, true));
  images["cam_top"] = Value(u8_image(4, 4, true));
  a["images"] = Value(images);
  a["state"] = Value(f64(std::vector<double>(14, 0.5)));
  e = error_of([&] { robot_inputs(aloha, a); });
  EXPECT_NE(e.find("images/cam_top"), std::string::npos) << e;
  images.erase("cam_top");
  images.erase("cam_high");
  images["cam_left_wrist"] = Value(u8_image(4, 4, true));
  a["images"] = Value(images);
  EXPECT_NE(error_of([&] { robot_inputs(aloha, a); }).find("images/cam_high"), std::string::npos);
  EXPECT_NE(error_of([] { resolve_robot("franka", false); }).find("aloha, aloha_sim, droid, libero"), std::string::npos);
}

TEST(Robots, CustomJson) {
  const std::string text = R"({
    "name": "arm6", "asset_id": "my_lab/arm6",
    "cameras": [{"model": "base_0_rgb", "key": "cam/front"},
                {"model": "left_wrist_0_rgb", "key": "cam/wrist", "required": false}],
    "state": [{"key": "joints", "size": 6}, {"key": "gripper", "size": 1}],
    "action_dim": 7, "delta_mask": [true, true, true, true, true, true, false],
    "default_prompt": "tidy up", "metadata": {"hz": 15, "reset_pose": [0, 0.5]}})";
  const RobotConfig r = parse_robot_json(text, "arm6.json");
  EXPECT_EQ(r.asset_id, "my_lab/arm6");
  EXPECT_EQ(r.state_dim(), 7);
  EXPECT_EQ(r.default_prompt, "tidy up");
  EXPECT_EQ(*r.metadata.at("hz").get_if<int64_t>(), 15);
  Dict o;
  Dict cam;
  cam["front"] = Value(u8_image(5, 5, false));
  o["cam"] = Value(cam);  // nested keys are found through the '/' path
  o["joints"] = Value(f64({1, 2, 3, 4, 5, 6}));
  o["gripper"] = Value(f64({0.5}));
  RobotObservation ro = robot_inputs(r, o);
  EXPECT_EQ(ro.images.size(), 1u);
  EXPECT_EQ(ro.state.back(), 0.5);
  std::vector<double> act(8, 1.0);
  auto out = robot_outputs(r, act, 1, 8, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 0});
  EXPECT_EQ(out, (std::vector<double>{2, 3, 4, 5, 6, 7, 1}));

  EXPECT_NE(error_of([] { parse_robot_json(R"({"name": "x"})", "x.json"); }).find("cameras"), std::string::npos);
  EXPECT_NE(error_of([] { parse_robot_json(R"({"name": "x", "camras": []})", "x.json"); }).find("camras"),
            std::string::npos);
  std::string e = error_of([] {
    parse_robot_json(R"({"name": "x", "cameras": [{"model": "base_0_rgb", "key": "i"}], "state": [{"key": "s", "size": 0}], "action_dim": 2})",
                     "x.json");
  });
  EXPECT_NE(e.find("state[0]"), std::string::npos) << e;
  EXPECT_NE(e.find("x.json"), std::string::npos) << e;
}
