#include "policy/lerobot_normalizer.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/tensor_files.h"
#include "pi0/error.h"

namespace pi0 {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The stats each mode reads, in LeRobot's stat names.
std::pair<const char*, const char*> stat_names(LeRobotNormMode m) {
  switch (m) {
    case LeRobotNormMode::MeanStd: return {"mean", "std"};
    case LeRobotNormMode::MinMax: return {"min", "max"};
    case LeRobotNormMode::Quantiles: return {"q01", "q99"};
    case LeRobotNormMode::Quantile10: return {"q10", "q90"};
    case LeRobotNormMode::Identity: break;
  }
  return {"", ""};
}

LeRobotNormMode parse_mode(const json& v, const std::string& file, const std::string& field) {
  const std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  for (auto m : {LeRobotNormMode::Identity, LeRobotNormMode::MeanStd, LeRobotNormMode::MinMax,
                 LeRobotNormMode::Quantiles, LeRobotNormMode::Quantile10})
    if (s == lerobot_norm_mode_name(m)) return m;
  throw Error({.message = "unknown LeRobot normalisation mode", .file = file, .field = field,
               .expected = "IDENTITY, MEAN_STD, MIN_MAX, QUANTILES or QUANTILE10", .got = s});
}

// A stats vector: a 1-D float tensor of finite values.
std::vector<float> stat_vector(const Tensor& t, const std::string& file, const std::string& name) {
  if (t.shape().size() != 1)
    throw Error({.message = "normalisation stats must be a vector", .file = file, .tensor = name, .expected = "[D]",
                 .got = shape_str(t.shape())});
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64 && t.dtype() != DType::BF16 && t.dtype() != DType::F16)
    throw Error({.message = "normalisation stats must be floating point", .file = file, .tensor = name,
                 .expected = "F32", .got = dtype_name(t.dtype())});
  const Tensor f = t.dtype() == DType::F32 ? t : t.to(DType::F32);  // LeRobot loads them as float32
  std::vector<float> v(f.data<float>(), f.data<float>() + f.numel());
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error({.message = std::isinf(v[i]) ? "normalisation stats were never filled (LeRobot starts them at inf)"
                                               : "normalisation stats are not finite",
                   .file = file, .tensor = name + "[" + std::to_string(i) + "]", .expected = "finite values",
                   .got = std::to_string(v[i])});
  return v;
}

// Fills f.a / f.b from `lookup(stat name)` (a tensor, or nullopt when absent) for f.mode.
template <class Lookup>
void fill_stats(LeRobotFeatureNorm& f, const std::string& prefix, const Lookup& lookup) {
  if (f.mode == LeRobotNormMode::Identity) return;
  const auto [an, bn] = stat_names(f.mode);
  std::vector<float>* dst[2] = {&f.a, &f.b};
  const char* names[2] = {an, bn};
  for (int k = 0; k < 2; ++k) {
    const std::string name = prefix + names[k];
    const std::optional<Tensor> t = lookup(names[k]);
    if (!t)
      throw Error({.message = std::string(lerobot_norm_mode_name(f.mode)) + " normalisation of " + f.key +
                              " needs this stat and the file lacks it",
                   .file = f.source, .tensor = name});
    *dst[k] = stat_vector(*t, f.source, name);
  }
  if (f.a.size() != f.b.size())
    throw Error({.message = "normalisation stats of one feature differ in width", .file = f.source,
                 .tensor = prefix + names[1], .expected = std::to_string(f.a.size()) + " (as " + prefix + names[0] + ")",
                 .got = std::to_string(f.b.size())});
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw Error({.message = std::string("invalid JSON: ") + e.what(), .file = path});
  }
}

// The step of a processor pipeline file registered as `registry` (its config and stats file).
struct Step {
  json config;
  std::string state_file;  // full path
  std::string field;       // "steps[i]" for messages
};

