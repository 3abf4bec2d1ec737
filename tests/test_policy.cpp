// The whole policy: a make-checkpoint bundle (weights + tokenizer + norm stats) through
// Policy::load / prepare / infer, checked against the pieces it is made of; bad input gives
// errors that name the problem; the CLI subcommands on the same bundle.
#include <gtest/gtest.h>

#include "golden_dir.h"
#include "bundle_util.h"
#include "policy_obs.h"
#include "test_util.h"
#include <sentencepiece_processor.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "model/random_checkpoint.h"
#include "io/safetensors.h"
#include "pi0/error.h"
#include "policy/demo_assets.h"
#include "policy/image.h"
#include "policy/normalize.h"
#include "policy/policy.h"
#include "policy/tokenizer.h"
#include "temp_dir.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

using test::bundle;
using namespace pi0::test;  // policy_obs.h

using pi0::test::error_of;

using pi0::test::CliRun;
CliRun run(const std::string& args) { return pi0::test::run_cli(args); }

PolicyOptions opts(const std::string& robot) { return {.robot = robot, .backend = "reference"}; }

// The tiny π0.5 bundle as openpi's JAX->PyTorch conversion leaves a checkpoint: config.json
// without discrete_state_input (neither at the top nor in `architecture`); or stating `stated`.
std::string pi05_bundle_stating(std::optional<bool> stated) {
  const std::string name = !stated ? "pi05-unstated" : *stated ? "pi05-stated-true" : "pi05-stated-false";
  static std::map<std::string, std::string> dirs;
  if (auto it = dirs.find(name); it != dirs.end()) return it->second;
  const std::string src = bundle("tiny-pi05");
  const std::string dir = test::temp_dir(name);
  fs::copy(src, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ifstream in(src + "/config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_TRUE(j.contains("discrete_state_input") && j["architecture"].contains("discrete_state_input"));
  j.erase("discrete_state_input");
  j["architecture"].erase("discrete_state_input");
  if (stated) j["discrete_state_input"] = *stated;
  std::ofstream(dir + "/config.json") << j.dump(2);
  return dirs[name] = dir;
}

// The prompt text the model receives: the pieces of the real (masked-in) tokens, joined.
std::string prompt_seen(const std::string& dir, const PreparedObservation& prep) {
  PromptTokenizer tok(dir + "/tokenizer.model");
  std::string text;
  for (int64_t i = 0; i < prep.inputs.tokens.numel(); ++i)
    if (prep.inputs.token_mask.data<uint8_t>()[i]) text += tok.piece(prep.inputs.tokens.data<int32_t>()[i]);
  return text;
}

// Whether the tokens `p` gives the model for `robot`'s observation carry the state. Without it
// they must be exactly the π0-format prompt; with it, openpi's "Task: ..., State: ...;" text.
bool state_in_tokens(const Policy& p, const std::string& dir, const std::string& robot) {
  const Dict o = obs_for(robot);
  const PreparedObservation prep = p.prepare(o);
  const std::string text = prompt_seen(dir, prep);
  const bool has_state = text.find("State:") != std::string::npos;
  if (!has_state) {
    const TokenizedPrompt plain = PromptTokenizer(dir + "/tokenizer.model")
                                      .tokenize(*o.at("prompt").get_if<std::string>(), p.config().max_token_len);
    for (int i = 0; i < p.config().max_token_len; ++i)
      EXPECT_EQ(prep.inputs.tokens.data<int32_t>()[i], plain.ids[i]) << robot << " token " << i << ": " << text;
  } else {
    EXPECT_NE(text.find("Task:"), std::string::npos) << robot << ": " << text;
    EXPECT_NE(text.find("Action:"), std::string::npos) << robot << ": " << text;
  }
  return has_state;
}

}  // namespace

TEST(DemoAssets, TokenizerFollowsPaligemmaConventions) {
  const std::string dir = bundle("tiny-pi0");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(dir + "/tokenizer.model").ok());
  EXPECT_EQ(sp.GetPieceSize(), model_preset("tiny-pi0").vlm.vocab_size);
  EXPECT_EQ(sp.pad_id(), 0);
  EXPECT_EQ(sp.eos_id(), 1);
  EXPECT_EQ(sp.bos_id(), 2);
  EXPECT_EQ(sp.unk_id(), 3);
  EXPECT_EQ(sp.PieceToId("\n"), 4);
  std::vector<int> ids;
  ASSERT_TRUE(sp.Encode("\n", &ids).ok());
  EXPECT_EQ(ids, std::vector<int>{4});
  ASSERT_TRUE(sp.Encode("State: 128", &ids).ok());
  int digits = 0;
  for (int id : ids) digits += sp.IdToPiece(id).size() == 1 && std::isdigit(static_cast<unsigned char>(sp.IdToPiece(id)[0]));
  EXPECT_EQ(digits, 3);  // digits split
  ASSERT_TRUE(sp.Encode("café ☕", &ids).ok());
  for (int id : ids) EXPECT_NE(id, sp.unk_id());  // byte fallback, never <unk>
  // Training is deterministic: a second bundle gets the same model.
  EXPECT_EQ(train_demo_tokenizer(512), train_demo_tokenizer(512));
  for (const char* asset : {"trossen", "droid", "physical-intelligence/libero", "lerobot/aloha_sim_transfer_cube_human"})
    EXPECT_TRUE(fs::exists(dir + "/assets/" + asset + "/norm_stats.json")) << asset;
}

