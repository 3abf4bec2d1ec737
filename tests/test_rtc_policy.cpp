// Real-time chunking through the policy: the output pipeline's inverse (robot units back into
// model space) on every built-in robot and normaliser, the observation fields and their errors,
// and the guided chunk continuing the remainder it is given.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "bundle_util.h"
#include "pi0/error.h"
#include "policy/lerobot_normalizer.h"
#include "policy/normalize.h"
#include "policy/policy.h"
#include "policy/robots.h"
#include "policy/rtc_request.h"
#include "policy_obs.h"
#include "test_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

std::vector<double> uniform(size_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// Model-space actions -> unnormalise -> AbsoluteActions + robot outputs -> the inverse of both:
// the model-space actions again, on the robot's dims, for every built-in robot, π0 and π0.5
// variants (their delta masks differ) and both openpi normalisations.
TEST(RtcInverse, OutputPipelineThenItsInverseIsTheIdentity) {
  const int64_t H = 6, A = 32;
  uint32_t seed = 1;
  for (const std::string& name : builtin_robot_names())
    for (bool pi05 : {false, true})
      for (NormMode mode : {NormMode::ZScore, NormMode::Quantile}) {
        const RobotConfig r = builtin_robot(name, pi05);
        const size_t D = static_cast<size_t>(r.action_dim);
        NormStats s;
        s.mean = uniform(D, -1, 1, ++seed);
        s.std = uniform(D, 0.1, 2, ++seed);
        s.q01 = uniform(D, -2, -0.5, ++seed);
        s.q99 = uniform(D, 0.5, 2, ++seed);
        std::vector<double> x = uniform(static_cast<size_t>(H * A), -1, 1, ++seed);
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = r.action_dim; i < A; ++i) x[h * A + i] = 0;  // padding, as the model is trained
        const std::vector<double> state = uniform(static_cast<size_t>(A), -1, 1, ++seed);

        std::vector<double> u = x;
        unnormalize_rows(u.data(), H, A, s, mode);
        const std::vector<double> robot = robot_outputs(r, u, H, A, state);
        std::vector<double> back = robot_outputs_inverse(r, robot, H, state);
        normalize_rows(back.data(), H, D, s, mode);
        ASSERT_EQ(back.size(), static_cast<size_t>(H) * D);
        for (int64_t h = 0; h < H; ++h)
          for (size_t i = 0; i < D; ++i)
            ASSERT_NEAR(back[h * D + i], x[h * A + i], 1e-9)
                << name << (pi05 ? " pi05 " : " pi0 ") << norm_mode_name(mode) << " [" << h << "][" << i << "]";
      }
}

// LeRobot's normalisers, in float32 as LeRobot computes: its unnormaliser then our inverse.
TEST(RtcInverse, LeRobotNormalisersInvert) {
  for (LeRobotNormMode mode : {LeRobotNormMode::Identity, LeRobotNormMode::MeanStd, LeRobotNormMode::MinMax,
                               LeRobotNormMode::Quantiles, LeRobotNormMode::Quantile10})
    for (bool legacy : {false, true}) {
      LeRobotFeatureNorm f;
      f.key = "action";
      f.mode = mode;
      f.legacy = legacy;
      for (double v : uniform(5, -1, 1, 3)) f.a.push_back(static_cast<float>(v));
      for (double v : uniform(5, 1.5, 3, 4)) f.b.push_back(static_cast<float>(v));
      const std::vector<double> x = uniform(3 * 7, -1, 1, 5);  // rows wider than the stats: the rest pass through
      std::vector<double> y = x;
      f.unnormalize_rows(y.data(), 3, 7);
      f.normalize_rows(y.data(), 3, 7);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_NEAR(y[i], x[i], 1e-5) << lerobot_norm_mode_name(mode) << (legacy ? " legacy " : " ") << i;
    }
}

