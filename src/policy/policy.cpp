#include "policy/policy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "pi0/error.h"
#include "pi0/log.h"
#include "policy/image.h"
#include "policy/normalizer.h"
#include "policy/rtc_request.h"
#include "policy/tokenizer.h"

namespace pi0 {

namespace fs = std::filesystem;

struct Policy::Impl {
  std::unique_ptr<Pi0Model> model;
  RobotConfig robot;
  PromptFormat format;
  std::unique_ptr<PromptTokenizer> tokenizer;
  std::unique_ptr<Normalizer> norm;  // openpi's or LeRobot's (policy/normalizer.h)
  std::string default_prompt;
};

Policy::Policy() : impl_(std::make_unique<Impl>()) {}
Policy::~Policy() = default;

namespace {

std::string resolve_tokenizer(const std::string& ckpt, const std::string& given) {
  const fs::path p = given.empty() ? fs::path(ckpt) / "tokenizer.model" : fs::path(given);
  if (!fs::exists(p))  // a FIFO or a device: refused by name when read (read_text_file)
    throw Error(ErrorInfo{.message = given.empty() ? "tokenizer model not found beside the checkpoint (pass --tokenizer with "
                                            "the PaliGemma tokenizer.model)"
                                          : "tokenizer model not found",
                 .file = p.string()});
  return p.string();
}

// Our extension: the caller's initial noise, [H, A] or [1, H, A], F32 or F64, finite.
Tensor noise_from(const Value& v, const ModelConfig& c) {
  const Tensor* t = v.get_if<Tensor>();
  const Shape want = {c.action_horizon, c.action_dim};
  if (!t) throw Error(ErrorInfo{.message = "noise must be an array", .field = "noise", .expected = shape_str(want)});
  if (t->dtype() != DType::F32 && t->dtype() != DType::F64)
    throw Error(ErrorInfo{.message = "noise must be float32 or float64", .field = "noise", .expected = "F32 or F64",
                 .got = dtype_name(t->dtype())});
  Shape s = t->shape();
  if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
  if (s != want)
    throw Error(ErrorInfo{.message = "noise has the wrong shape", .field = "noise", .expected = shape_str(want),
                 .got = shape_str(t->shape())});
  Tensor out = Tensor::zeros(DType::F32, {1, c.action_horizon, c.action_dim});
  float* o = out.data_mut<float>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    const double x = t->dtype() == DType::F32 ? t->data<float>()[i] : t->data<double>()[i];
    if (!std::isfinite(x))
      throw Error(ErrorInfo{.message = "noise is not finite", .field = "noise[" + std::to_string(i) + "]"});
    o[i] = static_cast<float>(x);
  }
  return out;
}

// A finite state far outside its norm stats (1e248, say: a corrupt sensor reading) normalises
// beyond float32, and the model would turn the inf into NaN actions for the robot. Found by
// fuzz_request (tests/regressions/fuzz_request/).
float float32_state(double normalised, double raw, size_t i) {
  const float f = static_cast<float>(normalised);
  const auto g = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x);
    return std::string(buf);
  };
  if (!std::isfinite(f))
    throw Error(ErrorInfo{.message = "state value is too far outside the norm stats: it normalises beyond float32's range",
                 .field = "state[" + std::to_string(i) + "] (after the robot's encoding)",
                 .expected = "a normalised |value| <= 3.4e38",
                 .got = g(raw) + " (normalised " + g(normalised) + ")"});
  return f;
}

}  // namespace