TEST(Policy, LiberoPi0PrepareIsOpenpisInputPipeline) {
  const std::string dir = bundle("tiny-pi0");
  auto p = Policy::load(dir, opts("libero"));
  const ModelConfig& c = p->config();
  PreparedObservation prep = p->prepare(libero_obs());
  const ModelInputs& in = prep.inputs;
  ASSERT_EQ(in.images.size(), 3u);
  EXPECT_EQ(in.images[0].shape(), (Shape{1, 3, c.image_height, c.image_width}));
  EXPECT_EQ(in.image_masks[0].data<uint8_t>()[0], 1);
  EXPECT_EQ(in.image_masks[1].data<uint8_t>()[0], 1);
  EXPECT_EQ(in.image_masks[2].data<uint8_t>()[0], 0);
  for (int64_t i = 0; i < in.images[2].numel(); ++i) ASSERT_EQ(in.images[2].data<float>()[i], -1.0f);
  // Base camera: Pillow resize-with-pad of the uint8 image, then x/255·2−1.
  const Tensor want = image_to_model_input(
      resize_with_pad_pillow(image_from_tensor(libero_obs()["observation/image"].get_if<Tensor>()[0], "x"),
                             c.image_height, c.image_width));
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(in.images[0].data<float>()[i], want.data<float>()[i]);
  // π0 format tokens.
  PromptTokenizer tok(dir + "/tokenizer.model");
  const TokenizedPrompt tp = tok.tokenize("pick up the red block", c.max_token_len);
  for (int i = 0; i < c.max_token_len; ++i) {
    ASSERT_EQ(in.tokens.data<int32_t>()[i], tp.ids[i]);
    ASSERT_EQ(in.token_mask.data<uint8_t>()[i], tp.mask[i]);
  }
  // z-score state, zero-padded to the action dim.
  const NormStats s = load_norm_stats(dir + "/assets/physical-intelligence/libero/norm_stats.json").at("state");
  const auto raw = std::vector<double>{0.1, -0.2, 0.3, 0.05, 0.0, -0.4, 0.02, -0.02};
  for (int i = 0; i < c.action_dim; ++i) {
    const double z = i < 8 ? (raw[i] - s.mean[i]) / (s.std[i] + 1e-6) : 0.0;
    EXPECT_EQ(in.state.data<float>()[i], static_cast<float>(z)) << i;
  }
  EXPECT_FALSE(in.noise.defined() && in.noise.raw());
}

