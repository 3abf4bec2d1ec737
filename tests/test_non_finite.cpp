// No NaN ever reaches a robot: non-finite weights are refused at load, non-finite inputs on entry,
// and a model whose values overflow inside says where instead of returning NaN actions. Config
// integers that would wrap and epsilons that would divide by zero are refused with their field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "golden_dir.h"
#include "io/safetensors.h"
#include "model/pi0_model.h"
#include "model/replay.h"
#include "pi0/error.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace pi0;
namespace fs = std::filesystem;

namespace {

const std::string kVision = "paligemma_with_expert.paligemma.model.vision_tower.vision_model.";

// A copy of golden tiny_pi0 (as F32) with each named tensor changed by its edit.
using Edit = std::pair<std::string, std::function<void(float*, int64_t)>>;
std::string edited_checkpoint(const std::string& tag, const std::vector<Edit>& edits) {
  const std::string src = test::golden("tiny_pi0"), dir = test::temp_dir(tag);
  fs::copy_file(src + "/config.json", dir + "/config.json");
  auto f = SafeTensorsFile::open(src + "/model.safetensors");
  std::vector<std::pair<std::string, Tensor>> ts;
  int applied = 0;
  for (const auto& e : f->entries()) {
    Tensor t = f->tensor(e).to(DType::F32);
    for (const auto& [name, fn] : edits)
      if (e.name == name) {
        fn(t.data_mut<float>(), t.numel());
        applied++;
      }
    ts.emplace_back(e.name, t);
  }
  EXPECT_EQ(applied, static_cast<int>(edits.size()));
  write_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

Edit set_first(const std::string& name, float v) { return {name, [v](float* d, int64_t) { d[0] = v; }}; }

std::string load_error(const std::string& dir) {
  return test::error_of([&] { Pi0Model::load(dir, "reference"); });
}

// golden tiny_pi0's config.json with `key` (a top-level or architecture.* field, by its exact
// text) replaced.
std::string config_with(const std::string& tag, const std::string& from, const std::string& to) {
  const std::string src = test::golden("tiny_pi0"), dir = test::temp_dir(tag);
  fs::copy_file(src + "/model.safetensors", dir + "/model.safetensors");
  std::ifstream in(src + "/config.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  std::ofstream(dir + "/config.json") << text;
  return dir;
}

}  // namespace

TEST(NonFinite, NanOrInfWeightIsRefusedAtLoadNamingTheTensor) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const std::string name = kVision + "encoder.layers.0.layer_norm1.weight";
    const std::string msg = load_error(edited_checkpoint("nan_w", {set_first(name, bad)}));
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
  }
  // The cpu backend is refused the same checkpoint (the check is in the model, not a backend).
  const std::string dir = edited_checkpoint("nan_w_cpu", {set_first("action_out_proj.bias", NAN)});
  EXPECT_NE(test::error_of([&] { Pi0Model::load(dir, "cpu"); }).find("action_out_proj.bias"), std::string::npos);
}

TEST(NonFinite, OverflowInsideTheModelNamesTheStageAndReturnsNoActions) {
  // Finite weights whose sum overflows float32: patch bias + position embedding = 6e38 = inf in
  // the first patch token, and the LayerNorm after it makes the whole tower output NaN.
  const std::string dir = edited_checkpoint("overflow", {set_first(kVision + "embeddings.patch_embedding.bias", 3e38f),
                                                         set_first(kVision + "embeddings.position_embedding.weight", 3e38f)});
  for (const char* backend : {"reference", "cpu"}) {
    auto model = Pi0Model::load(dir, backend);
    auto cs = SafeTensorsFile::open(test::golden("tiny_pi0/case.safetensors"));
    const ModelInputs in = inputs_from_case(*cs, model->config());
    const std::string msg = test::error_of([&] { model->sample_actions(in); });
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << backend << ": " << msg;
    EXPECT_NE(msg.find("vision tower"), std::string::npos) << backend << ": " << msg;
  }
}

TEST(NonFinite, ExpertOverflowIsAttributedToTheExpert) {
  // The velocity of action dim 0 from weights of 3e38 (finite): its dot product with any
  // non-trivial hidden state is past float32's range.
  const std::string dir = edited_checkpoint(
      "overflow_ex", {{"action_out_proj.weight", [](float* d, int64_t n) { std::fill(d, d + n / 8, 3e38f); }}});
  auto model = Pi0Model::load(dir, "reference");
  auto cs = SafeTensorsFile::open(test::golden("tiny_pi0/case.safetensors"));
  const std::string msg = test::error_of([&] { model->sample_actions(inputs_from_case(*cs, model->config())); });
  EXPECT_NE(msg.find("action expert (denoising step 1"), std::string::npos) << msg;
}

TEST(NonFinite, NonFiniteInputsAreRefusedByName) {
  auto model = Pi0Model::load(test::golden("tiny_pi0"), "reference");
  auto cs = SafeTensorsFile::open(test::golden("tiny_pi0/case.safetensors"));
  ModelInputs in = inputs_from_case(*cs, model->config());
  in.images[1] = in.images[1].to(DType::F32);  // an owned copy to write into
  in.images[1].data_mut<float>()[5] = NAN;
  EXPECT_NE(test::error_of([&] { model->sample_actions(in); }).find("image.left_wrist_0_rgb"), std::string::npos);
  in = inputs_from_case(*cs, model->config());
  in.noise = in.noise.to(DType::F32);
  in.noise.data_mut<float>()[0] = INFINITY;
  EXPECT_NE(test::error_of([&] { model->sample_actions(in); }).find("noise"), std::string::npos);
  in = inputs_from_case(*cs, model->config());
  in.state = in.state.to(DType::F32);
  in.state.data_mut<float>()[3] = NAN;
  EXPECT_NE(test::error_of([&] { model->sample_actions(in); }).find("state"), std::string::npos);
}

TEST(ConfigBounds, NonPositiveEpsilonIsRefused) {
  for (const char* bad : {"-1", "0", "2"}) {
    const std::string dir = config_with("eps", "\"rms_norm_eps\": 1e-06", std::string("\"rms_norm_eps\": ") + bad);
    const std::string msg = load_error(dir);
    EXPECT_NE(msg.find("rms_norm_eps"), std::string::npos) << bad << ": " << msg;
  }
}

TEST(ConfigBounds, IntegersThatWouldWrapAreRefusedNamingFieldAndValue) {
  struct Case { std::string from, to, field; };
  for (const Case& c : std::vector<Case>{{"\"num_steps\": 10", "\"num_steps\": 4294967299", "num_steps"},
                                         {"\"depth\": 2", "\"depth\": 4294967298", "depth"},
                                         {"\"depth\": 2", "\"depth\": 1000000000000", "depth"},
                                         {"\"width\": 16", "\"width\": 4294967312", "width"},
                                         {"\"depth\": 2", "\"depth\": -9223372036854775807", "depth"}}) {
    const std::string msg = load_error(config_with("wrap", c.from, c.to));
    EXPECT_NE(msg.find(c.field), std::string::npos) << c.to << ": " << msg;
    EXPECT_NE(msg.find("out of range"), std::string::npos) << c.to << ": " << msg;
  }
}
