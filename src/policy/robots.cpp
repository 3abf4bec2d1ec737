#include "policy/robots.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "io/tensor_files.h"
#include "pi0/error.h"

namespace pi0 {

using json = nlohmann::json;

int RobotConfig::state_dim() const {
  int n = 0;
  for (const auto& p : state) n += p.size;
  return n;
}

namespace {

// make_bool_mask(6, -1, 6, -1) etc.: n true entries for positive n, |n| false for negative.
std::vector<bool> bool_mask(std::initializer_list<int> runs) {
  std::vector<bool> m;
  for (int r : runs) m.insert(m.end(), static_cast<size_t>(std::abs(r)), r > 0);
  return m;
}

// ---- ALOHA adapt_to_pi (openpi aloha_policy.py) -------------------------------------------
// The π base models were trained on the π runtime's conventions: some joints have the opposite
// sign, and grippers are angles normalised to the π encoder range instead of ALOHA's linear
// finger positions.
constexpr double kAlohaFlip[14] = {1, -1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1};
constexpr int kAlohaGrippers[2] = {6, 13};

double gripper_to_angular(double v) {
  v = v * (0.05800 - 0.01844) + 0.01844;  // ALOHA's normalised position -> metres (open/closed)
  // Inverse of the Interbotix angular-to-linear linkage (arm 0.036 m, horn 0.022 m).
  const double arm = 0.036, horn = 0.022;
  const double s = (horn * horn + v * v - arm * arm) / (2 * horn * v);
  v = std::asin(std::clamp(s, -1.0, 1.0));
  return (v - 0.5476) / (1.6296 - 0.5476);  // π's normalised encoder range, in radians
}

double gripper_from_angular(double v) {
  v = v + 0.5476;
  return (v - -0.6213) / (1.4910 - -0.6213);  // ALOHA's gripper joint range (open/closed)
}

double gripper_from_angular_inverse(double v) { return v * (1.4910 - -0.6213) + -0.6213 - 0.5476; }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Flattens a numeric observation value (tensor of any numeric dtype, list of numbers, number).
std::vector<double> numbers(const Value& v, const std::string& key) {
  std::vector<double> out;
  if (const Tensor* t = v.get_if<Tensor>()) {
    if (t->ndim() > 1)
      throw Error(ErrorInfo{.message = "state value must be a vector", .field = key, .expected = "1-D array or scalar",
                   .got = shape_str(t->shape())});
    if (t->dtype() == DType::F64) {
      out.assign(t->data<double>(), t->data<double>() + t->numel());
    } else if (t->dtype() == DType::I64) {
      for (int64_t i = 0; i < t->numel(); ++i) out.push_back(static_cast<double>(t->data<int64_t>()[i]));
    } else if (t->dtype() == DType::BOOL) {
      for (int64_t i = 0; i < t->numel(); ++i) out.push_back(t->data<uint8_t>()[i] ? 1.0 : 0.0);
    } else {
      for (int64_t i = 0; i < t->numel(); ++i) out.push_back(t->get_f32(i));  // f32/bf16/f16/i32/u8: exact
    }
  } else if (const double* d = v.get_if<double>()) {
    out.push_back(*d);
  } else if (const int64_t* i = v.get_if<int64_t>()) {
    out.push_back(static_cast<double>(*i));
  } else if (const List* l = v.get_if<List>()) {
    for (size_t k = 0; k < l->size(); ++k) {
      const Value& e = (*l)[k];
      if (const double* d2 = e.get_if<double>()) out.push_back(*d2);
      else if (const int64_t* i2 = e.get_if<int64_t>()) out.push_back(static_cast<double>(*i2));
      else
        throw Error(ErrorInfo{.message = "state list must hold numbers", .field = key + "[" + std::to_string(k) + "]",
                     .expected = "number"});
    }
  } else {
    throw Error(ErrorInfo{.message = "state value must be numeric", .field = key,
                 .expected = "array, list of numbers or number"});
  }
  for (size_t k = 0; k < out.size(); ++k)
    if (!std::isfinite(out[k]))
      throw Error(ErrorInfo{.message = "state value is not finite", .field = key + "[" + std::to_string(k) + "]",
                   .expected = "a finite number", .got = std::isnan(out[k]) ? "nan" : (out[k] > 0 ? "inf" : "-inf")});
  return out;
}

// What the openpi train config `name` fixes about the prompt, for this robot preset.
void train_config(RobotConfig& r, const std::string& name, bool discrete_state_input) {
  r.discrete_state_input = discrete_state_input;
  r.discrete_state_input_origin = "robot preset " + r.name + " (openpi's " + name + ")";
}

Value json_to_value(const json& j) {
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number_integer()) return Value(j.get<int64_t>());
  if (j.is_number()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_array()) {
    List l;
    for (const auto& e : j) l.push_back(json_to_value(e));
    return Value(std::move(l));
  }
  if (j.is_object()) {
    Dict d;
    for (auto it = j.begin(); it != j.end(); ++it) d[it.key()] = json_to_value(*it);
    return Value(std::move(d));
  }
  return Value();
}

}  // namespace