TEST(Policy, Pi05PutsTheQuantileStateIntoThePrompt) {
  const std::string dir = bundle("tiny-pi05");
  auto p = Policy::load(dir, opts("droid"));
  const Dict o = droid_obs();
  PreparedObservation prep = p->prepare(o);
  const NormStats s = load_norm_stats(dir + "/assets/droid/norm_stats.json").at("state");
  std::vector<double> q;
  const std::vector<double> raw = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9};
  for (int i = 0; i < 8; ++i) q.push_back((raw[i] - s.q01[i]) / (s.q99[i] - s.q01[i] + 1e-6) * 2.0 - 1.0);
  PromptTokenizer tok(dir + "/tokenizer.model");
  const TokenizedPrompt tp = tok.tokenize("open_the drawer", p->config().max_token_len, &q);
  EXPECT_NE(tok.format("open_the drawer", &q).find("State: "), std::string::npos);
  for (int i = 0; i < p->config().max_token_len; ++i) ASSERT_EQ(prep.inputs.tokens.data<int32_t>()[i], tp.ids[i]) << i;
  const Dict r = p->infer(o, {.seed = 5});
  EXPECT_EQ(r.at("actions").get_if<Tensor>()->shape(), (Shape{p->config().action_horizon, 8}));
}

// openpi's converted checkpoints do not say whether the π0.5 prompt carries the state; its train
// configs do (pi05_libero: no; pi05_droid, pi05_aloha: yes), and so does the robot preset here.
TEST(PromptFormat, UnstatedConfigFollowsTheRobotsTrainConfig) {
  const std::string dir = pi05_bundle_stating(std::nullopt);
  struct Case { const char* robot; bool state; const char* train_config; };
  for (const Case& k : {Case{"libero", false, "pi05_libero"}, Case{"droid", true, "pi05_droid"},
                        Case{"aloha", true, "pi05_aloha"}}) {
    auto p = Policy::load(dir, opts(k.robot));
    EXPECT_FALSE(p->config().discrete_state_input.has_value());
    EXPECT_EQ(state_in_tokens(*p, dir, k.robot), k.state) << k.robot;
    EXPECT_EQ(p->prompt_format().state_in_prompt, k.state) << k.robot;
    const std::string line = p->prompt_format().describe();
    EXPECT_NE(line.find(std::string("robot preset ") + k.robot + " (openpi's " + k.train_config + ")"), std::string::npos)
        << line;
    EXPECT_NE(line.find(k.state ? "with the state in the prompt" : "without the state"), std::string::npos) << line;
  }
  // openpi has no π0.5 ALOHA-sim config: Pi0Config's default (state in the prompt), said as such.
  auto sim = Policy::load(dir, opts("aloha_sim"));
  EXPECT_TRUE(sim->prompt_format().state_in_prompt);
  EXPECT_NE(sim->prompt_format().describe().find("openpi's default for pi0.5"), std::string::npos)
      << sim->prompt_format().describe();
}

