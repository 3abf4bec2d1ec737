// A robot configuration that cannot be what its author meant is a load error, never a policy that
// silently ignores a camera or a value: unknown or duplicate camera and state names, keys given
// twice, sizes that would wrap, norm stats narrower than the actions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bundle_util.h"
#include "policy/policy.h"
#include "policy/robots.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace pi0;
namespace fs = std::filesystem;
using test::error_of;

namespace {

std::string robot_file(const std::string& name, const std::string& text) {
  const std::string path = test::temp_file(name);
  std::ofstream(path) << text;
  return path;
}

const char* kState = R"("state": [{"key": "observation/state", "size": 8}], "action_dim": 7)";

}  // namespace

TEST(RobotSafety, CameraTheModelDoesNotHaveIsALoadError) {
  const std::string path = robot_file("top_cam.json", std::string(R"({"name": "arm", "asset_id": "physical-intelligence/libero",
      "cameras": [{"model": "top_cam", "key": "observation/image"}], )") + kState + "}");
  const std::string e = error_of([&] { Policy::load(test::bundle("tiny-pi0"), {.robot = path, .backend = "reference"}); });
  EXPECT_NE(e.find("top_cam"), std::string::npos) << e;
  EXPECT_NE(e.find("base_0_rgb"), std::string::npos) << e;  // says which cameras the model has
}

TEST(RobotSafety, ModelWithOtherCameraNamesRefusesABuiltInRobot) {
  ModelConfig c = model_preset("tiny-pi0");
  c.cameras = {"a", "b", "c"};
  const std::string dir = test::temp_dir("cams_abc");
  write_random_checkpoint(dir, c, {.seed = 1});
  write_demo_assets(dir, c);
  const std::string e = error_of([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(e.find("camera this model does not have"), std::string::npos) << e;
}

TEST(RobotSafety, DuplicateNamesAndKeysAreErrors) {
  const std::string cams2 = R"({"name": "r", "cameras": [{"model": "base_0_rgb", "key": "a"}, {"model": "base_0_rgb", "key": "b"}], )";
  EXPECT_NE(error_of([&] { parse_robot_json(cams2 + kState + "}", "r.json"); }).find("cameras[1]"), std::string::npos);
  const std::string keys2 = R"({"name": "r", "cameras": [{"model": "base_0_rgb", "key": "a"}, {"model": "left_wrist_0_rgb", "key": "a"}], )";
  EXPECT_NE(error_of([&] { parse_robot_json(keys2 + kState + "}", "r.json"); }).find("share"), std::string::npos);
  const std::string state2 = R"({"name": "r", "cameras": [{"model": "base_0_rgb", "key": "a"}],
      "state": [{"key": "s", "size": 4}, {"key": "s", "size": 4}], "action_dim": 7})";
  EXPECT_NE(error_of([&] { parse_robot_json(state2, "r.json"); }).find("state key listed twice"), std::string::npos);
  const std::string twice = R"({"name": "r", "action_dim": 7, "cameras": [{"model": "base_0_rgb", "key": "a"}], )" +
                            std::string(kState) + "}";
  const std::string e = error_of([&] { parse_robot_json(twice, "r.json"); });
  EXPECT_NE(e.find("key given twice"), std::string::npos) << e;
  EXPECT_NE(e.find("action_dim"), std::string::npos) << e;
  const std::string wrap = R"({"name": "r", "cameras": [{"model": "base_0_rgb", "key": "a"}],
      "state": [{"key": "s", "size": 4294967297}], "action_dim": 7})";
  EXPECT_NE(error_of([&] { parse_robot_json(wrap, "r.json"); }).find("state[0]"), std::string::npos);
}

TEST(RobotSafety, ActionNormStatsNarrowerThanTheActionsAreALoadError) {
  const std::string dir = test::temp_dir("narrow_actions");
  fs::copy(test::bundle("tiny-pi0"), dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string stats = dir + "/assets/physical-intelligence/libero/norm_stats.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(stats));
  for (const char* k : {"mean", "std", "q01", "q99"}) {
    auto& v = j["norm_stats"]["actions"][k];
    v.erase(v.begin() + 3, v.end());
  }
  std::ofstream(stats) << j.dump();
  const std::string e = error_of([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(e.find("narrower than robot libero's actions"), std::string::npos) << e;
}

// Finite model output can still overflow when unnormalised with absurd stats: never sent.
TEST(RobotSafety, ActionsThatOverflowWhenUnnormalisedAreAnError) {
  const std::string dir = test::temp_dir("huge_std");
  fs::copy(test::bundle("tiny-pi0"), dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string stats = dir + "/assets/physical-intelligence/libero/norm_stats.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(stats));
  for (auto& v : j["norm_stats"]["actions"]["std"]) v = 1e308;
  std::ofstream(stats) << j.dump();
  auto policy = Policy::load(dir, {.robot = "libero", .backend = "reference"});
  Dict obs;
  const ModelConfig& c = policy->config();
  for (const char* key : {"observation/image", "observation/wrist_image"})
    obs[key] = Value(Tensor::zeros(DType::U8, {c.image_height, c.image_width, 3}));
  obs["observation/state"] = Value(Tensor::zeros(DType::F64, {8}));
  obs["prompt"] = Value(std::string("pick up"));
  const std::string e = error_of([&] { policy->infer(obs, {.seed = 1}); });
  EXPECT_NE(e.find("not finite"), std::string::npos) << e;
}