std::optional<Step> find_step(const json& j, const std::string& registry, const std::string& path) {
  if (!j.is_object() || !j.contains("steps") || !j["steps"].is_array())
    throw Error({.message = "LeRobot processor file has no list of steps", .file = path, .field = "steps",
                 .expected = "an array", .got = j.is_object() && j.contains("steps") ? j["steps"].type_name() : "nothing"});
  const json& steps = j["steps"];
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    if (!s.is_object() || s.value("registry_name", json()) != registry) continue;
    Step st;
    st.field = "steps[" + std::to_string(i) + "]";
    st.config = s.value("config", json::object());
    if (!st.config.is_object())
      throw Error({.message = "processor step config must be an object", .file = path, .field = st.field + ".config"});
    if (!s.contains("state_file") || !s["state_file"].is_string())
      throw Error({.message = "the " + registry + " step names no stats file (it was saved without stats)", .file = path,
                   .field = st.field + ".state_file", .expected = "a .safetensors file name"});
    const std::string name = s["state_file"].get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos)
      throw Error({.message = "stats file must be a file beside the processor file", .file = path,
                   .field = st.field + ".state_file", .got = name});
    st.state_file = (fs::path(path).parent_path() / name).string();
    return st;
  }
  return std::nullopt;
}

// One feature of a (un)normaliser step: its mode from the feature's type and the step's norm_map
// (LeRobot: a type absent from norm_map, or a feature the step does not list, is left alone).
LeRobotFeatureNorm feature_from_step(const Step& st, const std::string& key, const std::string& default_type,
                                     const std::string& path, const SafeTensorsFile& stats) {
  LeRobotFeatureNorm f;
  f.key = key;
  f.source = st.state_file;
  const json& c = st.config;
  if (c.contains("eps")) {
    if (!c["eps"].is_number())
      throw Error({.message = "eps must be a number", .file = path, .field = st.field + ".config.eps", .got = c["eps"].dump()});
    f.eps = c["eps"].get<float>();
  }
  std::string type = default_type;
  const json feats = c.value("features", json::object());
  if (feats.contains(key)) {
    const json& ft = feats[key];
    if (!ft.is_object() || !ft.contains("type") || !ft["type"].is_string())
      throw Error({.message = "feature has no type", .file = path, .field = st.field + ".config.features." + key + ".type",
                   .expected = "STATE, ACTION, ..."});
    type = ft["type"].get<std::string>();
  }
  if (type.empty()) return f;  // not a feature of this step
  const json nm = c.value("norm_map", json::object());
  if (nm.contains(type)) f.mode = parse_mode(nm[type], path, st.field + ".config.norm_map." + type);
  fill_stats(f, key + ".", [&](const char* stat) -> std::optional<Tensor> {
    const SafeTensorsEntry* e = stats.find(key + "." + stat);
    if (!e) return std::nullopt;
    return stats.tensor(*e);
  });
  return f;
}

}  // namespace

const char* lerobot_norm_mode_name(LeRobotNormMode m) {
  switch (m) {
    case LeRobotNormMode::Identity: return "IDENTITY";
    case LeRobotNormMode::MeanStd: return "MEAN_STD";
    case LeRobotNormMode::MinMax: return "MIN_MAX";
    case LeRobotNormMode::Quantiles: return "QUANTILES";
    case LeRobotNormMode::Quantile10: return "QUANTILE10";
  }
  return "?";
}

size_t LeRobotFeatureNorm::width() const {
  return mode == LeRobotNormMode::Identity ? std::numeric_limits<size_t>::max() : a.size();
}

