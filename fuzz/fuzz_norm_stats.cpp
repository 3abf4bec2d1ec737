// libFuzzer target: any text as norm_stats.json, used as the policy front end uses it: the
// "state" and "actions" entries, Normalize on a state, Unnormalize on an action chunk, in both
// modes (z-score for π0, quantiles for π0.5). Must end in a clean pi0::Error, or, when every
// statistic is of sane magnitude, finite results: a file the parser accepts must not turn a
// finite observation into inf/NaN actions.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "pi0/error.h"
#include "policy/normalize.h"

namespace {

bool sane(const pi0::NormStats& s) {
  for (const auto* v : {&s.mean, &s.std, &s.q01, &s.q99})
    for (double x : *v)
      if (std::fabs(x) > 1e6) return false;
  return true;
}

void check_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pi0::NormStatsFile f = pi0::parse_norm_stats(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    const pi0::NormStats& state = f.at("state");
    const pi0::NormStats& actions = f.at("actions");
    for (pi0::NormMode mode : {pi0::NormMode::ZScore, pi0::NormMode::Quantile}) {
      try {
        std::vector<double> x(state.size());
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i % 7) - 3.0;
        const std::vector<double> y = pi0::normalize(x, state, mode, "state");
        const size_t dim = actions.size() + 3;  // padded wider than the stats, as the model's action_dim
        std::vector<double> a(4 * dim, 0.5);
        pi0::unnormalize_rows(a.data(), 4, dim, actions, mode);
        if (sane(state)) check_finite(y);
        if (sane(actions)) check_finite(a);
      } catch (const pi0::Error&) {  // e.g. quantile mode without q01/q99: the next mode still runs
      }
    }
  } catch (const pi0::Error&) {
  }
  return 0;
}
