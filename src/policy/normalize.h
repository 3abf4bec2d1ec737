// openpi's norm_stats.json and the Normalize / Unnormalize transforms (docs/model.md §6.2): z-score for
// π0, quantiles for π0.5, in float64 like openpi (its stats are float64 numpy arrays).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace pi0 {

struct NormStats {  // one value per raw (unpadded) dimension; q01/q99 may be absent (z-score only)
  std::vector<double> mean, std, q01, q99;
  size_t size() const { return mean.size(); }
  bool has_quantiles() const { return !q01.empty(); }
};

// The file: {"norm_stats": {"state": {...}, "actions": {...}, ...}}.
struct NormStatsFile {
  std::string path;
  std::map<std::string, NormStats> stats;
  // Throws naming the file and key when absent.
  const NormStats& at(const std::string& key) const;
};

NormStatsFile parse_norm_stats(const std::string& json_text, const std::string& source);
NormStatsFile load_norm_stats(const std::string& path);
std::string norm_stats_to_json(const std::map<std::string, NormStats>& stats);

enum class NormMode { ZScore, Quantile };
// openpi: quantiles iff model_type != PI0 (π0.5 and FAST); plain π0 uses z-score.
inline NormMode norm_mode_for(bool pi05) { return pi05 ? NormMode::Quantile : NormMode::ZScore; }
const char* norm_mode_name(NormMode m);

// Normalize: x may be shorter than the stats (openpi truncates the stats to x's width), never
// longer (numpy would fail to broadcast): that throws naming `what` and both widths.
//   z-score:  (x − mean) / (std + 1e-6)
//   quantile: (x − q01) / (q99 − q01 + 1e-6) · 2 − 1
std::vector<double> normalize(const std::vector<double>& x, const NormStats& s, NormMode mode, const std::string& what);

// Unnormalize rows of width `dim` in place (e.g. [H, action_dim] actions after padding):
//   z-score:  x·(std + 1e-6) + mean, with the stats padded by mean 0 / std 1 beyond their width
//             (so such dims come back as x·(1 + 1e-6), exactly as openpi computes them);
//   quantile: (x + 1)/2·(q99 − q01 + 1e-6) + q01 on the first len(q01) dims; the rest pass through.
void unnormalize_rows(double* x, size_t rows, size_t dim, const NormStats& s, NormMode mode);
// The exact inverse of unnormalize_rows, same padding and truncation (real-time chunking maps the
// previous chunk's robot actions back into model space with it).
void normalize_rows(double* x, size_t rows, size_t dim, const NormStats& s, NormMode mode);

}  // namespace pi0
