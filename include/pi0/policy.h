// The embedding API: load a π0 / π0.5 policy from a checkpoint directory and turn openpi robot
// observations into robot actions, in process. This is what `pi0 infer` and `pi0 serve` do, for
// programs that link the library (find_package(pi0) + pi0::pi0) instead of running the CLI.
//
//   pi0::api::PolicyOptions opt;
//   opt.robot = "libero";
//   auto policy = pi0::api::Policy::load("checkpoints/pi05_libero", opt);
//   pi0::Dict reply = policy->infer(observation);  // {"actions": F64 [H, D], "policy_timing": {...}}
//
// Semantics are openpi's BasePolicy.infer: the same observation dict a robot client sends to
// openpi's server (and to `pi0 serve`), the same reply. Everything that reads outside input
// throws pi0::Error (pi0/error.h) with a message naming the file, key or field, expected vs got:
// the message `pi0 infer` prints after "error: ". Library messages (what was loaded, warnings)
// go to the callback set with pi0::set_log_callback (pi0/log.h); without one they are dropped.
//
// The model internals (tensors the model sees, backends, kernels) stay behind this header; it
// depends only on the other public headers in include/pi0/.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pi0/error.h"
#include "pi0/value.h"

// The embedding API has its own namespace: the library's internal pi0::Policy, which this wraps,
// carries model types an embedder should not depend on.
namespace pi0::api {

struct PolicyOptions {
  // Required: a built-in robot (aloha, aloha_sim, droid, libero) or the path of a robot .json
  // (README "Custom robots"). It fixes the observation keys, the state and action widths and the
  // norm stats asset.
  std::string robot;
  // The SentencePiece model; empty: <checkpoint>/tokenizer.model.
  std::string tokenizer_path;
  // norm_stats.json or the directory holding it; empty: <checkpoint>/assets/<asset_id>/norm_stats.json.
  std::string norm_stats_path;
  // Used when an observation has no "prompt" (before the robot's own default prompt).
  std::string default_prompt;
  // "cpu" or "reference"; empty: the fastest available ("cpu").
  std::string backend;
  // "auto" | "bf16" | "f32" | "int8": the cpu backend's compute type. auto measures this machine
  // at load and takes the faster of bf16 and f32; int8 is opt-in (it changes results more).
  std::string precision = "auto";
  // > 0: the library's worker threads, set at load. The thread team is process-wide (shared by
  // every Policy and by oneDNN), so this changes it for all of them. 0: leave it as it is (every
  // core unless pi0::set_num_threads in pi0/threads.h said otherwise).
  int threads = 0;
  // π0.5 only: whether the prompt carries the discretised state. nullopt: config.json, else the
  // robot preset decides (README "Prompt format"), as `pi0 infer --discrete-state-input` does.
  std::optional<bool> discrete_state_input;
};

// Per call options beyond openpi's infer(obs).
struct InferOptions {
  // Seed of the initial noise when the observation carries no "noise" array: the same seed gives
  // the same actions. nullopt: fresh noise each call.
  std::optional<uint64_t> seed;
};

// One camera the robot reads from an observation.
struct CameraInput {
  std::string key;        // e.g. "observation/image"; a key with '/' may also be nested dicts
  bool required = true;   // an absent optional camera is black and masked
};

// One state entry: `size` numbers under `key`, concatenated in this order into the state vector.
struct StateInput {
  std::string key;  // e.g. "observation/state"
  int size = 0;
};

// What a loaded policy expects and returns; enough to build a valid observation without knowing
// the robot in advance (examples/embed does).
struct PolicyInfo {
  std::string variant;        // "pi0" or "pi05"
  std::string robot;          // the robot's name
  std::string backend;        // the backend in use
  std::string precision;      // the compute type in use (auto already resolved), e.g. "bf16"
  std::string prompt_format;  // which prompt format and what decided it, one line
  int action_horizon = 0;     // H: rows of "actions"
  int action_dim = 0;         // D: columns of "actions" (the robot's action width)
  int model_action_dim = 0;   // the model's action width: "noise" is [action_horizon, model_action_dim]
  int image_height = 0;       // the model's input size: images of any size are resized to it
  int image_width = 0;
  std::vector<CameraInput> cameras;
  std::vector<StateInput> state;
};

class Policy {
 public:
  // Loads the checkpoint (config.json + model.safetensors), the robot, tokenizer and norm stats,
  // and checks that they fit together. Throws pi0::Error naming the file and what is wrong.
  static std::unique_ptr<Policy> load(const std::string& checkpoint_dir, const PolicyOptions& options);
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // The observation dict, as openpi clients send it: uint8 images [H, W, 3] or [3, H, W] under
  // the robot's camera keys, the raw (unnormalised) state as numbers or F32/F64 arrays, "prompt"
  // (a string; absent: the default prompt), and optionally "noise" F32/F64 [horizon, model
  // action dim] for reproducible actions. Returns {"actions": F64 [H, D] robot actions,
  // "policy_timing": {"infer_ms": double}}. Thread-safe: several threads may call it at once.
  // Throws pi0::Error naming the bad key, expected vs got.
  Dict infer(const Dict& observation) const;
  Dict infer(const Dict& observation, const InferOptions& options) const;

  // The robot's metadata that openpi's server sends on connect (ALOHA: {"reset_pose": [...]});
  // empty for robots without any.
  Dict metadata() const;

  const PolicyInfo& info() const;

 private:
  Policy();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pi0::api