std::vector<double> LeRobotFeatureNorm::normalize(const std::vector<double>& x) const {
  if (x.size() > width())
    throw Error({.message = key + " is wider than its LeRobot normalisation stats", .file = source, .tensor = key,
                 .expected = "at most " + std::to_string(width()) + " values", .got = std::to_string(x.size())});
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(std::fabs(x[i]) <= std::numeric_limits<float>::max()))
      throw Error({.message = key + " value does not fit float32, the type LeRobot normalises in", .file = source,
                   .tensor = key + "[" + std::to_string(i) + "]", .expected = "|value| <= 3.4e38",
                   .got = std::to_string(x[i])});
    const float v = static_cast<float>(x[i]);  // LeRobot's state is a float32 tensor
    float r = v;
    switch (mode) {
      case LeRobotNormMode::Identity: break;
      case LeRobotNormMode::MeanStd: r = (v - a[i]) / (b[i] + eps); break;
      case LeRobotNormMode::MinMax:
        if (legacy) {
          r = (v - a[i]) / (b[i] - a[i] + 1e-8f);
          r = r * 2.0f - 1.0f;
        } else {
          float d = b[i] - a[i];
          if (d == 0.0f) d = eps;
          r = 2.0f * (v - a[i]) / d - 1.0f;
        }
        break;
      case LeRobotNormMode::Quantiles:
      case LeRobotNormMode::Quantile10: {
        float d = b[i] - a[i];
        if (d == 0.0f) d = eps;
        r = 2.0f * (v - a[i]) / d - 1.0f;
        break;
      }
    }
    y[i] = r;
  }
  return y;
}

void LeRobotFeatureNorm::unnormalize_rows(double* x, size_t rows, size_t dim) const {
  if (mode == LeRobotNormMode::Identity) return;
  const size_t n = std::min(dim, a.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(x[r * dim + i]);  // π0's actions are float32 (finite, checked by the model)
      float o = v;
      switch (mode) {
        case LeRobotNormMode::Identity: break;
        case LeRobotNormMode::MeanStd: o = v * b[i] + a[i]; break;
        case LeRobotNormMode::MinMax:
          if (legacy) {
            o = (v + 1.0f) / 2.0f;
            o = o * (b[i] - a[i]) + a[i];
          } else {
            float d = b[i] - a[i];
            if (d == 0.0f) d = eps;
            o = (v + 1.0f) / 2.0f * d + a[i];
          }
          break;
        case LeRobotNormMode::Quantiles:
        case LeRobotNormMode::Quantile10: {
          float d = b[i] - a[i];
          if (d == 0.0f) d = eps;
          o = (v + 1.0f) * d / 2.0f + a[i];
          break;
        }
      }
      x[r * dim + i] = o;
    }
}

void LeRobotFeatureNorm::normalize_rows(double* x, size_t rows, size_t dim) const {
  if (mode == LeRobotNormMode::Identity) return;
  const size_t n = std::min(dim, a.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) {
      const float o = static_cast<float>(x[r * dim + i]);
      float v = o;
      float scale = 1.0f;  // v = (o − a)/scale·k + c, per mode, mirroring unnormalize_rows
      switch (mode) {
        case LeRobotNormMode::Identity: break;
        case LeRobotNormMode::MeanStd:
          v = b[i] == 0.0f ? 0.0f : (o - a[i]) / b[i];
          break;
        case LeRobotNormMode::MinMax:
          scale = legacy ? b[i] - a[i] : (b[i] - a[i] == 0.0f ? eps : b[i] - a[i]);
          v = scale == 0.0f ? 0.0f : (o - a[i]) / scale * 2.0f - 1.0f;
          break;
        case LeRobotNormMode::Quantiles:
        case LeRobotNormMode::Quantile10:
          scale = b[i] - a[i] == 0.0f ? eps : b[i] - a[i];
          v = (o - a[i]) * 2.0f / scale - 1.0f;
          break;
      }
      x[r * dim + i] = v;
    }
}