Tensor rows_tensor(const std::vector<double>& v, int64_t n, int64_t d) {
  Tensor t = Tensor::zeros(DType::F64, {n, d});
  std::copy(v.begin(), v.end(), t.data_mut<double>());
  return t;
}

Dict rtc_obs(int64_t n, int64_t d) {
  Dict o;
  o["rtc_prev_actions"] = Value(rows_tensor(uniform(static_cast<size_t>(n * d), -1, 1, 9), n, d));
  o["rtc_inference_delay"] = Value(2);
  return o;
}

std::string request_error(const Dict& o) {
  return error_of([&] { rtc_request_from(o, 7, 10); });
}

TEST(RtcRequest, FieldsAreReadAndCheckedByName) {
  Dict none;
  none["prompt"] = Value("x");
  EXPECT_FALSE(rtc_request_from(none, 7, 10).has_value());
  Dict first = none;  // a control loop's first request: nothing to continue yet
  first["rtc_prev_actions"] = Value();
  first["rtc_inference_delay"] = Value(3);
  EXPECT_FALSE(rtc_request_from(first, 7, 10).has_value());

  Dict o = rtc_obs(8, 7);
  o["rtc_execution_horizon"] = Value(5);
  o["rtc_max_guidance_weight"] = Value(2.5);
  o["rtc_schedule"] = Value("exp");
  const std::optional<RtcRequest> r = rtc_request_from(o, 7, 10);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rows, 8);
  EXPECT_EQ(r->width, 7);
  EXPECT_EQ(r->guidance.inference_delay, 2);
  EXPECT_EQ(r->guidance.execution_horizon, 5);
  EXPECT_EQ(r->guidance.max_guidance_weight, 2.5f);
  EXPECT_EQ(r->guidance.schedule, RtcSchedule::Exp);
  // A numpy integer scalar for the delay, a [1, n, d] array and a list of rows are accepted too.
  Tensor d0 = Tensor::zeros(DType::I64, {});
  d0.data_mut<int64_t>()[0] = 1;
  o = rtc_obs(3, 7);
  o["rtc_inference_delay"] = Value(d0);
  o["rtc_prev_actions"] = Value(Tensor::zeros(DType::F32, {1, 3, 7}));
  EXPECT_EQ(rtc_request_from(o, 7, 10)->guidance.inference_delay, 1);
  o["rtc_prev_actions"] = Value(List{Value(List(7, Value(0.5))), Value(List(7, Value(1)))});
  EXPECT_EQ(rtc_request_from(o, 7, 10)->rows, 2);

  auto expect = [](const Dict& bad, const std::string& field, const std::string& also = "") {
    const std::string e = request_error(bad);
    EXPECT_NE(e.find(field), std::string::npos) << e;
    if (!also.empty()) EXPECT_NE(e.find(also), std::string::npos) << e;
  };
  expect(rtc_obs(3, 6), "rtc_prev_actions", "[3, 6]");   // the robot's width is 7
  expect(rtc_obs(11, 7), "rtc_prev_actions", "[11, 7]");  // longer than a chunk
  o = rtc_obs(3, 7);
  o["rtc_prev_actions"].get_if<Tensor>()->data_mut<double>()[9] = NAN;
  expect(o, "rtc_prev_actions[1][2]", "nan");
  o = rtc_obs(3, 7);
  o["rtc_prev_actions"] = Value("not an array");
  expect(o, "rtc_prev_actions");
  o = rtc_obs(3, 7);
  o["rtc_prev_actions"] = Value(Tensor::zeros(DType::I32, {3, 7}));
  expect(o, "rtc_prev_actions", "I32");
  o = rtc_obs(3, 7);
  o.erase("rtc_inference_delay");
  expect(o, "rtc_inference_delay", "nothing");
  o["rtc_inference_delay"] = Value(-1);
  expect(o, "rtc_inference_delay", "-1");
  o["rtc_inference_delay"] = Value(4);  // > n = 3
  expect(o, "rtc_inference_delay", "0 <= d <= 3");
  o["rtc_inference_delay"] = Value(1.5);
  expect(o, "rtc_inference_delay", "int");
  o = rtc_obs(3, 7);
  o["rtc_schedule"] = Value("cosine");
  expect(o, "rtc_schedule", "ZEROS, ONES, LINEAR, EXP");
  o = rtc_obs(3, 7);
  o["rtc_execution_horizon"] = Value(-2);
  expect(o, "rtc_execution_horizon");
  o = rtc_obs(3, 7);
  o["rtc_max_guidance_weight"] = Value(0.0);
  expect(o, "rtc_max_guidance_weight");
  o = rtc_obs(3, 7);
  o["rtc_delay"] = Value(2);  // misspelt: refused rather than silently unguided
  expect(o, "rtc_delay", "unknown");
  Dict orphan = none;
  orphan["rtc_inference_delay"] = Value(2);
  expect(orphan, "rtc_prev_actions");
}

