#include "policy/normalize.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "io/tensor_files.h"
#include "pi0/error.h"

namespace pi0 {

using json = nlohmann::json;

namespace {

std::vector<double> read_vec(const json& j, const std::string& key, const std::string& field, const std::string& src,
                             bool required) {
  if (!j.contains(field) || j[field].is_null()) {
    if (required)
      throw Error(ErrorInfo{.message = "norm stats entry lacks a required field", .file = src, .field = key + "." + field,
                   .expected = "a list of numbers", .got = "nothing"});
    return {};
  }
  const json& a = j[field];
  if (!a.is_array())
    throw Error(ErrorInfo{.message = "norm stats field must be a list of numbers", .file = src, .field = key + "." + field,
                 .expected = "array", .got = a.type_name()});
  std::vector<double> v;
  v.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number())
      throw Error(ErrorInfo{.message = "norm stats value must be a number", .file = src,
                   .field = key + "." + field + "[" + std::to_string(i) + "]", .expected = "number", .got = a[i].dump()});
    const double d = a[i].get<double>();
    if (!std::isfinite(d))
      throw Error(ErrorInfo{.message = "norm stats value is not finite", .file = src,
                   .field = key + "." + field + "[" + std::to_string(i) + "]", .got = a[i].dump()});
    v.push_back(d);
  }
  return v;
}

}  // namespace

const NormStats& NormStatsFile::at(const std::string& key) const {
  auto it = stats.find(key);
  if (it == stats.end()) {
    std::string have;
    for (const auto& [k, v] : stats) have += (have.empty() ? "" : ", ") + k;
    throw Error(ErrorInfo{.message = "norm stats lack an entry", .file = path, .field = "norm_stats." + key,
                 .expected = key, .got = have.empty() ? "no entries" : have});
  }
  return it->second;
}

NormStatsFile parse_norm_stats(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorInfo{.message = std::string("invalid JSON: ") + e.what(), .file = src});
  }
  // openpi writes {"norm_stats": {...}}; accept the bare inner object too (hand-written files).
  const json* root = &j;
  if (j.is_object() && j.contains("norm_stats")) root = &j["norm_stats"];
  if (!root->is_object())
    throw Error(ErrorInfo{.message = "norm stats must be a JSON object of {\"state\": ..., \"actions\": ...}", .file = src,
                 .field = "norm_stats"});
  NormStatsFile f;
  f.path = src;
  for (auto it = root->begin(); it != root->end(); ++it) {
    const std::string& key = it.key();
    if (!it->is_object())
      throw Error(ErrorInfo{.message = "norm stats entry must be an object", .file = src, .field = key,
                   .expected = "{\"mean\": [...], \"std\": [...], ...}", .got = it->type_name()});
    NormStats s;
    s.mean = read_vec(*it, key, "mean", src, true);
    s.std = read_vec(*it, key, "std", src, true);
    s.q01 = read_vec(*it, key, "q01", src, false);
    s.q99 = read_vec(*it, key, "q99", src, false);
    auto same = [&](const std::vector<double>& v, const char* name) {
      if (!v.empty() && v.size() != s.mean.size())
        throw Error(ErrorInfo{.message = "norm stats fields differ in length", .file = src, .field = key + "." + name,
                     .expected = std::to_string(s.mean.size()) + " (as mean)", .got = std::to_string(v.size())});
    };
    same(s.std, "std");
    same(s.q01, "q01");
    same(s.q99, "q99");
    if (s.q01.empty() != s.q99.empty())
      throw Error(ErrorInfo{.message = "norm stats need both q01 and q99, or neither", .file = src, .field = key});
    // Normalize divides by std + 1e-6 and by q99 − q01 + 1e-6: a negative std or q99 below q01
    // can make that zero (inf/NaN actions) and is never what openpi computes.
    for (size_t i = 0; i < s.std.size(); ++i)
      if (s.std[i] < 0)
        throw Error(ErrorInfo{.message = "norm stats std must not be negative", .file = src,
                     .field = key + ".std[" + std::to_string(i) + "]", .expected = ">= 0", .got = std::to_string(s.std[i])});
    for (size_t i = 0; i < s.q01.size(); ++i)
      if (s.q99[i] < s.q01[i])
        throw Error(ErrorInfo{.message = "norm stats q99 is below q01", .file = src,
                     .field = key + ".q99[" + std::to_string(i) + "]",
                     .expected = ">= q01 = " + std::to_string(s.q01[i]), .got = std::to_string(s.q99[i])});
    f.stats[key] = std::move(s);
  }
  return f;
}

