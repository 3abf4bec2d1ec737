#include "policy/normalizer.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "pi0/error.h"
#include "policy/lerobot_normalizer.h"
#include "policy/normalize.h"

namespace pi0 {

namespace fs = std::filesystem;

namespace {

class OpenpiNormalizer : public Normalizer {
 public:
  OpenpiNormalizer(NormStatsFile f, NormMode mode) : stats_(std::move(f)), mode_(mode) {
    for (const char* key : {"state", "actions"})
      if (mode_ == NormMode::Quantile && !stats_.at(key).has_quantiles())
        throw Error(ErrorInfo{.message = "pi0.5 normalises with quantiles but the norm stats have none",
                              .file = stats_.path, .field = std::string(key) + ".q01"});
    path_ = stats_.path;
    description_ = std::string("openpi norm stats (") + norm_mode_name(mode_) + "): " + stats_.path;
  }
  std::vector<double> normalize_state(const std::vector<double>& s) const override {
    return normalize(s, stats_.at("state"), mode_, "state");
  }
  void unnormalize_actions(double* x, size_t rows, size_t dim) const override {
    unnormalize_rows(x, rows, dim, stats_.at("actions"), mode_);
  }
  void unnormalize_state(double* x, size_t dim) const override { unnormalize_rows(x, 1, dim, stats_.at("state"), mode_); }
  void normalize_actions(double* x, size_t rows, size_t dim) const override {
    normalize_rows(x, rows, dim, stats_.at("actions"), mode_);
  }
  size_t state_width() const override { return stats_.at("state").size(); }
  size_t action_width() const override { return stats_.at("actions").size(); }

 private:
  NormStatsFile stats_;
  NormMode mode_;
};

class LeRobotNormalizerAdapter : public Normalizer {
 public:
  explicit LeRobotNormalizerAdapter(LeRobotNormalizer n) : n_(std::move(n)) {
    path_ = n_.action.source;
    description_ = n_.origin + " (" + n_.state.key + " " + lerobot_norm_mode_name(n_.state.mode) + ", " + n_.action.key +
                   " " + lerobot_norm_mode_name(n_.action.mode) + "): " + n_.action.source;
  }
  std::vector<double> normalize_state(const std::vector<double>& s) const override { return n_.state.normalize(s); }
  void unnormalize_actions(double* x, size_t rows, size_t dim) const override { n_.action.unnormalize_rows(x, rows, dim); }
  void unnormalize_state(double* x, size_t dim) const override { n_.state.unnormalize_rows(x, 1, dim); }
  void normalize_actions(double* x, size_t rows, size_t dim) const override { n_.action.normalize_rows(x, rows, dim); }
  size_t state_width() const override { return n_.state.width(); }
  size_t action_width() const override { return n_.action.width(); }

 private:
  LeRobotNormalizer n_;
};

std::unique_ptr<Normalizer> openpi(const fs::path& p, bool pi05) {
  return std::make_unique<OpenpiNormalizer>(load_norm_stats(p.string()), norm_mode_for(pi05));
}

}  // namespace

std::unique_ptr<Normalizer> load_normalizer(const std::string& ckpt, const std::string& given, const RobotConfig& robot,
                                            bool pi05) {
  if (!given.empty()) {
    if (fs::is_directory(given) && fs::exists(fs::path(given) / "policy_preprocessor.json"))
      return std::make_unique<LeRobotNormalizerAdapter>(*load_lerobot_processor_normalizer(given));
    const fs::path p = fs::is_directory(given) ? fs::path(given) / "norm_stats.json" : fs::path(given);
    if (!fs::exists(p))  // a FIFO or a device: refused by name when read (read_text_file)
      throw Error(ErrorInfo{.message = "norm stats not found (--norm-stats)", .file = p.string()});
    return openpi(p, pi05);
  }
  // openpi's layout: <checkpoint>/assets/<asset_id>/norm_stats.json.
  const fs::path p = fs::path(ckpt) / "assets" / robot.asset_id / "norm_stats.json";
  if (fs::is_regular_file(p)) return openpi(p, pi05);
  if (auto n = load_lerobot_processor_normalizer(ckpt)) return std::make_unique<LeRobotNormalizerAdapter>(std::move(*n));
  if (auto n = load_lerobot_weight_normalizer(ckpt)) return std::make_unique<LeRobotNormalizerAdapter>(std::move(*n));
  throw Error(ErrorInfo{.message = "norm stats for robot " + robot.name + " not found: openpi puts them at "
                                   "<checkpoint>/assets/<asset_id>/norm_stats.json, LeRobot saves policy_preprocessor.json "
                                   "and its .safetensors beside the weights (or older LeRobot, normalize_inputs.* tensors "
                                   "in them); or pass --norm-stats",
                        .file = p.string(), .field = "asset_id", .got = robot.asset_id});
}

std::vector<std::string> describe_normalizers(const std::string& ckpt) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path assets = fs::path(ckpt) / "assets";
  if (fs::is_directory(assets, ec)) {
    // asset ids may hold a slash (physical-intelligence/libero): look at every depth.
    std::vector<std::string> ids;
    for (const auto& e : fs::recursive_directory_iterator(assets, ec))
      if (e.path().filename() == "norm_stats.json" && e.is_regular_file(ec))
        ids.push_back(fs::relative(e.path().parent_path(), assets, ec).string());
    std::sort(ids.begin(), ids.end());
    for (const auto& id : ids) out.push_back("openpi assets/" + id + "/norm_stats.json (for robots with asset_id " + id + ")");
  }
  const auto lerobot = [&](auto load) {
    try {
      if (auto n = load(ckpt)) out.push_back(LeRobotNormalizerAdapter(std::move(*n)).description());
    } catch (const Error& e) {
      out.push_back(std::string("LeRobot normaliser that does not load: ") + e.what());
    }
  };
  lerobot(load_lerobot_processor_normalizer);
  lerobot(load_lerobot_weight_normalizer);
  return out;
}

}  // namespace pi0
