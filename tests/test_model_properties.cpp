// Properties that other π0 ports have got wrong, checked on configurations of random shape.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "model/embed.h"
#include "core/compare.h"
#include "pi0/error.h"
#include "model_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

std::map<std::string, Tensor> observe(const Pi0Model& m, const ModelInputs& in, SampleOptions opt = {}) {
  std::map<std::string, Tensor> out;
  opt.observer = [&](const std::string& n, const Tensor& t) { out[n] = t; };
  out["result"] = m.sample_actions(in, opt);
  return out;
}

void expect_close(const Tensor& a, const Tensor& b, double rel, const std::string& what) {
  Comparison c = compare_tensors(a, b);
  EXPECT_LE(c.rel(), rel) << what << ": max_abs " << c.max_abs << " max_ref " << c.max_ref;
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

Tensor row_slice(const Tensor& t, int64_t b) {  // row b of a [B, ...] f32 tensor, as [1, ...]
  Shape s = t.shape();
  const int64_t per = t.numel() / s[0];
  s[0] = 1;
  Tensor r = Tensor::zeros(DType::F32, s);
  std::memcpy(r.raw_mut(), t.data<float>() + b * per, per * 4);
  return r;
}

class RandomShapes : public ::testing::TestWithParam<uint32_t> {};

}  // namespace

// Sampling with the prefix KV cache equals Euler steps over the full joint prefix + suffix pass.
TEST_P(RandomShapes, CachedSamplingEqualsUncachedJointPass) {
  ModelConfig c = random_config(GetParam());
  auto model = random_model(c, "cached" + std::to_string(GetParam()), GetParam());
  ModelInputs in = random_inputs(c, 2, GetParam());
  Tensor cached = model->sample_actions(in);

  Tensor x = in.noise.to(DType::F32);
  const float dt = -1.0f / static_cast<float>(c.num_steps);
  float t = 1.0f;
  for (int step = 0; step < c.num_steps; ++step) {
    ModelInputs joint = in;
    joint.noise = x;  // x_t = t·x + (1 − t)·x = x: the joint pass sees exactly this step's x
    Tensor time = Tensor::from_f32({t, t}, {2});
    TrainOutputs tr = model->forward_training(joint, x, time);
    Tensor next = Tensor::zeros(DType::F32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i)
      next.data_mut<float>()[i] = x.data<float>()[i] + dt * tr.velocity.data<float>()[i];
    x = next;
    t += dt;
  }
  expect_close(x, cached, 1e-5, "cached vs joint");
}

// Positions skip masked tokens; the suffix starts at the count of valid prefix tokens.
TEST_P(RandomShapes, PositionsSkipMaskedTokens) {
  ModelConfig c = random_config(GetParam());
  const int64_t P = c.prefix_len(), S = c.suffix_len();
  std::mt19937 rng(GetParam());
  std::vector<uint8_t> valid(static_cast<size_t>(2 * P));
  for (auto& v : valid) v = rng() % 3 != 0;
  SequenceLayout L;
  build_layout(c, 2, P, valid, L);
  for (int64_t b = 0; b < 2; ++b) {
    int32_t count = 0;
    for (int64_t i = 0; i < P; ++i) {
      count += valid[b * P + i];
      if (valid[b * P + i]) {
        EXPECT_EQ(L.position[b * (P + S) + i], count - 1);
      }
      EXPECT_EQ(L.group[b * (P + S) + i], 0);
    }
    for (int64_t i = 0; i < S; ++i) {
      EXPECT_EQ(L.position[b * (P + S) + P + i], count + i) << "suffix token " << i;
      EXPECT_EQ(L.valid[b * (P + S) + P + i], 1);
    }
    // AR groups: π0 state token alone in group 1, actions in group 2; π0.5 actions in group 1.
    EXPECT_EQ(L.group[b * (P + S) + P], 1);
    if (S > 1) {
      EXPECT_EQ(L.group[b * (P + S) + P + S - 1], c.pi05 ? 1 : 2);
    }
  }
}

// A masked camera's pixels and padded token ids change nothing valid; rows are independent.
TEST_P(RandomShapes, MaskedInputsChangeNothing) {
  ModelConfig c = random_config(GetParam());
  if (c.cameras.size() < 2) c = random_config(GetParam() + 1000);
  auto model = random_model(c, "masked" + std::to_string(GetParam()), GetParam());
  ModelInputs in = random_inputs(c, 2, GetParam());
  auto base = observe(*model, in);
  ModelInputs alt = random_inputs(c, 2, GetParam());
  // Same valid content; different pixels for the camera masked in row 1 and different padded ids.
  for (size_t k = 0; k < c.cameras.size(); ++k) alt.images[k] = in.images[k].to(DType::F32);
  float* img0 = alt.images[0].data_mut<float>();
  const int64_t per = alt.images[0].numel() / 2;
  if (c.cameras.size() > 1)
    for (int64_t i = per; i < 2 * per; ++i) img0[i] = -img0[i] * 0.5f + 0.25f;
  alt.tokens = in.tokens.to(DType::I32);
  for (int64_t t = 0; t < c.max_token_len; ++t)
    if (!in.token_mask.data<uint8_t>()[c.max_token_len + t]) alt.tokens.data_mut<int32_t>()[c.max_token_len + t] = 7 % c.vlm.vocab_size;
  alt.token_mask = in.token_mask;
  alt.state = in.state;
  alt.noise = in.noise;
  auto other = observe(*model, alt);
  for (const char* name : {"result", "velocity_t1", "actions"}) EXPECT_TRUE(identical(base[name], other[name])) << name;
  // Without an observer the all-masked camera skip path gives the same actions too.
  EXPECT_TRUE(identical(model->sample_actions(in), base["result"]));
  // Row 1 of the batch equals the same row run alone.
  ModelInputs one;
  for (size_t k = 0; k < c.cameras.size(); ++k) {
    one.images.push_back(row_slice(in.images[k], 1));
    Tensor m = Tensor::zeros(DType::U8, {1});
    m.data_mut<uint8_t>()[0] = in.image_masks[k].data<uint8_t>()[1];
    one.image_masks.push_back(m);
  }
  one.tokens = Tensor::zeros(DType::I32, {1, c.max_token_len});
  one.token_mask = Tensor::zeros(DType::U8, {1, c.max_token_len});
  std::memcpy(one.tokens.raw_mut(), in.tokens.data<int32_t>() + c.max_token_len, 4 * c.max_token_len);
  std::memcpy(one.token_mask.raw_mut(), in.token_mask.data<uint8_t>() + c.max_token_len, c.max_token_len);
  one.state = row_slice(in.state, 1);
  one.noise = row_slice(in.noise, 1);
  expect_close(row_slice(base["result"], 1), model->sample_actions(one), 1e-6, "batch row vs alone");
}

