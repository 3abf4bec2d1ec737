// Checkpoints saved by LeRobot rather than openpi: its processor normalisers
// (policy_preprocessor.json + step safetensors) and its pre-rewrite form (older tower names,
// normaliser buffers inside the weights). Actions are checked against LeRobot's formulas
// computed here by hand on the model's own output, and old-layout weights against the same
// weights under today's names.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bundle_util.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/pi0_model.h"
#include "pi0/error.h"
#include "policy/lerobot_normalizer.h"
#include "policy/normalizer.h"
#include "policy/policy.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

using Tensors = std::vector<std::pair<std::string, Tensor>>;
const std::string kPali = "paligemma_with_expert.paligemma.";

// The bundle's weights, config and tokenizer (not its openpi assets) in a fresh directory, with
// `edit` applied to the tensor list.
std::string copy_bundle(const std::string& preset, const std::string& name, const std::function<void(Tensors&)>& edit) {
  const std::string src = test::bundle(preset), dir = test::temp_dir(name);
  fs::copy_file(src + "/config.json", dir + "/config.json");
  fs::copy_file(src + "/tokenizer.model", dir + "/tokenizer.model");
  auto f = SafeTensorsFile::open(src + "/model.safetensors");
  Tensors ts;
  for (const auto& e : f->entries()) ts.emplace_back(e.name, f->tensor(e).to(e.dtype));
  edit(ts);
  write_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

// transformers < 4.52 names, as LeRobot's pi0 stored them before its rewrite.
std::string old_name(const std::string& n) {
  if (n.rfind(kPali, 0) != 0) return n;
  const std::string rest = n.substr(kPali.size());
  for (auto [from, to] : {std::pair{"model.language_model.", "language_model.model."}, {"lm_head.", "language_model.lm_head."},
                          {"model.vision_tower.", "vision_tower."}, {"model.multi_modal_projector.", "multi_modal_projector."}})
    if (rest.rfind(from, 0) == 0) return kPali + to + rest.substr(std::string(from).size());
  return n;
}

Tensor vec(const std::vector<float>& v) { return Tensor::from_f32(v, {static_cast<int64_t>(v.size())}); }

Tensor u8_image(int h, int w, uint8_t seed) {
  Tensor t = Tensor::zeros(DType::U8, {h, w, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t.data_mut<uint8_t>()[i] = static_cast<uint8_t>(i * 7 + seed);
  return t;
}

Dict libero_obs(const ModelConfig& c) {
  Dict o;
  o["observation/image"] = Value(u8_image(40, 64, 1));
  o["observation/wrist_image"] = Value(u8_image(30, 30, 2));
  Tensor s = Tensor::zeros(DType::F64, {8});
  const double state[] = {0.1, -0.2, 0.3, 0.05, 0.0, -0.4, 0.02, -0.02};
  std::copy(state, state + 8, s.data_mut<double>());
  o["observation/state"] = Value(s);
  o["prompt"] = Value("pick up the red block");
  Tensor noise = Tensor::zeros(DType::F64, {c.action_horizon, c.action_dim});
  for (int64_t i = 0; i < noise.numel(); ++i) noise.data_mut<double>()[i] = std::sin(0.37 * i + 5);
  o["noise"] = Value(noise);
  return o;
}

std::vector<double> actions_of(const Dict& reply) {
  const Tensor& t = *reply.at("actions").get_if<Tensor>();
  return {t.data<double>(), t.data<double>() + t.numel()};
}

struct Stats {
  std::vector<float> a, b;  // mean/std or q01/q99
};

// LeRobot's formulas, written out here independently of the library (float32, as LeRobot).
float lerobot_forward(const std::string& mode, float x, float a, float b, float eps) {
  if (mode == "MEAN_STD") return (x - a) / (b + eps);
  const float d = b - a == 0.0f ? eps : b - a;
  return 2.0f * (x - a) / d - 1.0f;
}
float lerobot_inverse(const std::string& mode, float x, float a, float b, float eps) {
  if (mode == "MEAN_STD") return x * b + a;
  const float d = b - a == 0.0f ? eps : b - a;
  return (x + 1.0f) * d / 2.0f + a;
}

// Writes LeRobot's processor files into `dir` as its save_pretrained lays them out for π0.
void write_lerobot_processors(const std::string& dir, const std::string& mode, const Stats& state, const Stats& action,
                              bool with_postprocessor = true) {
  const auto [an, bn] = mode == "MEAN_STD" ? std::pair{"mean", "std"} : std::pair{"q01", "q99"};
  const nlohmann::json features = {
      {"observation.images.image", {{"type", "VISUAL"}, {"shape", {3, 224, 224}}}},
      {"observation.state", {{"type", "STATE"}, {"shape", {state.a.size()}}}},
      {"action", {{"type", "ACTION"}, {"shape", {action.a.size()}}}}};
  const nlohmann::json norm_map = {{"VISUAL", "IDENTITY"}, {"STATE", mode}, {"ACTION", mode}};
  nlohmann::json pre = {{"name", "policy_preprocessor"}, {"steps", nlohmann::json::array()}};
  for (const char* s : {"rename_observations_processor", "to_batch_processor", "pi0_new_line_processor",
                        "tokenizer_processor", "device_processor", "relative_actions_processor"})
    pre["steps"].push_back({{"registry_name", s}, {"config", nlohmann::json::object()}});
  pre["steps"].push_back({{"registry_name", "normalizer_processor"},
                          {"config", {{"eps", 1e-8}, {"features", features}, {"norm_map", norm_map}}},
                          {"state_file", "policy_preprocessor_step_6_normalizer_processor.safetensors"}});
  std::ofstream(dir + "/policy_preprocessor.json") << pre.dump(2);
  const std::string A = std::string("action.");
  write_safetensors(dir + "/policy_preprocessor_step_6_normalizer_processor.safetensors",
                    {{"observation.state." + std::string(an), vec(state.a)}, {"observation.state." + std::string(bn), vec(state.b)},
                     {A + an, vec(action.a)}, {A + bn, vec(action.b)}});
  if (!with_postprocessor) return;
  // The postprocessor's own action stats (differently scaled) are the ones LeRobot unnormalises with.
  nlohmann::json post = {{"name", "policy_postprocessor"}, {"steps", nlohmann::json::array()}};
  post["steps"].push_back({{"registry_name", "unnormalizer_processor"},
                           {"config", {{"eps", 1e-8}, {"features", {{"action", features["action"]}}}, {"norm_map", norm_map}}},
                           {"state_file", "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}});
  post["steps"].push_back({{"registry_name", "device_processor"}, {"config", {{"device", "cpu"}}}});
  std::ofstream(dir + "/policy_postprocessor.json") << post.dump(2);
  write_safetensors(dir + "/policy_postprocessor_step_0_unnormalizer_processor.safetensors",
                    {{A + an, vec(action.a)}, {A + bn, vec(action.b)}});
}

// Runs the policy on `dir` and checks its actions against LeRobot's formulas applied by hand to
// what the model itself returns for the same inputs.
void expect_lerobot_actions(const std::string& dir, const std::string& mode, const Stats& state, const Stats& action) {
  auto policy = Policy::load(dir, {.robot = "libero", .backend = "reference"});
  const ModelConfig& c = policy->config();
  const Dict obs = libero_obs(c);
  const PreparedObservation prep = policy->prepare(obs);
  // The model's state: LeRobot's forward formula on the float32 state, zero-padded.
  const double raw[] = {0.1, -0.2, 0.3, 0.05, 0.0, -0.4, 0.02, -0.02};
  for (int i = 0; i < c.action_dim; ++i) {
    const float want = i < 8 ? lerobot_forward(mode, static_cast<float>(raw[i]), state.a[i], state.b[i], 1e-8f) : 0.0f;
    ASSERT_EQ(prep.inputs.state.data<float>()[i], want) << "state " << i;
  }
  const Tensor model_out = Pi0Model::load(dir, "reference")->sample_actions(prep.inputs);
  const int64_t H = c.action_horizon, A = c.action_dim;
  std::vector<double> acts(H * A), st(A);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < A; ++i) {
      const float v = model_out.data<float>()[h * A + i];
      acts[h * A + i] = i < static_cast<int64_t>(action.a.size()) ? lerobot_inverse(mode, v, action.a[i], action.b[i], 1e-8f) : v;
    }
  for (int64_t i = 0; i < A; ++i) {
    const float v = prep.inputs.state.data<float>()[i];
    st[i] = i < 8 ? lerobot_inverse(mode, v, state.a[i], state.b[i], 1e-8f) : v;
  }
  const std::vector<double> want = robot_outputs(policy->robot(), acts, H, A, st);
  const std::vector<double> got = actions_of(policy->infer(obs));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "action " << i;
}

Stats stats(int n, float a0, float b0) {
  Stats s;
  for (int i = 0; i < n; ++i) {
    s.a.push_back(a0 + 0.1f * std::sin(1.0f + i));
    s.b.push_back(b0 + 0.05f * std::cos(2.0f + i));
  }
  return s;
}

std::string error_text(const std::function<void()>& f) { return test::error_of(f); }

}  // namespace

TEST(KeyLayouts, OldLayoutLoadsWithTheSameTensors) {
  const std::string dir = copy_bundle("tiny-pi0", "old_layout", [](Tensors& ts) {
    for (auto& [n, t] : ts) n = old_name(n);
  });
  Checkpoint old = open_checkpoint(dir), now = open_checkpoint(test::bundle("tiny-pi0"));
  EXPECT_EQ(old.key_layout, "transformers<4.52");
  EXPECT_EQ(now.key_layout, "current");
  ASSERT_EQ(old.tensors.size(), now.tensors.size());
  for (const auto& [n, t] : now.tensors) {
    ASSERT_TRUE(old.tensors.count(n)) << n;
    EXPECT_EQ(old.tensors.at(n).shape(), t.shape()) << n;
  }
}

TEST(KeyLayouts, TowersWithoutTheModelLevelLoad) {
  const std::string dir = copy_bundle("tiny-pi05", "no_model_level", [](Tensors& ts) {
    for (auto& [n, t] : ts)
      if (n.rfind(kPali + "model.", 0) == 0) n = kPali + n.substr(kPali.size() + 6);
  });
  EXPECT_EQ(open_checkpoint(dir).key_layout, "no-model-level");
}

TEST(KeyLayouts, MixedLayoutsAreRefusedNamingBoth) {
  const std::string dir = copy_bundle("tiny-pi0", "mixed_layout", [](Tensors& ts) {
    for (auto& [n, t] : ts)
      if (n.find("vision_tower") != std::string::npos) n = old_name(n);
  });
  const std::string msg = error_text([&] { open_checkpoint(dir); });
  EXPECT_NE(msg.find("mix key layouts"), std::string::npos) << msg;
  EXPECT_NE(msg.find(kPali + "vision_tower."), std::string::npos) << msg;
  EXPECT_NE(msg.find(kPali + "model.language_model."), std::string::npos) << msg;
}

// The acceptance check: LeRobot's pre-rewrite form (old names, "model." prefix, normaliser
// buffers beside the model) gives exactly the actions of the same weights under today's names.
TEST(KeyLayouts, OldLayoutGivesTheSameActionsAsTodays) {
  const Stats st = stats(8, 0.05f, 0.5f), ac = stats(7, -0.1f, 0.8f);
  const auto buffers = [&](Tensors& ts) {
    ts.emplace_back("normalize_inputs.buffer_observation_state.mean", vec(st.a));
    ts.emplace_back("normalize_inputs.buffer_observation_state.std", vec(st.b));
    ts.emplace_back("normalize_targets.buffer_action.mean", vec(ac.a));
    ts.emplace_back("normalize_targets.buffer_action.std", vec(ac.b));
    ts.emplace_back("unnormalize_outputs.buffer_action.mean", vec(ac.a));
    ts.emplace_back("unnormalize_outputs.buffer_action.std", vec(ac.b));
  };
  const std::string today = copy_bundle("tiny-pi0", "layout_today", buffers);
  const std::string old = copy_bundle("tiny-pi0", "layout_old", [&](Tensors& ts) {
    for (auto& [n, t] : ts) n = "model." + old_name(n);
    buffers(ts);
  });
  EXPECT_TRUE(open_checkpoint(old).lerobot_prefix);
  EXPECT_EQ(open_checkpoint(old).normalizer_buffers.size(), 6u);
  auto a = Policy::load(today, {.robot = "libero", .backend = "reference"});
  auto b = Policy::load(old, {.robot = "libero", .backend = "reference"});
  const Dict obs = libero_obs(a->config());
  EXPECT_EQ(actions_of(a->infer(obs)), actions_of(b->infer(obs)));
  // Those buffers follow LeRobot's MEAN_STD formulas.
  expect_lerobot_actions(old, "MEAN_STD", st, ac);
}

TEST(LeRobotNormalizer, UnfilledBuffersAreRefusedNamingTheTensor) {
  const std::string dir = copy_bundle("tiny-pi0", "inf_buffers", [](Tensors& ts) {
    ts.emplace_back("normalize_inputs.buffer_observation_state.mean", vec(std::vector<float>(8, INFINITY)));
    ts.emplace_back("normalize_inputs.buffer_observation_state.std", vec(std::vector<float>(8, INFINITY)));
    ts.emplace_back("unnormalize_outputs.buffer_action.mean", vec(std::vector<float>(7, 0.0f)));
    ts.emplace_back("unnormalize_outputs.buffer_action.std", vec(std::vector<float>(7, 1.0f)));
  });
  const std::string msg = error_text([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(msg.find("never filled"), std::string::npos) << msg;
  EXPECT_NE(msg.find("normalize_inputs.buffer_observation_state.mean[0]"), std::string::npos) << msg;
}

TEST(LeRobotNormalizer, Pi0MeanStdProcessorMatchesLeRobotsFormulas) {
  const std::string dir = copy_bundle("tiny-pi0", "lerobot_pi0", [](Tensors&) {});
  const Stats st = stats(8, 0.05f, 0.5f), ac = stats(7, -0.1f, 0.8f);
  write_lerobot_processors(dir, "MEAN_STD", st, ac);
  auto n = load_normalizer(dir, "", resolve_robot("libero", false), false);
  EXPECT_NE(n->description().find("policy_preprocessor.json + policy_postprocessor.json"), std::string::npos);
  EXPECT_NE(n->description().find("MEAN_STD"), std::string::npos);
  expect_lerobot_actions(dir, "MEAN_STD", st, ac);
}

TEST(LeRobotNormalizer, Pi05QuantilesWithAZeroRangeMatchLeRobotsFormulas) {
  const std::string dir = copy_bundle("tiny-pi05", "lerobot_pi05", [](Tensors&) {});
  Stats st = stats(8, -0.3f, 0.6f), ac = stats(7, -0.5f, 0.4f);
  st.b[3] = st.a[3];  // q99 == q01: LeRobot divides by eps instead
  ac.b[2] = ac.a[2];
  write_lerobot_processors(dir, "QUANTILES", st, ac, /*with_postprocessor=*/false);
  expect_lerobot_actions(dir, "QUANTILES", st, ac);
}

TEST(LeRobotNormalizer, MissingStatNamesTheFileAndKey) {
  const std::string dir = copy_bundle("tiny-pi0", "lerobot_missing", [](Tensors&) {});
  write_lerobot_processors(dir, "MEAN_STD", stats(8, 0, 1), stats(7, 0, 1));
  write_safetensors(dir + "/policy_postprocessor_step_0_unnormalizer_processor.safetensors",
                    {{"action.mean", vec(std::vector<float>(7, 0.0f))}});
  const std::string msg = error_text([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(msg.find("policy_postprocessor_step_0_unnormalizer_processor.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("action.std"), std::string::npos) << msg;
}

TEST(LeRobotNormalizer, UnknownModeNamesTheField) {
  const std::string dir = copy_bundle("tiny-pi0", "lerobot_mode", [](Tensors&) {});
  write_lerobot_processors(dir, "MEAN_STD", stats(8, 0, 1), stats(7, 0, 1), false);
  auto j = nlohmann::json::parse(std::ifstream(dir + "/policy_preprocessor.json"));
  j["steps"][6]["config"]["norm_map"]["STATE"] = "Z_SCORE";
  std::ofstream(dir + "/policy_preprocessor.json") << j.dump();
  const std::string msg = error_text([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(msg.find("policy_preprocessor.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("steps[6].config.norm_map.STATE"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Z_SCORE"), std::string::npos) << msg;
}

TEST(LeRobotNormalizer, InferAndInspectOnALeRobotDirectory) {
  const std::string dir = copy_bundle("tiny-pi0", "lerobot_cli", [&](Tensors& ts) {
    for (auto& [n, t] : ts) n = old_name(n);
  });
  write_lerobot_processors(dir, "MEAN_STD", stats(8, 0.05f, 0.5f), stats(7, -0.1f, 0.8f));
  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  test::CliRun r = test::run_cli("infer --backend reference --checkpoint " + dir + " --robot libero --image image=" + s +
                                     "/base.png --image wrist_image=" + s +
                                     "/wrist.png --state 0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt 'pick up' --seed 1 --json",
                                 true);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("normaliser: LeRobot policy_preprocessor.json"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["actions"][0].size(), 7u);
  r = test::run_cli("inspect " + dir);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("key layout   transformers < 4.52"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("normaliser   LeRobot policy_preprocessor.json + policy_postprocessor.json (observation.state "
                       "MEAN_STD, action MEAN_STD)"),
            std::string::npos)
      << r.out;
}

TEST(LeRobotNormalizer, RelativeActionsAreRefusedNamingTheStep) {
  const std::string dir = copy_bundle("tiny-pi0", "lerobot_relative", [](Tensors&) {});
  write_lerobot_processors(dir, "MEAN_STD", stats(8, 0, 1), stats(7, 0, 1));
  auto j = nlohmann::json::parse(std::ifstream(dir + "/policy_preprocessor.json"));
  j["steps"][5]["config"]["enabled"] = true;
  std::ofstream(dir + "/policy_preprocessor.json") << j.dump();
  const std::string msg = error_text([&] { Policy::load(dir, {.robot = "libero", .backend = "reference"}); });
  EXPECT_NE(msg.find("relative actions"), std::string::npos) << msg;
  EXPECT_NE(msg.find("steps[5].config.enabled"), std::string::npos) << msg;
}

TEST(LeRobotNormalizer, StateBeyondFloat32IsRefused) {
  LeRobotFeatureNorm f{.key = "observation.state", .mode = LeRobotNormMode::MeanStd, .a = {0, 0}, .b = {1, 1},
                       .source = "stats.safetensors"};
  EXPECT_NEAR(f.normalize({2.0, -1.0})[0], 2.0, 1e-6);
  const std::string msg = error_text([&] { f.normalize({1e300, 0}); });
  EXPECT_NE(msg.find("observation.state[0]"), std::string::npos) << msg;
}
