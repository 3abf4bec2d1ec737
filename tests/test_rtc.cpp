// Real-time chunking in the model (model/rtc.h): LeRobot's schedules and guidance weight, the
// guided sampler against the plain one, and its input checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "pi0/error.h"
#include "model_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

void expect_weights(RtcSchedule s, int start, int end, int total, const std::vector<float>& want, float tol = 1e-6f) {
  const std::vector<float> got = rtc_prefix_weights(s, start, end, total);
  ASSERT_EQ(got.size(), want.size()) << rtc_schedule_name(s) << " " << start << " " << end << " " << total;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << rtc_schedule_name(s) << "(" << start << ", " << end << ", " << total << ")[" << i << "]";
}

std::vector<float> ones_then_zeros(int ones, int total) {
  std::vector<float> v(static_cast<size_t>(total), 0.f);
  for (int i = 0; i < ones; ++i) v[i] = 1.f;
  return v;
}

// Written down from LeRobot's RTCProcessor.get_prefix_weights (start = d, end = h, total = H)
// and the values its tests check.
TEST(RtcSchedule, WeightsAreLeRobots) {
  expect_weights(RtcSchedule::Zeros, 5, 10, 20, ones_then_zeros(5, 20));
  expect_weights(RtcSchedule::Ones, 5, 15, 20, ones_then_zeros(15, 20));
  std::vector<float> lin = ones_then_zeros(5, 25);
  for (int k = 0; k < 9; ++k) lin[5 + k] = 0.9f - 0.1f * k;
  expect_weights(RtcSchedule::Linear, 5, 14, 25, lin);
  std::vector<float> ex = ones_then_zeros(5, 25);
  const float mid[] = {0.7645f, 0.5706f, 0.4130f, 0.2871f, 0.1888f, 0.1145f, 0.0611f, 0.0258f, 0.0061f};
  for (int k = 0; k < 9; ++k) ex[5 + k] = mid[k];
  expect_weights(RtcSchedule::Exp, 5, 14, 25, ex, 1e-4f);
  // start == end: ones up to start; start > end: clamped to end; total < start: all ones.
  expect_weights(RtcSchedule::Linear, 10, 10, 20, ones_then_zeros(10, 20));
  expect_weights(RtcSchedule::Linear, 15, 10, 20, ones_then_zeros(10, 20));
  expect_weights(RtcSchedule::Linear, 10, 10, 5, ones_then_zeros(5, 5));
  // The horizon past the chunk: the ramp runs to the chunk's end (linspace over total − start).
  expect_weights(RtcSchedule::Linear, 2, 30, 5, {1, 1, 0.75f, 0.5f, 0.25f});
  // d = 0: ZEROS weighs nothing, LINEAR starts its ramp at once.
  expect_weights(RtcSchedule::Zeros, 0, 10, 4, {0, 0, 0, 0});
  expect_weights(RtcSchedule::Linear, 0, 3, 5, {0.75f, 0.5f, 0.25f, 0, 0});
}

TEST(RtcSchedule, NamesParseCaseInsensitively) {
  for (const char* n : {"zeros", "ONES", "Linear", "exp"}) EXPECT_TRUE(parse_rtc_schedule(n).has_value()) << n;
  EXPECT_EQ(*parse_rtc_schedule("linear"), RtcSchedule::Linear);
  EXPECT_FALSE(parse_rtc_schedule("cosine").has_value());
  EXPECT_EQ(rtc_schedule_names(), "ZEROS, ONES, LINEAR, EXP");
}

// LeRobot: τ = 1 − t, c = (1 − τ)/τ, 1/r² = ((1 − τ)² + τ²)/(1 − τ)², min(c/r², max) with
// nan_to_num at the ends.
TEST(RtcGuidanceWeight, FollowsLeRobotsFormula) {
  EXPECT_EQ(rtc_guidance_weight(1.0f, 10.f), 10.f);  // τ = 0: c = inf -> max
  EXPECT_EQ(rtc_guidance_weight(0.0f, 10.f), 0.f);   // τ = 1: 0 · inf = NaN -> 0
  EXPECT_NEAR(rtc_guidance_weight(0.5f, 10.f), 2.0f, 1e-6f);
  EXPECT_NEAR(rtc_guidance_weight(0.9f, 10.f), 9.0 * (0.81 + 0.01) / 0.81, 1e-4);
  EXPECT_NEAR(rtc_guidance_weight(0.1f, 100.f), (0.1 / 0.9) * (0.01 + 0.81) / 0.01, 1e-3);
  EXPECT_EQ(rtc_guidance_weight(0.1f, 5.f), 5.f);  // clipped
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

Tensor slice_rows(const Tensor& chunk, int64_t from, int64_t count, int64_t width) {
  const int64_t B = chunk.dim(0), H = chunk.dim(1), A = chunk.dim(2);
  Tensor out = Tensor::zeros(DType::F32, {B, count, width});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < count; ++h)
      for (int64_t a = 0; a < width; ++a)
        out.data_mut<float>()[(b * count + h) * width + a] = chunk.data<float>()[(b * H + from + h) * A + a];
  return out;
}