std::unique_ptr<Policy> Policy::load(const std::string& dir, const PolicyOptions& opt) {
  std::unique_ptr<Policy> p(new Policy());
  Impl& m = *p->impl_;
  if (opt.robot.empty())
    throw Error(ErrorInfo{.message = "no robot given", .field = "robot",
                 .expected = "aloha, aloha_sim, droid, libero or a robot .json"});
  // Cheap checks first, so a missing file is reported before the weights are mapped.
  const std::string tok_path = resolve_tokenizer(dir, opt.tokenizer_path);
  m.model = Pi0Model::load(dir, opt.backend.empty() ? default_backend_name() : opt.backend, {.precision = opt.precision});
  const ModelConfig& c = m.model->config();
  m.robot = resolve_robot(opt.robot, c.pi05);
  m.format = decide_prompt_format(c, m.robot, opt.discrete_state_input, (fs::path(dir) / "config.json").string());
  // A converted checkpoint does not say its prompt format: say which one is used and why.
  log_message(LogLevel::Info, "pi0: prompt format: " + m.format.describe());
  m.tokenizer = std::make_unique<PromptTokenizer>(tok_path);
  m.norm = load_normalizer(dir, opt.norm_stats_path, m.robot, c.pi05);
  log_message(LogLevel::Info, "pi0: normaliser: " + m.norm->description());
  m.default_prompt = opt.default_prompt;

  // Everything must fit together; say which part does not.
  const RobotConfig& r = m.robot;
  if (r.state_dim() > c.action_dim)
    throw Error(ErrorInfo{.message = "robot " + r.name + " has a wider state than the model", .file = dir,
                 .field = "action_dim", .expected = ">= " + std::to_string(r.state_dim()), .got = std::to_string(c.action_dim)});
  if (r.action_dim > c.action_dim)
    throw Error(ErrorInfo{.message = "robot " + r.name + " needs more action dims than the model predicts", .file = dir,
                 .field = "action_dim", .expected = ">= " + std::to_string(r.action_dim), .got = std::to_string(c.action_dim)});
  // Every robot camera must feed a camera this model has: one that does not would leave the model
  // running with that camera masked, ignoring what the robot sees, without a word.
  for (const RobotCamera& cam : r.cameras)
    if (std::find(c.cameras.begin(), c.cameras.end(), cam.model_key) == c.cameras.end()) {
      std::string have;
      for (const auto& k : c.cameras) have += (have.empty() ? "" : ", ") + k;
      throw Error(ErrorInfo{.message = "robot " + r.name + " maps '" + cam.obs_key + "' to a camera this model does not have",
                            .file = dir, .field = "cameras", .expected = "one of " + have, .got = cam.model_key});
    }
  if (c.image_channels != 3)
    throw Error(ErrorInfo{.message = "model must take RGB images", .file = dir, .field = "image_channels", .expected = "3",
                 .got = std::to_string(c.image_channels)});
  if (m.norm->state_width() < static_cast<size_t>(r.state_dim()))
    throw Error(ErrorInfo{.message = "norm stats are narrower than robot " + r.name + "'s state", .file = m.norm->path(),
                 .field = "state.mean", .expected = ">= " + std::to_string(r.state_dim()) + " values",
                 .got = std::to_string(m.norm->state_width())});
  if (m.norm->action_width() < static_cast<size_t>(r.action_dim))
    throw Error(ErrorInfo{.message = "norm stats are narrower than robot " + r.name + "'s actions", .file = m.norm->path(),
                 .field = "actions.mean", .expected = ">= " + std::to_string(r.action_dim) + " values",
                 .got = std::to_string(m.norm->action_width())});
  if (m.tokenizer->vocab_size() > c.vlm.vocab_size)
    throw Error(ErrorInfo{.message = "tokenizer has more pieces than the model's vocabulary", .file = tok_path,
                 .field = "vocab_size", .expected = "<= " + std::to_string(c.vlm.vocab_size),
                 .got = std::to_string(m.tokenizer->vocab_size())});
  return p;
}

const ModelConfig& Policy::config() const { return impl_->model->config(); }
const Pi0Model& Policy::model() const { return *impl_->model; }
const RobotConfig& Policy::robot() const { return impl_->robot; }
const PromptFormat& Policy::prompt_format() const { return impl_->format; }
const std::string& Policy::norm_stats_path() const { return impl_->norm->path(); }
const std::string& Policy::tokenizer_path() const { return impl_->tokenizer->path(); }
Dict Policy::metadata() const { return impl_->robot.metadata; }

PreparedObservation Policy::prepare(const Dict& obs) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.model->config();
  // 1-2. Robot inputs (and the default prompts, in openpi's order: server's, then the config's).
  RobotObservation ro = robot_inputs(m.robot, obs);
  PreparedObservation out;
  if (ro.prompt) out.prompt = *ro.prompt;
  else if (!m.default_prompt.empty()) out.prompt = m.default_prompt;
  else if (!m.robot.default_prompt.empty()) out.prompt = m.robot.default_prompt;
  else
    throw Error(ErrorInfo{.message = "observation has no prompt and no default prompt is set", .field = "prompt",
                 .expected = "a \"prompt\" string (pi0 infer: --prompt; pi0 serve: --default-prompt for requests without one)",
                 .got = "no \"prompt\" key"});
  // 3. Normalize (float64, as openpi's stats are).
  const std::vector<double> state = m.norm->normalize_state(ro.state);
  // 5. ResizeImages (Pillow bilinear on uint8), then the model's x/255·2−1. Absent cameras are
  // black (−1) and masked.
  ModelInputs& in = out.inputs;
  const int H = c.image_height, W = c.image_width;
  for (const std::string& cam : c.cameras) {
    auto it = ro.images.find(cam);
    Tensor img = Tensor::zeros(DType::F32, {1, 3, H, W});
    Tensor mask = Tensor::zeros(DType::U8, {1});
    if (it != ro.images.end()) {
      const Tensor t = image_to_model_input(resize_with_pad_pillow(it->second, H, W));
      std::copy_n(t.data<float>(), t.numel(), img.data_mut<float>());
      mask.data_mut<uint8_t>()[0] = 1;
    } else {
      std::fill_n(img.data_mut<float>(), img.numel(), -1.0f);
    }
    in.images.push_back(std::move(img));
    in.image_masks.push_back(std::move(mask));
  }
  // 6. TokenizePrompt: π0.5 with discrete state puts the normalised, unpadded state in the prompt.
  const bool discrete = m.format.state_in_prompt;
  const TokenizedPrompt tp = m.tokenizer->tokenize(out.prompt, c.max_token_len, discrete ? &state : nullptr);
  out.untruncated_tokens = tp.untruncated_len;
  in.tokens = Tensor::zeros(DType::I32, {1, c.max_token_len});
  in.token_mask = Tensor::zeros(DType::U8, {1, c.max_token_len});
  std::copy(tp.ids.begin(), tp.ids.end(), in.tokens.data_mut<int32_t>());
  std::copy(tp.mask.begin(), tp.mask.end(), in.token_mask.data_mut<uint8_t>());
  // 7. PadStatesAndActions: zeros after normalisation; the model takes float32.
  in.state = Tensor::zeros(DType::F32, {1, c.action_dim});
  for (size_t i = 0; i < state.size(); ++i) in.state.data_mut<float>()[i] = float32_state(state[i], ro.state[i], i);
  if (auto it = obs.find("noise"); it != obs.end() && !it->second.is_null()) in.noise = noise_from(it->second, c);
  return out;
}