TEST(PromptFormat, ConfigJsonOverRobotAndTheFlagOverBoth) {
  // config.json says it: it wins over the preset, and the load line names what it overrides.
  auto stated = Policy::load(pi05_bundle_stating(true), opts("libero"));
  EXPECT_TRUE(state_in_tokens(*stated, pi05_bundle_stating(true), "libero"));
  std::string line = stated->prompt_format().describe();
  EXPECT_NE(line.find(pi05_bundle_stating(true) + "/config.json"), std::string::npos) << line;
  EXPECT_NE(line.find("overrides robot preset libero (openpi's pi05_libero), which would leave the state out"),
            std::string::npos) << line;
  auto stated_false = Policy::load(pi05_bundle_stating(false), opts("droid"));
  EXPECT_FALSE(state_in_tokens(*stated_false, pi05_bundle_stating(false), "droid"));
  // --discrete-state-input over both.
  const std::string dir = pi05_bundle_stating(std::nullopt);
  for (bool flag : {true, false})
    for (const char* robot : {"libero", "droid"}) {
      PolicyOptions o = opts(robot);
      o.discrete_state_input = flag;
      auto p = Policy::load(dir, o);
      EXPECT_EQ(state_in_tokens(*p, dir, robot), flag) << robot << " --discrete-state-input " << flag;
      line = p->prompt_format().describe();
      EXPECT_NE(line.find(std::string("from --discrete-state-input ") + (flag ? "true" : "false")), std::string::npos)
          << line;
    }
  PolicyOptions o = opts("droid");
  o.discrete_state_input = false;
  auto over_config = Policy::load(pi05_bundle_stating(true), o);
  EXPECT_FALSE(state_in_tokens(*over_config, pi05_bundle_stating(true), "droid"));
  // π0 never puts the state in the prompt: asking for it is an error naming the flag.
  o = opts("libero");
  o.discrete_state_input = true;
  const std::string e = error_of([&] { Policy::load(bundle("tiny-pi0"), o); });
  EXPECT_NE(e.find("--discrete-state-input"), std::string::npos) << e;
  o.discrete_state_input = false;
  EXPECT_EQ(Policy::load(bundle("tiny-pi0"), o)->prompt_format().describe().rfind("pi0 (", 0), 0u);
}

TEST(PromptFormat, CustomRobotJsonSaysIt) {
  const std::string dir = pi05_bundle_stating(std::nullopt);
  const auto robot_json = [](const std::string& name, const std::string& extra) {
    const std::string path = test::temp_file(name + ".json");
    std::ofstream(path) << R"({"name": ")" << name << R"(", "asset_id": "physical-intelligence/libero",
        "cameras": [{"model": "base_0_rgb", "key": "observation/image"},
                    {"model": "left_wrist_0_rgb", "key": "observation/wrist_image"}],
        "state": [{"key": "observation/state", "size": 8}], "action_dim": 7)" << extra << "}";
    return path;
  };
  // Same keys as LIBERO, so libero_obs() fits; the JSON decides against Pi0Config's default.
  const std::string off = robot_json("arm_off", R"(, "discrete_state_input": false)");
  auto p = Policy::load(dir, opts(off));
  EXPECT_FALSE(state_in_tokens(*p, dir, "libero"));
  EXPECT_NE(p->prompt_format().describe().find("from robot config " + off), std::string::npos)
      << p->prompt_format().describe();
  auto q = Policy::load(dir, opts(robot_json("arm_on", R"(, "discrete_state_input": true)")));
  EXPECT_TRUE(state_in_tokens(*q, dir, "libero"));
  const std::string bad = robot_json("arm_bad", R"(, "discrete_state_input": "no")");
  const std::string e = error_of([&] { Policy::load(dir, opts(bad)); });
  EXPECT_NE(e.find("discrete_state_input"), std::string::npos) << e;
  EXPECT_NE(e.find(bad), std::string::npos) << e;
}

// openpi: InjectDefaultPrompt fills only an absent "prompt"; a present None reaches TokenizePrompt,
// which raises. So None is an error naming the field, even when a default prompt is set.
TEST(Policy, NonePromptIsAnErrorNotTheDefault) {
  auto p = Policy::load(bundle("tiny-pi0"), {.robot = "libero", .default_prompt = "default task", .backend = "reference"});
  Dict o = libero_obs();
  o["prompt"] = Value();
  const std::string e = error_of([&] { p->infer(o, {.seed = 1}); });
  EXPECT_NE(e.find("field 'prompt'"), std::string::npos) << e;
  EXPECT_NE(e.find("None"), std::string::npos) << e;
  o.erase("prompt");
  EXPECT_EQ(p->prepare(o).prompt, "default task");  // absent: the default, as openpi
  // aloha_sim's own default prompt ("Transfer cube") does not apply to None either.
  auto sim = Policy::load(bundle("tiny-pi0"), opts("aloha_sim"));
  Dict a = aloha_obs();
  a["prompt"] = Value();
  EXPECT_NE(error_of([&] { sim->prepare(a); }).find("field 'prompt'"), std::string::npos);
}