// Mean |chunk[b, h, a] − target[b, h, a]| over the first d actions and the target's width.
double mean_distance(const Tensor& chunk, const Tensor& target, int64_t d) {
  const int64_t B = chunk.dim(0), H = chunk.dim(1), A = chunk.dim(2), n = target.dim(1), a = target.dim(2);
  double sum = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < d; ++h)
      for (int64_t i = 0; i < a; ++i)
        sum += std::fabs(chunk.data<float>()[(b * H + h) * A + i] - target.data<float>()[(b * n + h) * a + i]);
  return sum / static_cast<double>(B * d * a);
}

class RtcSampling : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

// The remainder of a chunk drawn with other noise, d = 3: the guided chunk starts where the robot
// will be, the plain one does not; weights of zero change nothing, bit for bit.
TEST_P(RtcSampling, GuidesTheFirstActionsTowardsTheRemainder) {
  const auto [preset, backend] = GetParam();
  auto model = random_model(model_preset(preset), std::string("rtc_") + preset + backend, 5, backend);
  const ModelConfig& c = model->config();
  const int64_t B = 2, H = c.action_horizon;
  ModelInputs in = random_inputs(c, B, 11);
  ModelInputs other = random_inputs(c, B, 12);  // same shapes, other noise: the previous chunk
  other.images = in.images;
  other.image_masks = in.image_masks;
  other.tokens = in.tokens;
  other.token_mask = in.token_mask;
  other.state = in.state;
  const Tensor previous = model->sample_actions(other);
  const Tensor plain = model->sample_actions(in);

  RtcGuidance g;
  g.prev_actions = slice_rows(previous, 2, H - 2, 7);  // executed 2; a robot 7 wide
  g.inference_delay = 3;
  SampleOptions opt;
  opt.rtc = g;
  const Tensor guided = model->sample_actions(in, opt);
  const double d_plain = mean_distance(plain, g.prev_actions, 3), d_guided = mean_distance(guided, g.prev_actions, 3);
  EXPECT_LT(d_guided, 0.1 * d_plain) << "guided " << d_guided << " plain " << d_plain;

  // d = 0 with ZEROS, or a horizon of 0: every weight is zero and the chunk is today's.
  for (auto [sched, horizon] : {std::pair{RtcSchedule::Zeros, 10}, std::pair{RtcSchedule::Linear, 0}}) {
    RtcGuidance z = g;
    z.inference_delay = 0;
    z.schedule = sched;
    z.execution_horizon = horizon;
    opt.rtc = z;
    EXPECT_TRUE(identical(model->sample_actions(in, opt), plain)) << rtc_schedule_name(sched) << " h=" << horizon;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, RtcSampling,
                         ::testing::Combine(::testing::Values("tiny-pi0", "tiny-pi05"), ::testing::Values("cpu", "reference")));

std::string rtc_error(const Pi0Model& m, const ModelInputs& in, const RtcGuidance& g) {
  SampleOptions opt;
  opt.rtc = g;
  try {
    m.sample_actions(in, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(RtcSampling, BadGuidanceIsRefusedByField) {
  auto model = random_model(model_preset("tiny-pi0"), "rtc_bad", 5);
  const ModelConfig& c = model->config();
  ModelInputs in = random_inputs(c, 1, 3);
  RtcGuidance ok;
  ok.prev_actions = Tensor::zeros(DType::F32, {1, 4, 7});
  ok.inference_delay = 2;
  EXPECT_EQ(rtc_error(*model, in, ok), "no error");
  auto expect = [&](RtcGuidance g, const std::string& field) {
    const std::string msg = rtc_error(*model, in, g);
    EXPECT_NE(msg.find(field), std::string::npos) << msg;
  };
  RtcGuidance g = ok;
  g.prev_actions = Tensor::zeros(DType::F32, {1, c.action_horizon + 1, 7});
  expect(g, "prev_actions");
  g.prev_actions = Tensor::zeros(DType::F32, {1, 4, c.action_dim + 1});
  expect(g, "prev_actions");
  g.prev_actions = Tensor::zeros(DType::F32, {4, 7});
  expect(g, "prev_actions");
  g.prev_actions = Tensor::zeros(DType::F32, {1, 4, 7});
  g.prev_actions.data_mut<float>()[5] = std::nanf("");
  expect(g, "prev_actions");
  g = ok;
  g.inference_delay = -1;
  expect(g, "inference_delay");
  g.inference_delay = 5;  // > n = 4
  expect(g, "inference_delay");
  g = ok;
  g.execution_horizon = -1;
  expect(g, "execution_horizon");
  g = ok;
  g.max_guidance_weight = 0;
  expect(g, "max_guidance_weight");
}

}  // namespace