NormStatsFile load_norm_stats(const std::string& path) {
  return parse_norm_stats(read_text_file(path), path);
}

std::string norm_stats_to_json(const std::map<std::string, NormStats>& stats) {
  json inner = json::object();
  for (const auto& [k, s] : stats) {
    json e = {{"mean", s.mean}, {"std", s.std}};
    if (s.has_quantiles()) {
      e["q01"] = s.q01;
      e["q99"] = s.q99;
    }
    inner[k] = e;
  }
  return json{{"norm_stats", inner}}.dump(2) + "\n";
}

const char* norm_mode_name(NormMode m) { return m == NormMode::ZScore ? "z-score" : "quantile"; }

std::vector<double> normalize(const std::vector<double>& x, const NormStats& s, NormMode mode, const std::string& what) {
  if (x.size() > s.size())
    throw Error(ErrorInfo{.message = what + " is wider than its norm stats", .field = what,
                 .expected = "at most " + std::to_string(s.size()) + " values (the norm stats' width)",
                 .got = std::to_string(x.size())});
  if (mode == NormMode::Quantile && !s.has_quantiles())
    throw Error(ErrorInfo{.message = "quantile normalisation (pi0.5) needs q01 and q99 in the norm stats", .field = what + ".q01"});
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = mode == NormMode::ZScore ? (x[i] - s.mean[i]) / (s.std[i] + 1e-6)
                                    : (x[i] - s.q01[i]) / (s.q99[i] - s.q01[i] + 1e-6) * 2.0 - 1.0;
  return y;
}

void unnormalize_rows(double* x, size_t rows, size_t dim, const NormStats& s, NormMode mode) {
  if (mode == NormMode::Quantile && !s.has_quantiles())
    throw Error(ErrorInfo{.message = "quantile unnormalisation (pi0.5) needs q01 and q99 in the norm stats", .field = "q01"});
  // openpi's z-score pads the stats to x's width; its quantile inverse truncates x to the stats'.
  for (size_t r = 0; r < rows; ++r) {
    double* row = x + r * dim;
    for (size_t i = 0; i < dim; ++i) {
      if (mode == NormMode::ZScore) {
        const double mean = i < s.size() ? s.mean[i] : 0.0, sd = i < s.size() ? s.std[i] : 1.0;
        row[i] = row[i] * (sd + 1e-6) + mean;
      } else if (i < s.q01.size()) {
        row[i] = (row[i] + 1.0) / 2.0 * (s.q99[i] - s.q01[i] + 1e-6) + s.q01[i];
      }
    }
  }
}

void normalize_rows(double* x, size_t rows, size_t dim, const NormStats& s, NormMode mode) {
  if (mode == NormMode::Quantile && !s.has_quantiles())
    throw Error(ErrorInfo{.message = "quantile normalisation (pi0.5) needs q01 and q99 in the norm stats", .field = "q01"});
  for (size_t r = 0; r < rows; ++r) {
    double* row = x + r * dim;
    for (size_t i = 0; i < dim; ++i) {
      if (mode == NormMode::ZScore) {
        const double mean = i < s.size() ? s.mean[i] : 0.0, sd = i < s.size() ? s.std[i] : 1.0;
        row[i] = (row[i] - mean) / (sd + 1e-6);
      } else if (i < s.q01.size()) {
        row[i] = (row[i] - s.q01[i]) / (s.q99[i] - s.q01[i] + 1e-6) * 2.0 - 1.0;
      }
    }
  }
}

}  // namespace pi0