std::optional<LeRobotNormalizer> load_lerobot_processor_normalizer(const std::string& dir) {
  const std::string pre_path = (fs::path(dir) / "policy_preprocessor.json").string();
  if (!fs::exists(pre_path)) return std::nullopt;
  const json pre = read_json(pre_path);
  const std::optional<Step> norm = find_step(pre, "normalizer_processor", pre_path);
  if (!norm)
    throw Error({.message = "LeRobot preprocessor has no normalizer_processor step", .file = pre_path, .field = "steps",
                 .expected = "a step with \"registry_name\": \"normalizer_processor\""});
  // LeRobot's relative actions (state subtracted before normalising, added back after) are a
  // training choice this engine does not replay; the robot config's delta dims are openpi's.
  const json& steps = pre["steps"];
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].is_object() && steps[i].value("registry_name", json()) == "relative_actions_processor" &&
        steps[i].contains("config") && steps[i]["config"].is_object() && steps[i]["config"].contains("enabled") &&
        steps[i]["config"]["enabled"] == true)
      throw Error({.message = "this checkpoint was trained on LeRobot's relative actions, which pi0.cpp does not apply "
                              "(pass openpi norm stats with --norm-stats and a robot whose config has the delta dims)",
                   .file = pre_path, .field = "steps[" + std::to_string(i) + "].config.enabled", .expected = "false",
                   .got = "true"});
  const auto pre_stats = SafeTensorsFile::open(norm->state_file);
  LeRobotNormalizer n;
  // π0 / π0.5 read the state from "observation.state"; the action feature is "action".
  n.state = feature_from_step(*norm, "observation.state", "", pre_path, *pre_stats);
  n.origin = "LeRobot " + fs::path(pre_path).filename().string();
  // Actions: the postprocessor's unnormaliser is what LeRobot applies to the policy's output.
  const std::string post_path = (fs::path(dir) / "policy_postprocessor.json").string();
  std::optional<Step> unnorm;
  if (fs::exists(post_path)) unnorm = find_step(read_json(post_path), "unnormalizer_processor", post_path);
  if (unnorm) {
    const auto post_stats = SafeTensorsFile::open(unnorm->state_file);
    n.action = feature_from_step(*unnorm, "action", "ACTION", post_path, *post_stats);
    n.origin += " + " + fs::path(post_path).filename().string();
  } else {
    n.action = feature_from_step(*norm, "action", "ACTION", pre_path, *pre_stats);
  }
  return n;
}

std::optional<LeRobotNormalizer> load_lerobot_weight_normalizer(const std::string& dir) {
  const TensorFiles tf = open_tensor_files(dir, false);
  if (tf.normalizer_buffers.empty()) return std::nullopt;
  LeRobotNormalizer n;
  n.origin = "LeRobot normaliser buffers in the weights";
  // The input normaliser's state stats; the output unnormaliser's action stats.
  for (const auto& entry : {std::pair{&n.state, std::string("normalize_inputs.buffer_observation_state.")},
                            std::pair{&n.action, std::string("unnormalize_outputs.buffer_action.")}}) {
    // Named copies, not structured bindings: lambdas below capture them (clang 14 refuses bindings).
    LeRobotFeatureNorm* f = entry.first;
    const std::string& prefix = entry.second;
    f->key = f == &n.state ? "observation.state" : "action";
    f->legacy = true;
    f->eps = 1e-8f;
    auto has = [&](const char* stat) { return tf.normalizer_buffers.count(prefix + stat) > 0; };
    // The old modules register mean/std for MEAN_STD and min/max for MIN_MAX.
    f->mode = has("mean") || has("std") ? LeRobotNormMode::MeanStd
              : has("min") || has("max") ? LeRobotNormMode::MinMax
                                         : LeRobotNormMode::Identity;
    if (f->mode == LeRobotNormMode::Identity) {
      std::string have;
      for (const auto& [k, _] : tf.normalizer_buffers) have += (have.empty() ? "" : ", ") + k;
      throw Error({.message = "the weights carry LeRobot normaliser buffers but none for " + f->key, .file = tf.where,
                   .tensor = prefix + "mean", .expected = prefix + "{mean,std} or {min,max}", .got = have});
    }
    f->source = tf.where;
    fill_stats(*f, prefix, [&](const char* stat) -> std::optional<Tensor> {
      auto it = tf.normalizer_buffers.find(prefix + stat);
      if (it == tf.normalizer_buffers.end()) return std::nullopt;
      return it->second.file->tensor(*it->second.entry);
    });
  }
  return n;
}

}  // namespace pi0