// Without an observer, prompt slots and cameras masked in every batch row are dropped from the
// prefix; the actions must equal the observed run that keeps them (padding anywhere, not only at
// the end, and the corner where nothing in the prefix is valid).
TEST_P(RandomShapes, DroppedPaddingMatchesKept) {
  ModelConfig c = random_config(GetParam());
  auto model = random_model(c, "dropped" + std::to_string(GetParam()), GetParam());
  ModelInputs in = random_inputs(c, 2, GetParam() + 77);
  const int64_t L = c.max_token_len;
  uint8_t* mask = in.token_mask.data_mut<uint8_t>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < L; ++t) mask[b * L + t] = t == 0 || (t % 3 == 1 && t < L - 1);
  if (c.cameras.size() > 1) in.image_masks.back().data_mut<uint8_t>()[0] = in.image_masks.back().data_mut<uint8_t>()[1] = 0;
  expect_close(model->sample_actions(in), observe(*model, in)["result"], 1e-6, "holes in the prompt");
  for (int64_t i = 0; i < 2 * L; ++i) mask[i] = 0;
  for (auto& m : in.image_masks) m.data_mut<uint8_t>()[0] = m.data_mut<uint8_t>()[1] = 0;
  expect_close(model->sample_actions(in), observe(*model, in)["result"], 1e-6, "empty prefix");
}

INSTANTIATE_TEST_SUITE_P(Model, RandomShapes, ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u));

// π0: the state token (AR group 1) never sees the action tokens (group 2).
TEST(ModelProperties, Pi0StateTokenDoesNotSeeActions) {
  ModelConfig c = random_config(11, /*pi05=*/0);
  auto model = random_model(c, "state_token");
  ModelInputs a = random_inputs(c, 1, 1), b = random_inputs(c, 1, 1);
  for (int64_t i = 0; i < b.noise.numel(); ++i) b.noise.data_mut<float>()[i] += 0.5f;
  auto oa = observe(*model, a), ob = observe(*model, b);
  const int64_t De = c.expert.width;
  for (int l = 0; l < c.expert.depth; ++l) {
    const std::string n = "suffix_t1.layer." + std::to_string(l);
    ASSERT_TRUE(oa.count(n));
    EXPECT_EQ(std::memcmp(oa[n].data<float>(), ob[n].data<float>(), 4 * De), 0) << "state token changed at layer " << l;
    EXPECT_NE(std::memcmp(oa[n].data<float>() + De, ob[n].data<float>() + De, 4 * De), 0) << "action token unchanged";
  }
}

// Noise is drawn fresh for every call unless a seed is given.
TEST(ModelProperties, FreshNoisePerCallAndSeedsRepeat) {
  ModelConfig c = random_config(12);
  auto model = random_model(c, "noise");
  ModelInputs in = random_inputs(c, 1, 3, /*with_noise=*/false);
  Tensor a = model->sample_actions(in), b = model->sample_actions(in);
  EXPECT_FALSE(identical(a, b));
  SampleOptions s;
  s.seed = 42;
  EXPECT_TRUE(identical(model->sample_actions(in, s), model->sample_actions(in, s)));
  s.seed = 43;
  SampleOptions s42;
  s42.seed = 42;
  EXPECT_FALSE(identical(model->sample_actions(in, s), model->sample_actions(in, s42)));
}

TEST(ModelProperties, BadInputsAreErrors) {
  ModelConfig c = random_config(13);
  auto model = random_model(c, "bad_inputs");
  ModelInputs in = random_inputs(c, 1, 3);
  ModelInputs wrong = in;
  wrong.tokens = in.tokens.to(DType::I32);  // tensors share storage when copied: copy explicitly
  wrong.tokens.data_mut<int32_t>()[0] = c.vlm.vocab_size;
  EXPECT_THROW(model->sample_actions(wrong), Error);
  wrong = in;
  wrong.images.pop_back();
  EXPECT_THROW(model->sample_actions(wrong), Error);
  wrong = in;
  wrong.noise = Tensor::zeros(DType::F32, {1, c.action_horizon + 1, c.action_dim});
  try {
    model->sample_actions(wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("noise"), std::string::npos) << e.what();
  }
}