const Tensor& actions_of(const Dict& reply) { return *reply.at("actions").get_if<Tensor>(); }

// Mean |a − b| over the first d rows (robot units).
double mean_distance(const Tensor& chunk, const Tensor& remainder, int64_t d) {
  const int64_t D = chunk.dim(1);
  double sum = 0;
  for (int64_t i = 0; i < d * D; ++i) sum += std::fabs(chunk.data<double>()[i] - remainder.data<double>()[i]);
  return sum / static_cast<double>(d * D);
}

Tensor drop_rows(const Tensor& chunk, int64_t k) {
  const int64_t H = chunk.dim(0), D = chunk.dim(1);
  Tensor t = Tensor::zeros(DType::F64, {H - k, D});
  std::memcpy(t.data_mut<double>(), chunk.data<double>() + k * D, sizeof(double) * (H - k) * D);
  return t;
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

class RtcPolicy : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

// The acceptance in-process: the previous chunk minus the 2 actions executed, d = 3; the
// same observation and noise with and without the fields.
TEST_P(RtcPolicy, GuidedChunkContinuesTheRemainder) {
  const auto [preset, robot] = GetParam();
  auto p = Policy::load(bundle(preset), {.robot = robot, .backend = "reference"});
  const ModelConfig& c = p->config();
  Dict o = obs_for(robot);
  o["noise"] = Value(noise_for(c, 1));
  const Tensor plain = actions_of(p->infer(o));
  Dict previous = obs_for(robot);
  previous["noise"] = Value(noise_for(c, 2));
  const Tensor remainder = drop_rows(actions_of(p->infer(previous)), 2);

  Dict none = o;  // None: the first chunk of a run, exactly today's reply
  none["rtc_prev_actions"] = Value();
  EXPECT_TRUE(identical(actions_of(p->infer(none)), plain));

  Dict guided_obs = o;
  guided_obs["rtc_prev_actions"] = Value(remainder);
  guided_obs["rtc_inference_delay"] = Value(3);
  const Tensor guided = actions_of(p->infer(guided_obs));
  const double dp = mean_distance(plain, remainder, 3), dg = mean_distance(guided, remainder, 3);
  EXPECT_LE(dg, 0.25 * dp) << "guided " << dg << " plain " << dp;
  std::printf("%s/%s: mean |first 3 - remainder| guided %.4g, plain %.4g (ratio %.3f)\n", preset, robot, dg, dp, dg / dp);
  // Bad fields fail the request with the field named, before any model work.
  guided_obs["rtc_inference_delay"] = Value(c.action_horizon);
  EXPECT_NE(error_of([&] { p->infer(guided_obs); }).find("rtc_inference_delay"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Robots, RtcPolicy,
                         ::testing::Values(std::tuple{"tiny-pi0", "libero"}, std::tuple{"tiny-pi05", "aloha"},
                                           std::tuple{"tiny-pi0", "droid"}));

}  // namespace