std::vector<std::string> builtin_robot_names() { return {"aloha", "aloha_sim", "droid", "libero"}; }

RobotConfig builtin_robot(const std::string& name, bool pi05) {
  RobotConfig r;
  r.name = name;
  if (name == "aloha" || name == "aloha_sim") {
    // openpi pi0_aloha* / pi05_aloha (asset "trossen") and pi0_aloha_sim (absolute joints).
    r.asset_id = name == "aloha" ? "trossen" : "lerobot/aloha_sim_transfer_cube_human";
    r.cameras = {{"base_0_rgb", "images/cam_high", true},
                 {"left_wrist_0_rgb", "images/cam_left_wrist", false},
                 {"right_wrist_0_rgb", "images/cam_right_wrist", false}};
    r.images_group = "images";
    r.allowed_images = {"cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"};  // cam_low: accepted, unused
    r.state = {{"state", 14}};
    r.action_dim = 14;
    if (name == "aloha") {
      r.delta_mask = bool_mask({6, -1, 6, -1});  // delta joints, absolute grippers
      r.metadata["reset_pose"] = Value(List{Value(0), Value(-1.5), Value(1.5), Value(0), Value(0), Value(0)});
      if (pi05) train_config(r, "pi05_aloha", true);  // Pi0Config(pi05=True): its default
    } else {
      // openpi has only pi0_aloha_sim: a π0.5 model gets Pi0Config's default (decide_prompt_format).
      r.default_prompt = "Transfer cube";
    }
    r.aloha_adapt = true;
  } else if (name == "droid") {
    r.asset_id = "droid";
    r.cameras = {{"base_0_rgb", "observation/exterior_image_1_left", true},
                 {"left_wrist_0_rgb", "observation/wrist_image_left", true}};
    r.state = {{"observation/joint_position", 7}, {"observation/gripper_position", 1}};
    r.action_dim = 8;  // joint velocities + gripper
    if (pi05) train_config(r, "pi05_droid", true);  // Pi0Config(action_horizon=15, pi05=True): the default
  } else if (name == "libero") {
    r.asset_id = "physical-intelligence/libero";
    r.cameras = {{"base_0_rgb", "observation/image", true}, {"left_wrist_0_rgb", "observation/wrist_image", true}};
    r.state = {{"observation/state", 8}};
    r.action_dim = 7;
    if (!pi05) r.delta_mask = bool_mask({6, -1});  // pi0_libero: extra_delta_transform=True
    if (pi05) train_config(r, "pi05_libero", false);  // Pi0Config(pi05=True, ..., discrete_state_input=False)
  } else {
    throw Error(ErrorInfo{.message = "unknown robot", .field = "robot", .expected = join(builtin_robot_names()) + " or a .json file",
                 .got = name});
  }
  return r;
}

