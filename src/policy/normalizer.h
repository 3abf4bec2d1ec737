// Which normalisation a policy applies, and where its stats come from: openpi's
// assets/<asset_id>/norm_stats.json (or --norm-stats) first, then LeRobot's saved processor files,
// then the normaliser buffers LeRobot's pre-rewrite policies kept in the weights. The policy sees
// only this interface; the formulas are the source's own (policy/normalize.h, policy/lerobot_normalizer.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "policy/robots.h"

namespace pi0 {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // The robot's raw state (after its encoding) into model space; throws when wider than the stats.
  virtual std::vector<double> normalize_state(const std::vector<double>& state) const = 0;
  // Model-space rows of width `dim` back into robot units, in place.
  virtual void unnormalize_actions(double* x, size_t rows, size_t dim) const = 0;
  virtual void unnormalize_state(double* x, size_t dim) const = 0;
  // The inverse of unnormalize_actions: robot-unit rows back into model space, in place.
  virtual void normalize_actions(double* x, size_t rows, size_t dim) const = 0;
  // Widths of the stats (SIZE_MAX when a feature is not normalised).
  virtual size_t state_width() const = 0;
  virtual size_t action_width() const = 0;
  const std::string& path() const { return path_; }          // the file errors name
  const std::string& description() const { return description_; }  // source and modes, in words

 protected:
  std::string path_, description_;
};

// The first source that exists, in the order above; `norm_stats_path` (--norm-stats) may be an
// openpi norm_stats.json, a directory holding one, or a directory holding LeRobot's
// policy_preprocessor.json. Throws naming every place looked when there is none.
std::unique_ptr<Normalizer> load_normalizer(const std::string& checkpoint_dir, const std::string& norm_stats_path,
                                            const RobotConfig& robot, bool pi05);

// For `pi0 inspect` (no robot given): every normaliser source in the directory, in the order a
// policy prefers them, one line each; a source that fails to load says why.
std::vector<std::string> describe_normalizers(const std::string& checkpoint_dir);

}  // namespace pi0
