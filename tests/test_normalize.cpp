// openpi's Normalize / Unnormalize (docs/model.md §6.2) and norm_stats.json parsing.
#include <gtest/gtest.h>

#include <cmath>

#include "pi0/error.h"
#include "policy/normalize.h"

using namespace pi0;

namespace {
NormStats stats3() {
  NormStats s;
  s.mean = {0.5, -2.0, 10.0};
  s.std = {0.1, 3.0, 0.0};
  s.q01 = {0.0, -8.0, 9.0};
  s.q99 = {1.0, 4.0, 11.0};
  return s;
}
}  // namespace

TEST(Normalize, Formulas) {
  const NormStats s = stats3();
  auto z = normalize({0.7, 1.0, 10.0}, s, NormMode::ZScore, "state");
  EXPECT_DOUBLE_EQ(z[0], (0.7 - 0.5) / (0.1 + 1e-6));
  EXPECT_DOUBLE_EQ(z[1], (1.0 + 2.0) / (3.0 + 1e-6));
  EXPECT_DOUBLE_EQ(z[2], 0.0);  // std 0 is guarded by the 1e-6
  auto q = normalize({0.25, 4.0, 9.0}, s, NormMode::Quantile, "state");
  EXPECT_DOUBLE_EQ(q[0], 0.25 / (1.0 + 1e-6) * 2.0 - 1.0);
  EXPECT_DOUBLE_EQ(q[1], 12.0 / (12.0 + 1e-6) * 2.0 - 1.0);
  EXPECT_DOUBLE_EQ(q[2], -1.0);
  // Narrower input: openpi truncates the stats.
  EXPECT_EQ(normalize({0.5}, s, NormMode::ZScore, "state").size(), 1u);
}

TEST(Normalize, RoundTripWithinRelative1e6) {
  const NormStats s = stats3();
  const std::vector<double> x = {0.123, -7.5, 10.5};
  for (NormMode m : {NormMode::ZScore, NormMode::Quantile}) {
    std::vector<double> y = normalize(x, s, m, "state");
    unnormalize_rows(y.data(), 1, y.size(), s, m);
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_LE(std::fabs(y[i] - x[i]), 1e-6 * std::max(1.0, std::fabs(x[i]))) << norm_mode_name(m) << " dim " << i;
  }
}

TEST(Normalize, UnnormalizeBeyondStatsAsOpenpi) {
  const NormStats s = stats3();
  // Two rows of width 5 (padded actions): dims 3, 4 lie beyond the stats.
  std::vector<double> z = {0, 0, 0, 2.0, -3.0, 1, 1, 1, 0.5, 0.25};
  unnormalize_rows(z.data(), 2, 5, s, NormMode::ZScore);
  EXPECT_DOUBLE_EQ(z[0], 0.5);
  EXPECT_DOUBLE_EQ(z[3], 2.0 * (1.0 + 1e-6));  // padded stats: mean 0, std 1 (+1e-6)
  EXPECT_DOUBLE_EQ(z[4], -3.0 * (1.0 + 1e-6));
  EXPECT_DOUBLE_EQ(z[5], 1.0 * (0.1 + 1e-6) + 0.5);
  std::vector<double> q = {-1, 1, 0, 2.0, -3.0};
  unnormalize_rows(q.data(), 1, 5, s, NormMode::Quantile);
  EXPECT_DOUBLE_EQ(q[0], 0.0);
  EXPECT_DOUBLE_EQ(q[1], 1.0 * (12.0 + 1e-6) - 8.0);
  EXPECT_DOUBLE_EQ(q[3], 2.0);  // passed through unchanged
  EXPECT_DOUBLE_EQ(q[4], -3.0);
}

TEST(Normalize, ParseOpenpiFile) {
  const std::string text = R"({"norm_stats": {"state": {"mean": [1, 2], "std": [3, 4], "q01": [0, 1], "q99": [5, 6]},
                               "actions": {"mean": [0.5], "std": [1.5]}}})";
  NormStatsFile f = parse_norm_stats(text, "norm_stats.json");
  EXPECT_EQ(f.at("state").q99, (std::vector<double>{5, 6}));
  EXPECT_FALSE(f.at("actions").has_quantiles());
  // Written and read back unchanged.
  NormStatsFile g = parse_norm_stats(norm_stats_to_json(f.stats), "again");
  EXPECT_EQ(g.at("state").mean, f.at("state").mean);
  EXPECT_EQ(g.at("actions").std, f.at("actions").std);
}

TEST(Normalize, BadInputIsAClearError) {
  auto msg = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(msg([] { parse_norm_stats("{", "ns.json"); }).find("ns.json"), std::string::npos);
  EXPECT_NE(msg([] { parse_norm_stats(R"({"norm_stats": {"state": {"mean": [1]}}})", "ns.json"); }).find("state.std"),
            std::string::npos);
  EXPECT_NE(msg([] { parse_norm_stats(R"({"norm_stats": {"state": {"mean": [1, 2], "std": [1]}}})", "ns.json"); })
                .find("state.std"), std::string::npos);
  EXPECT_NE(msg([] { parse_norm_stats(R"({"norm_stats": {"state": {"mean": ["a"], "std": [1]}}})", "ns.json"); })
                .find("state.mean[0]"), std::string::npos);
  // A negative std (or q99 < q01) could zero the divisor: std = -1e-6 would normalise to inf.
  EXPECT_NE(msg([] { parse_norm_stats(R"({"state": {"mean": [0, 0], "std": [1, -1e-6]}})", "ns.json"); })
                .find("ns.json: field 'state.std[1]': norm stats std must not be negative"), std::string::npos);
  EXPECT_NE(msg([] { parse_norm_stats(R"({"state": {"mean": [0], "std": [1], "q01": [2], "q99": [1]}})", "ns.json"); })
                .find("state.q99[0]"), std::string::npos);
  NormStatsFile f = parse_norm_stats(R"({"norm_stats": {"state": {"mean": [1], "std": [1]}}})", "ns.json");
  EXPECT_NE(msg([&] { f.at("actions"); }).find("actions"), std::string::npos);
  // State wider than its stats; quantiles requested but absent.
  EXPECT_NE(msg([&] { normalize({1, 2}, f.at("state"), NormMode::ZScore, "state"); }).find("at most 1"),
            std::string::npos);
  EXPECT_NE(msg([&] { normalize({1}, f.at("state"), NormMode::Quantile, "state"); }).find("q01"), std::string::npos);
  EXPECT_NE(msg([] { load_norm_stats("/nonexistent/norm_stats.json"); }).find("/nonexistent/norm_stats.json"),
            std::string::npos);
}