RobotConfig parse_robot_json(const std::string& text, const std::string& src) {
  json j;
  try {
    // A key given twice in one object: JSON parsers keep the last silently, so a robot file edited
    // by hand could run with the other value than the one its author looked at.
    std::vector<std::set<std::string>> open_objects;
    j = json::parse(text, [&](int, json::parse_event_t ev, json& parsed) {
      if (ev == json::parse_event_t::object_start) open_objects.emplace_back();
      else if (ev == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
      else if (ev == json::parse_event_t::key && !open_objects.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second)
        throw Error(ErrorInfo{.message = "key given twice in one object", .file = src, .field = parsed.get<std::string>()});
      return true;
    });
  } catch (const json::exception& e) {
    throw Error(ErrorInfo{.message = std::string("invalid JSON: ") + e.what(), .file = src});
  }
  auto bad = [&](const std::string& field, const std::string& msg, const std::string& expected) {
    throw Error(ErrorInfo{.message = msg, .file = src, .field = field, .expected = expected,
                 .got = j.contains(field) ? j[field].dump() : "nothing"});
  };
  if (!j.is_object()) throw Error(ErrorInfo{.message = "robot config must be a JSON object", .file = src});
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const std::set<std::string> known = {"name", "asset_id", "cameras", "state", "action_dim", "delta_mask",
                                                "default_prompt", "metadata", "discrete_state_input"};
    if (!known.count(it.key()))
      throw Error(ErrorInfo{.message = "unknown field in robot config", .file = src, .field = it.key(),
                   .expected = "one of name, asset_id, cameras, state, action_dim, delta_mask, default_prompt, "
                               "metadata, discrete_state_input"});
  }
  RobotConfig r;
  if (!j.contains("name") || !j["name"].is_string()) bad("name", "robot config needs a name", "a string");
  r.name = j["name"];
  r.asset_id = j.value("asset_id", r.name);
  if (!j.contains("cameras") || !j["cameras"].is_array() || j["cameras"].empty())
    bad("cameras", "robot config needs cameras", "[{\"model\": \"base_0_rgb\", \"key\": \"...\"}, ...]");
  for (size_t i = 0; i < j["cameras"].size(); ++i) {
    const json& c = j["cameras"][i];
    const std::string f = "cameras[" + std::to_string(i) + "]";
    if (!c.is_object() || !c.contains("model") || !c["model"].is_string() || !c.contains("key") || !c["key"].is_string())
      throw Error(ErrorInfo{.message = "camera entry needs string fields model and key", .file = src, .field = f,
                   .expected = "{\"model\": \"base_0_rgb\", \"key\": \"observation/image\", \"required\": true}",
                   .got = c.dump()});
    r.cameras.push_back({c["model"], c["key"], c.value("required", true)});
    for (size_t k = 0; k + 1 < r.cameras.size(); ++k)
      if (r.cameras[k].model_key == r.cameras.back().model_key || r.cameras[k].obs_key == r.cameras.back().obs_key)
        throw Error(ErrorInfo{.message = "two cameras share a model camera or an observation key", .file = src, .field = f,
                              .expected = "each model camera and each key once",
                              .got = "cameras[" + std::to_string(k) + "] and " + f + ": " + c.dump()});
  }
  if (!j.contains("state") || !j["state"].is_array() || j["state"].empty())
    bad("state", "robot config needs the state layout", "[{\"key\": \"observation/state\", \"size\": 8}, ...]");
  for (size_t i = 0; i < j["state"].size(); ++i) {
    const json& s = j["state"][i];
    const std::string f = "state[" + std::to_string(i) + "]";
    if (!s.is_object() || !s.contains("key") || !s["key"].is_string() || !s.contains("size") ||
        !s["size"].is_number_integer() || s["size"].get<int64_t>() <= 0 || s["size"].get<int64_t>() > 4096)
      throw Error(ErrorInfo{.message = "state entry needs a string key and a positive size", .file = src, .field = f,
                   .expected = "{\"key\": \"observation/state\", \"size\": 8}", .got = s.dump()});
    r.state.push_back({s["key"], s["size"].get<int>()});
    for (size_t k = 0; k + 1 < r.state.size(); ++k)
      if (r.state[k].obs_key == r.state.back().obs_key)
        throw Error(ErrorInfo{.message = "state key listed twice", .file = src, .field = f, .expected = "each key once",
                              .got = r.state.back().obs_key});
  }
  if (!j.contains("action_dim") || !j["action_dim"].is_number_integer() || j["action_dim"].get<int64_t>() <= 0 ||
      j["action_dim"].get<int64_t>() > 4096)
    bad("action_dim", "robot config needs action_dim (actions returned per step)", "a positive integer");
  r.action_dim = j["action_dim"].get<int>();
  if (j.contains("delta_mask")) {
    if (!j["delta_mask"].is_array()) bad("delta_mask", "delta_mask must be a list of booleans", "[true, ..., false]");
    for (const auto& b : j["delta_mask"]) {
      if (!b.is_boolean()) bad("delta_mask", "delta_mask must be a list of booleans", "[true, ..., false]");
      r.delta_mask.push_back(b.get<bool>());
    }
    if (static_cast<int>(r.delta_mask.size()) > r.state_dim())
      bad("delta_mask", "delta_mask is longer than the state", "at most " + std::to_string(r.state_dim()) + " entries");
  }
  if (j.contains("default_prompt")) {
    if (!j["default_prompt"].is_string()) bad("default_prompt", "default_prompt must be a string", "a string");
    r.default_prompt = j["default_prompt"];
  }
  if (j.contains("metadata")) {
    if (!j["metadata"].is_object()) bad("metadata", "metadata must be an object", "{...}");
    r.metadata = std::get<Dict>(json_to_value(j["metadata"]).v);
  }
  if (j.contains("discrete_state_input")) {
    if (!j["discrete_state_input"].is_boolean())
      bad("discrete_state_input", "discrete_state_input must be a boolean (pi0.5: the state in the prompt or not)",
          "true or false");
    r.discrete_state_input = j["discrete_state_input"].get<bool>();
    r.discrete_state_input_origin = "robot config " + src;
  }
  return r;
}