TEST(Policy, InferIsModelThenOpenpisOutputPipeline) {
  const std::string dir = bundle("tiny-pi0");
  auto p = Policy::load(dir, opts("libero"));
  const ModelConfig& c = p->config();
  Dict o = libero_obs();
  o["noise"] = Value(noise_for(c, 1));
  const Dict r = p->infer(o);
  const Tensor& act = *r.at("actions").get_if<Tensor>();
  ASSERT_EQ(act.dtype(), DType::F64);
  ASSERT_EQ(act.shape(), (Shape{c.action_horizon, 7}));
  EXPECT_TRUE(r.at("policy_timing").get_if<Dict>()->at("infer_ms").is<double>());

  // The same inputs straight into the model, then unnormalise + delta (first 6 dims) + slice.
  auto model = Pi0Model::load(dir, "reference");
  PreparedObservation prep = p->prepare(o);
  const Tensor raw = model->sample_actions(prep.inputs);
  const NormStatsFile ns = load_norm_stats(dir + "/assets/physical-intelligence/libero/norm_stats.json");
  const NormStats &sa = ns.at("actions"), &ss = ns.at("state");
  for (int h = 0; h < c.action_horizon; ++h)
    for (int i = 0; i < 7; ++i) {
      double x = raw.data<float>()[h * c.action_dim + i] * (sa.std[i] + 1e-6) + sa.mean[i];
      if (i < 6) x += prep.inputs.state.data<float>()[i] * (ss.std[i] + 1e-6) + ss.mean[i];
      EXPECT_NEAR(act.data<double>()[h * 7 + i], x, 1e-9) << h << "," << i;
    }
  // Reproducible: same noise, same actions; a seed too.
  const Dict r2 = p->infer(o);
  for (int64_t i = 0; i < act.numel(); ++i) ASSERT_EQ(act.data<double>()[i], r2.at("actions").get_if<Tensor>()->data<double>()[i]);
  Dict o2 = libero_obs();
  const Tensor a1 = *p->infer(o2, {.seed = 9}).at("actions").get_if<Tensor>();
  const Tensor a2 = *p->infer(o2, {.seed = 9}).at("actions").get_if<Tensor>();
  const Tensor a3 = *p->infer(o2, {.seed = 10}).at("actions").get_if<Tensor>();
  bool differ = false;
  for (int64_t i = 0; i < a1.numel(); ++i) {
    ASSERT_EQ(a1.data<double>()[i], a2.data<double>()[i]);
    differ |= a1.data<double>()[i] != a3.data<double>()[i];
  }
  EXPECT_TRUE(differ);
}

TEST(Policy, ConcurrentInferMatchesSerial) {
  auto p = Policy::load(bundle("tiny-pi0"), opts("libero"));
  Dict o = libero_obs();
  o["noise"] = Value(noise_for(p->config(), 2));
  const Tensor want = *p->infer(o).at("actions").get_if<Tensor>();
  std::vector<Tensor> got(2);
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) ts.emplace_back([&, t] { got[t] = *p->infer(o).at("actions").get_if<Tensor>(); });
  for (auto& t : ts) t.join();
  for (const Tensor& g : got)
    for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(g.data<double>()[i], want.data<double>()[i]);
}

