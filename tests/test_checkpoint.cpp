// Checkpoint directories: config parsing, key conventions, and the complete-set check that
// reports every missing, unexpected or wrongly shaped tensor by name in one message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "golden_dir.h"
#include "model/checkpoint.h"
#include "model/random_checkpoint.h"
#include "model/layout.h"
#include "pi0/error.h"
#include "temp_dir.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& name) { return pi0::test::temp_dir(name); }

using test::golden;

// Copies a checkpoint, letting `edit` change the list of (name, tensor) pairs on the way.
std::string rewrite(const std::string& src, const std::string& name,
                    const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  std::string dir = fresh_dir(name);
  fs::copy_file(src + "/config.json", dir + "/config.json");
  auto f = SafeTensorsFile::open(src + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& e : f->entries()) ts.emplace_back(e.name, f->tensor(e));
  edit(ts);
  write_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

std::string error_of(const std::string& dir) {
  try {
    open_checkpoint(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kQ0 = "paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.q_proj.weight";

}  // namespace

TEST(Checkpoint, GoldenCheckpointsOpen) {
  for (auto [dir, kind, count] : {std::tuple{"tiny_pi0", false, 89}, {"tiny_pi05", true, 92}, {"tiny_pi0_bf16", false, 89}}) {
    Checkpoint ck = open_checkpoint(golden(dir));
    EXPECT_EQ(ck.config.pi05, kind) << dir;
    EXPECT_EQ(static_cast<int>(ck.tensors.size() + ck.ignored.size()), count) << dir;
    EXPECT_EQ(ck.config.vision.num_patches, 4);
    EXPECT_EQ(ck.config.prefix_len(), kind ? 72 : 34);
  }
  EXPECT_EQ(open_checkpoint(golden("tiny_pi0_bf16")).at(kQ0).dtype(), DType::BF16);
}

TEST(Checkpoint, FullSizeLayoutsMatchOpenpi) {
  auto count = [](const std::string& preset) {
    auto layout = checkpoint_layout(model_preset(preset));
    int64_t params = 0;
    for (const auto& t : layout) params += shape_numel(t.shape);
    return std::pair<size_t, int64_t>(layout.size(), params);
  };
  auto [n0, p0] = count("pi0");
  auto [n5, p5] = count("pi05");
  EXPECT_EQ(n0, 777u);
  EXPECT_EQ(n5, 812u);
  EXPECT_NEAR(static_cast<double>(p0), 3.5e9, 0.1e9);  // 3.24 B used + the unused 0.26 B expert lm_head
  EXPECT_GT(p5, p0);
}

TEST(Checkpoint, RandomCheckpointRoundTrips) {
  for (auto preset : {"tiny-pi0", "tiny-pi05"}) {
    for (DType dt : {DType::F32, DType::BF16}) {
      std::string dir = fresh_dir(std::string(preset) + dtype_name(dt));
      write_random_checkpoint(dir, model_preset(preset), {.dtype = dt, .seed = 3});
      Checkpoint ck = open_checkpoint(dir);
      EXPECT_EQ(ck.config.pi05, std::string(preset) == "tiny-pi05");
      EXPECT_EQ(ck.at(kQ0).dtype(), dt);
      EXPECT_EQ(ck.config.action_dim, 32);
    }
  }
}

TEST(Checkpoint, ReportsMissingExtraAndWronglyShapedTogether) {
  std::string dir = rewrite(golden("tiny_pi0"), "bad_set", [](auto& ts) {
    std::erase_if(ts, [](auto& p) { return p.first == "action_out_proj.bias" || p.first == kQ0; });
    ts.emplace_back("something.extra", Tensor::zeros(DType::F32, {2}));
    for (auto& [n, t] : ts)
      if (n == "state_proj.weight") t = Tensor::zeros(DType::F32, {32, 9});
  });
  std::string msg = error_of(dir);
  EXPECT_NE(msg.find("4 problem"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing tensor action_out_proj.bias [8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing tensor " + kQ0 + " [64, 64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected tensor something.extra [2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("state_proj.weight has shape [32, 9], expected [32, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(Checkpoint, IntegerWeightsAreRefused) {
  std::string dir = rewrite(golden("tiny_pi0"), "int_w", [](auto& ts) {
    for (auto& [n, t] : ts)
      if (n == "action_in_proj.bias") t = t.to(DType::I32);
  });
  EXPECT_NE(error_of(dir).find("action_in_proj.bias has dtype I32"), std::string::npos);
}

TEST(Checkpoint, AcceptsLeRobotPrefixAndEmbedTokensName) {
  std::string dir = rewrite(golden("tiny_pi0"), "lerobot", [](auto& ts) {
    for (auto& [n, t] : ts) {
      if (n == "paligemma_with_expert.paligemma.lm_head.weight")
        n = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight";
      n = "model." + n;
    }
  });
  Checkpoint ck = open_checkpoint(dir);
  EXPECT_TRUE(ck.lerobot_prefix);
  EXPECT_EQ(ck.at("paligemma_with_expert.paligemma.lm_head.weight").shape(), (Shape{384, 64}));
}

TEST(Checkpoint, ReadsShardsThroughTheIndex) {
  std::string dir = fresh_dir("sharded");
  fs::copy_file(golden("tiny_pi0/config.json"), dir + "/config.json");
  auto f = SafeTensorsFile::open(golden("tiny_pi0/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> a, b;
  std::string index = R"({"metadata": {}, "weight_map": {)";
  for (size_t i = 0; i < f->entries().size(); ++i) {
    const auto& e = f->entries()[i];
    (i % 2 ? a : b).emplace_back(e.name, f->tensor(e));
    index += (i ? "," : "") + ("\"" + e.name + "\": \"" + (i % 2 ? "a.safetensors" : "b.safetensors") + "\"");
  }
  index += "}}";
  write_safetensors(dir + "/a.safetensors", a);
  write_safetensors(dir + "/b.safetensors", b);
  std::ofstream(dir + "/model.safetensors.index.json") << index;
  Checkpoint ck = open_checkpoint(dir);
  EXPECT_EQ(ck.files.size(), 2u);
  EXPECT_EQ(ck.tensors.size(), 88u);
}

TEST(Checkpoint, ConfigContradictingTensorsNamesTheField) {
  std::string dir = fresh_dir("contradict");
  fs::copy_file(golden("tiny_pi0/model.safetensors"), dir + "/model.safetensors");
  std::ifstream in(golden("tiny_pi05/config.json"));
  std::string cfg((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir + "/config.json") << cfg;
  std::string msg = error_of(dir);
  EXPECT_NE(msg.find("pi05"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;

  // Dimensions that disagree with the stored shapes are reported per tensor.
  std::string d2 = fresh_dir("contradict2");
  fs::copy_file(golden("tiny_pi0/model.safetensors"), d2 + "/model.safetensors");
  std::ifstream in2(golden("tiny_pi0/config.json"));
  std::string c2((std::istreambuf_iterator<char>(in2)), {});
  auto pos = c2.find("\"mlp_dim\": 96");
  ASSERT_NE(pos, std::string::npos);
  c2.replace(pos, 13, "\"mlp_dim\": 80");
  std::ofstream(d2 + "/config.json") << c2;
  msg = error_of(d2);
  EXPECT_NE(msg.find("mlp.gate_proj.weight has shape [96, 64], expected [80, 64]"), std::string::npos) << msg;
}

TEST(Config, ParsesArchitectureAndRefusesInconsistency) {
  std::ifstream in(golden("tiny_pi05/config.json"));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  ModelConfig c = parse_config_json(text, "x/config.json");
  c.validate();
  EXPECT_TRUE(c.pi05);
  EXPECT_TRUE(c.expert.adarms);
  EXPECT_EQ(c.suffix_len(), 6);
  auto err = [](const std::string& t) {
    try {
      parse_config_json(t, "cfg.json").validate("cfg.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = text;
    auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
  };
  EXPECT_NE(err("{not json").find("invalid JSON"), std::string::npos);
  EXPECT_NE(err(with("\"prefix_len\": 72", "\"prefix_len\": 70")).find("architecture.prefix_len"), std::string::npos);
  EXPECT_NE(err(with("\"num_kv_heads\": 1", "\"num_kv_heads\": 3")).find("num_kv_heads"), std::string::npos);
  EXPECT_NE(err(with("\"gemma_mlp\": \"gelu_tanh\"", "\"gemma_mlp\": \"relu\"")).find("unsupported activation"), std::string::npos);
  EXPECT_NE(err(with("\"action_dim\": 8,\n  \"action_horizon\"", "\"action_dim\": 9,\n  \"action_horizon\"")).find("contradicts"),
            std::string::npos);
  EXPECT_NE(err(with("\"depth\": 2,\n      \"num_heads\": 4,\n      \"num_kv_heads\": 1,\n      \"head_dim\": 16,\n      \"mlp_dim\": 64",
                     "\"depth\": 3,\n      \"num_heads\": 4,\n      \"num_kv_heads\": 1,\n      \"head_dim\": 16,\n      \"mlp_dim\": 64"))
                .find("expert.depth"),
            std::string::npos);
}

TEST(Config, OpenpiAndLeRobotConfigsUseTheNamedVariants) {
  ModelConfig c = parse_config_json(R"({"action_dim": 32, "action_horizon": 10, "paligemma_variant": "gemma_2b",
      "action_expert_variant": "gemma_300m", "precision": "bfloat16"})", "openpi.json");
  EXPECT_EQ(c.vlm.width, 2048);
  EXPECT_EQ(c.expert.mlp_dim, 4096);
  EXPECT_EQ(c.vision.depth, 27);
  EXPECT_EQ(c.action_horizon, 10);
  ModelConfig l = parse_config_json(R"({"type": "pi05", "chunk_size": 50, "max_action_dim": 32,
      "num_inference_steps": 5, "tokenizer_max_length": 200})", "lerobot.json");
  EXPECT_TRUE(l.pi05);
  EXPECT_EQ(l.num_steps, 5);
  EXPECT_EQ(l.max_token_len, 200);
  l.validate();
  EXPECT_THROW(parse_config_json(R"({"paligemma_variant": "gemma_7b"})", "x.json"), Error);
  EXPECT_THROW(parse_config_json(R"({"paligemma_variant": "custom"})", "x.json"), Error);
}
