// The embedding API (include/pi0/policy.h) against the library's pipeline it wraps: the same
// actions for the same observation and noise, options passed through, info() describing the
// robot's keys so that an observation built from it alone is accepted, errors as pi0::Error.
#include <gtest/gtest.h>

#include "bundle_util.h"
#include "pi0/policy.h"
#include "pi0/threads.h"
#include "policy/policy.h"

using namespace pi0;

namespace {

// An observation for any robot from info() alone (what examples/embed does), with fixed noise.
Dict observation_from_info(const api::PolicyInfo& info) {
  Dict obs;
  for (const api::CameraInput& cam : info.cameras) {
    Tensor img = Tensor::zeros(DType::U8, {3, 32, 48});  // CHW, another size than the model's
    for (int64_t i = 0; i < img.numel(); ++i) img.data_mut<uint8_t>()[i] = static_cast<uint8_t>(i * 13);
    obs[cam.key] = img;
  }
  for (const api::StateInput& s : info.state) obs[s.key] = Tensor::from_f32(std::vector<float>(s.size, 0.2f), {s.size});
  Tensor noise = Tensor::zeros(DType::F32, {info.action_horizon, info.model_action_dim});
  for (int64_t i = 0; i < noise.numel(); ++i) noise.data_mut<float>()[i] = static_cast<float>((i % 11) - 5) * 0.2f;
  obs["noise"] = noise;
  obs["prompt"] = "stack the cups";
  return obs;
}

}  // namespace

TEST(ApiPolicy, SameActionsAsTheLibraryPipelineForEveryRobot) {
  const std::string& ck = test::bundle("tiny-pi05");
  for (const char* robot : {"libero", "droid", "aloha"}) {
    SCOPED_TRACE(robot);
    auto pub = api::Policy::load(ck, {.robot = robot, .backend = "reference", .precision = "f32"});
    const api::PolicyInfo& info = pub->info();
    EXPECT_EQ(info.robot, robot);
    EXPECT_EQ(info.variant, "pi05");
    EXPECT_EQ(info.backend, "reference");
    EXPECT_FALSE(info.prompt_format.empty());
    auto lib = Policy::load(ck, {.robot = robot, .backend = "reference", .precision = Precision::F32});
    EXPECT_EQ(info.action_horizon, lib->config().action_horizon);
    EXPECT_EQ(info.model_action_dim, lib->config().action_dim);
    EXPECT_EQ(info.action_dim, lib->robot().action_dim);
    ASSERT_EQ(info.cameras.size(), lib->robot().cameras.size());

    const Dict obs = observation_from_info(info);
    const Tensor a = *pub->infer(obs).at("actions").get_if<Tensor>();
    const Tensor b = *lib->infer(obs).at("actions").get_if<Tensor>();
    ASSERT_EQ(a.shape(), (Shape{info.action_horizon, info.action_dim}));
    ASSERT_EQ(a.dtype(), DType::F64);
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<double>()[i], b.data<double>()[i]) << i;
    EXPECT_EQ(pub->metadata().size(), lib->metadata().size());
  }
}

TEST(ApiPolicy, SeedMakesActionsReproducible) {
  auto p = api::Policy::load(test::bundle("tiny-pi0"), {.robot = "libero", .backend = "reference"});
  Dict obs = observation_from_info(p->info());
  obs.erase("noise");
  const auto actions = [&](uint64_t seed) { return p->infer(obs, {.seed = seed}).at("actions").get_if<Tensor>()->to_f32_vector(); };
  EXPECT_EQ(actions(5), actions(5));
  EXPECT_NE(actions(5), actions(6));
}

TEST(ApiPolicy, OptionsAreCheckedAndErrorsNameTheField) {
  const std::string& ck = test::bundle("tiny-pi0");
  try {
    api::Policy::load(ck, {.robot = "libero", .precision = "fp8"});
    FAIL() << "fp8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(api::Policy::load(ck, {.robot = "libero", .threads = -1}), Error);
  EXPECT_THROW(api::Policy::load(ck, {.robot = ""}), Error);
  EXPECT_THROW(api::Policy::load(ck, {.robot = "libero", .norm_stats_path = "/nonexistent"}), Error);
  auto p = api::Policy::load(ck, {.robot = "libero", .backend = "reference"});
  Dict obs = observation_from_info(p->info());
  obs.erase("observation/state");
  try {
    p->infer(obs);
    FAIL() << "missing state accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("observation/state"), std::string::npos) << e.what();
  }
}

TEST(ApiPolicy, ThreadsOptionSetsTheProcessWideTeam) {
  const int before = num_threads();
  api::Policy::load(test::bundle("tiny-pi0"), {.robot = "libero", .backend = "reference", .threads = 1});
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(before);
}
