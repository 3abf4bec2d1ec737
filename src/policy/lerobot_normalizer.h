// LeRobot's own normalisation, for checkpoints saved by LeRobot instead of openpi:
//  - today: policy_preprocessor.json / policy_postprocessor.json name a "normalizer_processor" /
//    "unnormalizer_processor" step whose stats sit in policy_{pre,post}processor_step_<i>_*.safetensors
//    as "<feature>.<stat>" (observation.state.mean, action.q99, ...); the step's config gives eps,
//    each feature's type and the mode per type (norm_map);
//  - before LeRobot's π0 rewrite: Normalize / Unnormalize modules inside the weights
//    (normalize_inputs.buffer_observation_state.mean, unnormalize_outputs.buffer_action.std, ...).
// The formulas are LeRobot's, in float32 as LeRobot computes them (its stats and π0's tensors are
// float32), which differ from openpi's (docs/model.md §6.2): MEAN_STD's inverse adds no epsilon,
// and the range modes replace a zero denominator by eps instead of adding eps to every one.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace pi0 {

enum class LeRobotNormMode { Identity, MeanStd, MinMax, Quantiles, Quantile10 };
const char* lerobot_norm_mode_name(LeRobotNormMode m);  // LeRobot's spelling: "MEAN_STD", ...

// One feature's normalisation: mode and its two stats vectors (mean/std, min/max, q01/q99 or
// q10/q90), float32 as stored.
struct LeRobotFeatureNorm {
  std::string key;  // "observation.state" or "action"
  LeRobotNormMode mode = LeRobotNormMode::Identity;
  std::vector<float> a, b;  // mean & std, min & max, q01 & q99, q10 & q90
  float eps = 1e-8f;
  bool legacy = false;  // pre-rewrite Normalize module: MIN_MAX adds 1e-8 to every denominator
  std::string source;   // the file the stats came from (errors)

  // Width of the stats; unbounded for IDENTITY.
  size_t width() const;
  // x may be narrower than the stats (the first values are used), never wider: that throws
  // naming the source and key.
  std::vector<double> normalize(const std::vector<double>& x) const;
  // Inverse on rows of width `dim` in place; only the first width() values of a row (LeRobot cuts
  // π0's padded actions to the feature's width before unnormalising), the rest pass through.
  void unnormalize_rows(double* x, size_t rows, size_t dim) const;
  // The inverse of unnormalize_rows (robot-space actions back into model space, float32). A
  // dimension whose unnormaliser maps everything to one value (MEAN_STD std 0, legacy MIN_MAX
  // min = max) has no inverse: it becomes 0, the middle of the model's range.
  void normalize_rows(double* x, size_t rows, size_t dim) const;
};

struct LeRobotNormalizer {
  LeRobotFeatureNorm state, action;
  std::string origin;  // where it came from, in words (logs, inspect)
};

// policy_preprocessor.json (+ policy_postprocessor.json when present: its unnormaliser's stats
// are what LeRobot applies to actions) in `dir`; nullopt when there is no policy_preprocessor.json.
// Throws naming the file and key for anything malformed or missing.
std::optional<LeRobotNormalizer> load_lerobot_processor_normalizer(const std::string& dir);

// The pre-rewrite Normalize / Unnormalize buffers in the checkpoint's weights; nullopt when it
// has none. Throws naming the tensor when they are incomplete or were never filled (LeRobot
// initialises them to inf).
std::optional<LeRobotNormalizer> load_lerobot_weight_normalizer(const std::string& dir);

}  // namespace pi0