TEST(Policy, AlohaMetadataAndWidth) {
  auto p = Policy::load(bundle("tiny-pi0"), opts("aloha"));
  EXPECT_EQ(p->metadata().at("reset_pose").get_if<List>()->size(), 6u);
  const Dict o = aloha_obs();
  PreparedObservation prep = p->prepare(o);
  EXPECT_EQ(prep.inputs.image_masks[1].data<uint8_t>()[0], 0);  // missing wrists are masked
  EXPECT_EQ(prep.inputs.image_masks[2].data<uint8_t>()[0], 0);
  const Tensor a = *p->infer(o, {.seed = 1}).at("actions").get_if<Tensor>();
  EXPECT_EQ(a.shape(), (Shape{p->config().action_horizon, 14}));
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_TRUE(std::isfinite(a.data<double>()[i]));
  EXPECT_TRUE(Policy::load(bundle("tiny-pi0"), opts("droid"))->metadata().empty());
}

TEST(Policy, BadInputNamesTheProblem) {
  const std::string dir = bundle("tiny-pi0");
  auto p = Policy::load(dir, opts("libero"));
  Dict o = libero_obs();
  o.erase("prompt");
  EXPECT_NE(error_of([&] { p->infer(o); }).find("prompt"), std::string::npos);
  auto pd = Policy::load(dir, {.robot = "libero", .default_prompt = "default task", .backend = "reference"});
  EXPECT_EQ(pd->prepare(o).prompt, "default task");
  o = libero_obs();
  o["noise"] = Value(Tensor::zeros(DType::F32, {3, 3}));
  std::string e = error_of([&] { p->infer(o); });
  EXPECT_NE(e.find("noise"), std::string::npos) << e;
  EXPECT_NE(e.find("[3, 3]"), std::string::npos) << e;
  o = libero_obs();
  o.erase("observation/image");
  EXPECT_NE(error_of([&] { p->infer(o); }).find("observation/image"), std::string::npos);
  o = libero_obs();
  o["observation/state"] = Value(f64({1, 2, 3, 4, 5, 6, 7, NAN}));
  EXPECT_NE(error_of([&] { p->infer(o); }).find("observation/state[7]"), std::string::npos);

  // Missing files, each named.
  const std::string bare = test::temp_dir("bare");
  fs::copy_file(dir + "/config.json", bare + "/config.json");
  fs::copy_file(dir + "/model.safetensors", bare + "/model.safetensors");
  e = error_of([&] { Policy::load(bare, opts("libero")); });
  EXPECT_NE(e.find(bare + "/tokenizer.model"), std::string::npos) << e;
  fs::copy_file(dir + "/tokenizer.model", bare + "/tokenizer.model");
  e = error_of([&] { Policy::load(bare, opts("libero")); });
  EXPECT_NE(e.find(bare + "/assets/physical-intelligence/libero/norm_stats.json"), std::string::npos) << e;
  // Norm stats narrower than the robot's state.
  const std::string narrow = test::temp_file("narrow.json");
  std::ofstream(narrow) << R"({"norm_stats": {"state": {"mean": [0, 0, 0], "std": [1, 1, 1]},
                                              "actions": {"mean": [0], "std": [1]}}})";
  e = error_of([&] { Policy::load(bare, {.robot = "libero", .norm_stats_path = narrow, .backend = "reference"}); });
  EXPECT_NE(e.find("narrower"), std::string::npos) << e;
  EXPECT_NE(e.find(narrow), std::string::npos) << e;
  // A robot wider than the model: ALOHA's 14 dims on the 8-dim golden model.
  const std::string g = test::golden_dir();
  e = error_of([&] {
    Policy::load(g + "/tiny_pi0", {.robot = "aloha", .tokenizer_path = g + "/tokenizer.model",
                                   .norm_stats_path = dir + "/assets/trossen", .backend = "reference"});
  });
  EXPECT_NE(e.find("wider state"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { Policy::load(dir, opts("franka")); }).find("unknown robot"), std::string::npos);
}