std::string PromptFormat::describe() const {
  std::string s = !pi05 ? "pi0 (the state is a continuous input, not in the prompt)"
                  : state_in_prompt ? "pi0.5 with the state in the prompt (\"Task: ..., State: ...;\\nAction: \")"
                                    : "pi0.5 without the state in the prompt (the prompt as pi0 sees it)";
  if (!source.empty()) s += ", from " + source;
  if (!note.empty()) s += "; " + note;
  return s;
}

PromptFormat decide_prompt_format(const ModelConfig& model, const RobotConfig& robot, std::optional<bool> flag,
                                  const std::string& config_file) {
  PromptFormat f;
  f.pi05 = model.pi05;
  if (!model.pi05) {
    // openpi's π0 transforms never pass discrete_state_input to TokenizePrompt.
    if (flag && *flag)
      throw Error(ErrorInfo{.message = "a pi0 model takes the state as a continuous input, never in the prompt",
                   .field = "--discrete-state-input", .expected = "false, or a pi0.5 checkpoint", .got = "true"});
    return f;
  }
  // In order of precedence; the first that says decides, later ones that disagree are named.
  const std::pair<std::optional<bool>, std::string> said[] = {
      {flag, flag ? std::string("--discrete-state-input ") + (*flag ? "true" : "false") : ""},
      {model.discrete_state_input, config_file + " (discrete_state_input)"},
      {robot.discrete_state_input, robot.discrete_state_input_origin}};
  const auto first = std::find_if(std::begin(said), std::end(said), [](const auto& s) { return s.first.has_value(); });
  if (first == std::end(said)) {
    f.state_in_prompt = true;  // Pi0Config: discrete_state_input defaults to pi05
    f.source = "openpi's default for pi0.5 (neither " + config_file + " nor robot " + robot.name + " says)";
    return f;
  }
  f.state_in_prompt = *first->first;
  f.source = first->second;
  for (auto it = first + 1; it != std::end(said); ++it)
    if (it->first && *it->first != f.state_in_prompt) f.note += (f.note.empty() ? "" : ", ") + it->second;
  if (!f.note.empty()) f.note = "overrides " + f.note + ", which would " +
                                (f.state_in_prompt ? "leave the state out" : "put the state in the prompt");
  return f;
}

