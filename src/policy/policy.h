// A loaded policy: checkpoint + robot config + tokenizer + norm stats, running openpi's whole
// input pipeline, the model and the output pipeline (docs/model.md §6.1) on one observation dict.
// This is what `pi0 infer` and the server call.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/value.h"
#include "model/pi0_model.h"
#include "policy/robots.h"

namespace pi0 {

struct PolicyOptions {
  std::string robot;            // built-in robot name (aloha, aloha_sim, droid, libero) or a robot .json
  std::string tokenizer_path;   // empty: <checkpoint>/tokenizer.model
  std::string norm_stats_path;  // file or directory; empty: <checkpoint>/assets/<asset_id>/norm_stats.json
  std::string default_prompt;   // used when an observation has no "prompt" (before the robot's default)
  std::string backend;          // empty: the default backend
  // --discrete-state-input: whether a π0.5 prompt carries the state, over config.json and the
  // robot (decide_prompt_format in policy/robots.h); nullopt: they decide.
  std::optional<bool> discrete_state_input;
  Precision precision = Precision::Auto;  // the backend's compute type
};

// Extras beyond openpi's infer(obs), for the CLI and tests.
struct InferOptions {
  std::optional<uint64_t> seed;  // noise seed when the observation carries no "noise"
};

// What the model receives for one observation (openpi's input transforms, B = 1).
struct PreparedObservation {
  ModelInputs inputs;
  std::string prompt;       // the prompt used (observation's, or a default)
  int untruncated_tokens = 0;
};

class Policy {
 public:
  // Loads everything and checks that it fits together (robot vs model widths, norm stats vs
  // robot state, tokenizer vs vocabulary); errors name the file and what is missing.
  static std::unique_ptr<Policy> load(const std::string& checkpoint_dir, const PolicyOptions& opt);
  ~Policy();

  // Thread-safe. `obs` is the openpi observation dict for the robot: uint8 images HWC or CHW, the
  // raw state, "prompt", and optionally "noise" F32/F64 [H, action_dim] (our extension, for
  // reproducible replies). Returns {"actions": F64 [H, robot action dim] unnormalised robot-space
  // actions, "policy_timing": {"infer_ms": ms}}. Throws pi0::Error naming the bad input.
  Dict infer(const Dict& obs) const;
  Dict infer(const Dict& obs, const InferOptions& o) const;
  // Sent on connect: the robot's metadata (ALOHA: reset_pose), else empty.
  Dict metadata() const;

  // openpi's input transforms only (no model call).
  PreparedObservation prepare(const Dict& obs) const;
  const ModelConfig& config() const;
  const Pi0Model& model() const;  // its backend and chosen precision, for pi0::api::Policy::info()
  const RobotConfig& robot() const;
  // Which prompt format prepare() uses and where that was decided (also logged at load).
  const PromptFormat& prompt_format() const;
  const std::string& norm_stats_path() const;
  const std::string& tokenizer_path() const;

 private:
  Policy();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pi0