TEST(Policy, GoldenModelWithExplicitTokenizerAndStats) {
  // The golden tiny π0 (8-dim, 28×28, vocab 384) with the golden tokenizer: LIBERO fits exactly.
  const std::string g = test::golden_dir();
  auto p = Policy::load(g + "/tiny_pi0", {.robot = "libero", .tokenizer_path = g + "/tokenizer.model",
                                          .norm_stats_path = bundle("tiny-pi0") + "/assets/physical-intelligence/libero",
                                          .backend = "reference"});
  const Tensor a = *p->infer(libero_obs(), {.seed = 2}).at("actions").get_if<Tensor>();
  EXPECT_EQ(a.shape(), (Shape{6, 7}));
}

TEST(PolicyCli, TokenizeMatchesGoldenCase) {
  const std::string g = test::golden_dir();
  CliRun r = run("tokenize --tokenizer " + g + "/tokenizer.model --prompt 'Place the bowl_on_the table' --max-len 16 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"].get<std::vector<int>>(),
            (std::vector<int>{2, 372, 335, 336, 343, 332, 263, 325, 277, 263, 261, 336, 345, 307, 4, 0}));
  EXPECT_EQ(j["mask"].back(), false);
  r = run("tokenize --tokenizer " + g + "/tokenizer.model --prompt 'move the cup' --pi05 --max-len 48 --json "
          "--state 0,-1,1,0.5,-0.5,0.9900000095367432,-0.9990000128746033,0.0078125");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["text"], "Task: move the cup, State: 128 0 255 192 64 254 0 129;\nAction: ");
  r = run("tokenize --tokenizer /nonexistent.model --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent.model"), std::string::npos) << r.out;
  EXPECT_NE(run("tokenize --tokenizer " + g + "/tokenizer.model --prompt x --pi05").code, 0);
}

TEST(PolicyCli, PreprocessGoldenCase) {
  const std::string g = test::golden_dir();
  const std::string out = test::temp_file("pre.safetensors");
  CliRun r = run("preprocess --case " + g + "/preprocess.safetensors --size 28,28 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto got = SafeTensorsFile::open(out);
  auto want = SafeTensorsFile::open(g + "/preprocess.safetensors");
  for (int i = 0; i < 6; ++i) {
    const Tensor a = got->tensor("image_u8." + std::to_string(i)), b = want->tensor("expect.image_u8_client." + std::to_string(i));
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t k = 0; k < a.numel(); ++k) ASSERT_EQ(a.data<uint8_t>()[k], b.data<uint8_t>()[k]);
    const Tensor img = got->tensor("image." + std::to_string(i));
    EXPECT_EQ(img.shape(), (Shape{3, 28, 28}));
    EXPECT_FLOAT_EQ(img.data<float>()[0], a.data<uint8_t>()[0] / 255.0f * 2.0f - 1.0f);
  }
  r = run("preprocess --case " + g + "/preprocess.safetensors --size 28,28 --resize torch --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  got = SafeTensorsFile::open(out);
  const Tensor a = got->tensor("image.0"), b = want->tensor("expect.image.0");
  for (int64_t k = 0; k < a.numel(); ++k) ASSERT_NEAR(a.data<float>()[k], b.data<float>()[k], 1e-5);
  r = run("preprocess --image /nonexistent.png --size 28,28 --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent.png"), std::string::npos) << r.out;
  EXPECT_NE(run("preprocess --image x.png --size 28 --out " + out).code, 0);
}