RobotConfig resolve_robot(const std::string& name_or_path, bool pi05) {
  const auto names = builtin_robot_names();
  if (std::find(names.begin(), names.end(), name_or_path) != names.end()) return builtin_robot(name_or_path, pi05);
  if (name_or_path.size() > 5 && name_or_path.ends_with(".json")) {
    return parse_robot_json(read_text_file(name_or_path), name_or_path);
  }
  return builtin_robot(name_or_path, pi05);  // throws: unknown robot, listing the names
}

const Value* find_key(const Dict& obs, const std::string& key) {
  if (auto it = obs.find(key); it != obs.end()) return &it->second;
  const Dict* d = &obs;
  size_t b = 0;
  while (true) {
    const size_t e = key.find('/', b);
    const std::string part = key.substr(b, e == std::string::npos ? std::string::npos : e - b);
    auto it = d->find(part);
    if (it == d->end()) return nullptr;
    if (e == std::string::npos) return &it->second;
    d = it->second.get_if<Dict>();
    if (!d) return nullptr;
    b = e + 1;
  }
}

RobotObservation robot_inputs(const RobotConfig& robot, const Dict& obs) {
  RobotObservation out;
  if (!robot.images_group.empty()) {
    if (const Value* g = find_key(obs, robot.images_group)) {
      const Dict* d = g->get_if<Dict>();
      if (!d)
        throw Error(ErrorInfo{.message = "images must be a dict of camera name -> array", .field = robot.images_group});
      for (const auto& [k, v] : *d)
        if (std::find(robot.allowed_images.begin(), robot.allowed_images.end(), k) == robot.allowed_images.end())
          throw Error(ErrorInfo{.message = "unknown camera for robot " + robot.name, .field = robot.images_group + "/" + k,
                       .expected = join(robot.allowed_images), .got = k});
    }
  }
  for (const RobotCamera& cam : robot.cameras) {
    const Value* v = find_key(obs, cam.obs_key);
    if (!v) {
      if (cam.required) {
        std::string have;
        for (const auto& [k, _] : obs) have += (have.empty() ? "" : ", ") + k;
        throw Error(ErrorInfo{.message = "observation lacks camera '" + cam.obs_key + "' that robot " + robot.name + " needs",
                     .field = cam.obs_key, .expected = "a uint8 image array", .got = "keys: " + have});
      }
      continue;
    }
    const Tensor* t = v->get_if<Tensor>();
    if (!t) throw Error(ErrorInfo{.message = "camera value must be an image array", .field = cam.obs_key, .expected = "uint8 array"});
    out.images[cam.model_key] = image_from_tensor(*t, cam.obs_key);
  }
  for (const RobotStatePart& part : robot.state) {
    const Value* v = find_key(obs, part.obs_key);
    if (!v)
      throw Error(ErrorInfo{.message = "observation lacks state '" + part.obs_key + "' that robot " + robot.name + " needs",
                   .field = part.obs_key, .expected = std::to_string(part.size) + " numbers", .got = "nothing"});
    const std::vector<double> x = numbers(*v, part.obs_key);
    if (static_cast<int>(x.size()) != part.size)
      throw Error(ErrorInfo{.message = "state has the wrong length for robot " + robot.name, .field = part.obs_key,
                   .expected = std::to_string(part.size) + " values", .got = std::to_string(x.size())});
    out.state.insert(out.state.end(), x.begin(), x.end());
  }
  if (robot.aloha_adapt) {
    for (int i = 0; i < 14; ++i) out.state[i] *= kAlohaFlip[i];
    for (int g : kAlohaGrippers) out.state[g] = gripper_to_angular(out.state[g]);
  }
  if (const Value* p = find_key(obs, "prompt")) {
    // A present None is no prompt at all, not a request for the default: openpi's
    // InjectDefaultPrompt fills only an absent key, and TokenizePrompt then raises.
    if (p->is_null())
      throw Error(ErrorInfo{.message = "prompt is None: leave the key out to get the default prompt", .field = "prompt",
                   .expected = "str", .got = "None (msgpack nil)"});
    if (const std::string* s = p->get_if<std::string>()) out.prompt = *s;
    else throw Error(ErrorInfo{.message = "prompt must be a string", .field = "prompt", .expected = "str"});
  }
  return out;
}