Dict Policy::infer(const Dict& obs) const { return infer(obs, InferOptions{}); }

Dict Policy::infer(const Dict& obs, const InferOptions& o) const {
  const auto t0 = std::chrono::steady_clock::now();
  const Impl& m = *impl_;
  const ModelConfig& c = m.model->config();
  const int64_t H = c.action_horizon, A = c.action_dim;
  std::optional<RtcRequest> rtc = rtc_request_from(obs, m.robot.action_dim, H);  // checked before any work
  PreparedObservation prep = prepare(obs);
  // The float32 state the model sees, unnormalised (float64) as openpi does with the model's
  // {"state", "actions"} outputs: AbsoluteActions adds it, RTC's inverse subtracts it.
  std::vector<double> state(static_cast<size_t>(A));
  for (int64_t i = 0; i < A; ++i) state[i] = prep.inputs.state.data<float>()[i];
  m.norm->unnormalize_state(state.data(), static_cast<size_t>(A));
  SampleOptions so;
  so.seed = o.seed;
  if (rtc) {
    // The remainder as the robot was sent it -> model space: the output pipeline in reverse. The
    // model's dims past the robot's stay zero, as PadStatesAndActions leaves them in training.
    std::vector<double> y = robot_outputs_inverse(m.robot, rtc->prev_actions, rtc->rows, state);
    m.norm->normalize_actions(y.data(), static_cast<size_t>(rtc->rows), static_cast<size_t>(rtc->width));
    rtc->guidance.prev_actions = Tensor::zeros(DType::F32, {1, rtc->rows, rtc->width});
    float* dst = rtc->guidance.prev_actions.data_mut<float>();
    for (size_t i = 0; i < y.size(); ++i) {
      dst[i] = static_cast<float>(y[i]);
      if (!std::isfinite(dst[i]))  // finite in robot units, but beyond float32 once normalised
        throw Error(ErrorInfo{.message = "real-time chunking: a previous action is too far outside the norm stats "
                                         "(it normalises beyond float32's range)",
                              .file = m.norm->path(),
                              .field = "rtc_prev_actions[" + std::to_string(static_cast<int64_t>(i) / rtc->width) + "][" +
                                       std::to_string(static_cast<int64_t>(i) % rtc->width) + "]",
                              .expected = "a normalised |value| <= 3.4e38", .got = std::to_string(rtc->prev_actions[i])});
    }
    so.rtc = rtc->guidance;
  }
  const Tensor act = m.model->sample_actions(prep.inputs, so);  // F32 [1, H, A], normalised
  if (act.shape() != Shape{1, H, A})
    throw Error(ErrorInfo{.message = "model returned actions of an unexpected shape", .expected = shape_str({1, H, A}),
                 .got = shape_str(act.shape())});
  // Unnormalize (float64), then AbsoluteActions and the robot's outputs.
  std::vector<double> actions(static_cast<size_t>(H * A));
  for (int64_t i = 0; i < H * A; ++i) actions[i] = act.data<float>()[i];
  m.norm->unnormalize_actions(actions.data(), static_cast<size_t>(H), static_cast<size_t>(A));
  const std::vector<double> robot_actions = robot_outputs(m.robot, actions, H, A, state);

  // The last line of defence: the model checks its own output, but unnormalising with extreme
  // stats can still overflow. A robot is never sent a non-finite command.
  for (size_t i = 0; i < robot_actions.size(); ++i)
    if (!std::isfinite(robot_actions[i]))
      throw Error(ErrorInfo{.message = "robot actions are not finite after unnormalising (check the norm stats)",
                            .file = m.norm->path(), .field = "actions[" + std::to_string(i / m.robot.action_dim) + "][" +
                                                          std::to_string(i % m.robot.action_dim) + "]",
                            .expected = "finite values", .got = std::to_string(robot_actions[i])});
  Tensor out = Tensor::zeros(DType::F64, {H, m.robot.action_dim});
  std::copy(robot_actions.begin(), robot_actions.end(), out.data_mut<double>());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Dict reply;
  reply["actions"] = Value(std::move(out));
  reply["policy_timing"] = Value(Dict{{"infer_ms", Value(ms)}});
  return reply;
}

}  // namespace pi0