TEST(PolicyCli, InferOnTheBundle) {
  const std::string dir = bundle("tiny-pi0");
  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  const std::string base = "infer --backend reference --checkpoint " + dir + " --robot libero --image observation/image=" +
                           s + "/base.png --image wrist_image=" + s + "/wrist.png ";
  // stdout is the JSON alone; the prompt-format line goes to stderr.
  CliRun r = pi0::test::run_cli(base + "--state 0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt 'pick up the red block' --seed 1 --json",
                                true);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("pi0: prompt format: pi0 (the state is a continuous input"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reference backend, precision f32"), std::string::npos) << r.err;  // the precision line
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["actions"].size(), static_cast<size_t>(model_preset("tiny-pi0").action_horizon));
  EXPECT_EQ(j["actions"][0].size(), 7u);
  CliRun again = pi0::test::run_cli(
      base + "--state 0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt 'pick up the red block' --seed 1 --json", true);
  EXPECT_EQ(nlohmann::json::parse(again.out)["actions"], j["actions"]);
  r = run(base + "--state 0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt 'pick up'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("action chunk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inference:"), std::string::npos) << r.out;
  // Errors: state length, NaN state, unknown camera key, missing camera, unreadable image.
  r = run(base + "--state 1,2,3 --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("8 state values"), std::string::npos) << r.out;
  r = run(base + "--state 0,0,0,0,0,0,0,nan --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("observation/state[7]"), std::string::npos) << r.out;
  r = run(base + "--image cam_top=" + s + "/base.png --state 0,0,0,0,0,0,0,0 --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("cam_top"), std::string::npos) << r.out;
  r = run("infer --backend reference --checkpoint " + dir + " --robot libero --image image=" + s +
          "/base.png --state 0,0,0,0,0,0,0,0 --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("observation/wrist_image"), std::string::npos) << r.out;
  const std::string junk = test::temp_file("junk.jpg");
  std::ofstream(junk) << "nope";
  r = run("infer --backend reference --checkpoint " + dir + " --robot libero --image image=" + junk +
          " --image wrist_image=" + s + "/wrist.png --state 0,0,0,0,0,0,0,0 --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(junk), std::string::npos) << r.out;
}

TEST(PolicyCli, PromptFormatLineAndFlag) {
  const std::string dir = pi05_bundle_stating(std::nullopt);
  CliRun r = run("inspect " + dir);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("not stated in config.json"), std::string::npos) << r.out;
  r = run("inspect " + bundle("tiny-pi05"));
  EXPECT_NE(r.out.find("state in the prompt, as config.json says"), std::string::npos) << r.out;

  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  const std::string base = "infer --backend reference --checkpoint " + dir + " --robot libero --image image=" + s +
                           "/base.png --image wrist_image=" + s + "/wrist.png --state 0.1,0.2,0.3,0,0,0,0.04,-0.04 "
                           "--prompt 'pick up the red block' --seed 1 --json";
  CliRun preset = pi0::test::run_cli(base, true);
  ASSERT_EQ(preset.code, 0) << preset.out << preset.err;
  EXPECT_NE(preset.err.find("pi0: prompt format: pi0.5 without the state in the prompt (the prompt as pi0 sees it), "
                            "from robot preset libero (openpi's pi05_libero)"),
            std::string::npos) << preset.err;
  CliRun flag = pi0::test::run_cli(base + " --discrete-state-input true", true);
  ASSERT_EQ(flag.code, 0) << flag.out << flag.err;
  EXPECT_NE(flag.err.find("from --discrete-state-input true"), std::string::npos) << flag.err;
  // Same seed, other prompt tokens: the flag reaches the model.
  EXPECT_NE(nlohmann::json::parse(preset.out)["actions"], nlohmann::json::parse(flag.out)["actions"]);
  r = run(base + " --discrete-state-input maybe");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--discrete-state-input"), std::string::npos) << r.out;

  // tokenize: pi0.5 without the state is the pi0 text; the flag and --state must agree.
  const std::string g = std::string(PI0_GOLDEN_DIR);
  const std::string tok = "tokenize --tokenizer " + g + "/tokenizer.model --prompt 'move the cup' --max-len 16 --json";
  r = run(tok + " --pi05 --discrete-state-input false");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto off = nlohmann::json::parse(r.out);
  EXPECT_EQ(off["state_in_prompt"], false);
  EXPECT_EQ(off["text"], "move the cup\n");
  EXPECT_EQ(off["ids"], nlohmann::json::parse(run(tok).out)["ids"]);
  r = run(tok + " --pi05 --discrete-state-input false --state 0,1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--state"), std::string::npos) << r.out;
  r = run(tok + " --discrete-state-input true");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--pi05"), std::string::npos) << r.out;
}