std::vector<double> robot_outputs(const RobotConfig& robot, const std::vector<double>& actions, int64_t H,
                                  int64_t width, const std::vector<double>& state) {
  if (robot.action_dim > width)
    throw Error(ErrorInfo{.message = "robot " + robot.name + " needs more action dims than the model predicts", .field = "action_dim",
                 .expected = "at most " + std::to_string(width), .got = std::to_string(robot.action_dim)});
  const size_t dm = robot.delta_mask.size();
  if (dm > state.size() || static_cast<int64_t>(dm) > width)
    throw Error(ErrorInfo{.message = "delta mask wider than the state or the actions", .field = "delta_mask",
                 .expected = "at most " + std::to_string(std::min<int64_t>(state.size(), width)),
                 .got = std::to_string(dm)});
  const int64_t A = robot.action_dim;
  std::vector<double> out(static_cast<size_t>(H * A));
  for (int64_t h = 0; h < H; ++h) {
    const double* row = &actions[static_cast<size_t>(h * width)];
    double* o = &out[static_cast<size_t>(h * A)];
    for (int64_t i = 0; i < A; ++i) o[i] = row[i];
    // AbsoluteActions runs on the model-width actions before the slice; only dims < A survive.
    for (size_t i = 0; i < dm && static_cast<int64_t>(i) < A; ++i)
      if (robot.delta_mask[i]) o[i] += state[i];
    if (robot.aloha_adapt) {
      for (int i = 0; i < 14 && i < A; ++i) o[i] *= kAlohaFlip[i];
      for (int g : kAlohaGrippers)
        if (g < A) o[g] = gripper_from_angular(o[g]);
    }
  }
  return out;
}

std::vector<double> robot_outputs_inverse(const RobotConfig& robot, const std::vector<double>& robot_actions, int64_t n,
                                          const std::vector<double>& state) {
  const int64_t A = robot.action_dim;
  const size_t dm = std::min(robot.delta_mask.size(), static_cast<size_t>(A));
  if (dm > state.size())
    throw Error(ErrorInfo{.message = "delta mask wider than the state", .field = "delta_mask",
                          .expected = "at most " + std::to_string(state.size()), .got = std::to_string(dm)});
  std::vector<double> out(robot_actions);
  for (int64_t h = 0; h < n; ++h) {
    double* o = &out[static_cast<size_t>(h * A)];
    if (robot.aloha_adapt) {  // robot_outputs' steps in reverse order
      for (int g : kAlohaGrippers)
        if (g < A) o[g] = gripper_from_angular_inverse(o[g]);
      for (int i = 0; i < 14 && i < A; ++i) o[i] *= kAlohaFlip[i];
    }
    for (size_t i = 0; i < dm; ++i)
      if (robot.delta_mask[i]) o[i] -= state[i];
  }
  return out;
}

}  // namespace pi0
