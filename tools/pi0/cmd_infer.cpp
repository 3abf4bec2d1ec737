// pi0 infer: one observation from files and flags through the whole policy (robot mapping,
// normalisation, tokenizer, resize, model, unnormalise, robot outputs) and the action chunk it
// returns, as a table or JSON, with the time taken.
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "commands.h"
#include "io/tensor_files.h"
#include "model/rtc.h"
#include "policy/image.h"
#include "policy/policy.h"

namespace pi0::cli {

namespace {

// --image KEY=FILE: KEY may be the robot's observation key ("observation/image"), its last path
// component ("image", "cam_high") or the model camera it feeds ("base_0_rgb").
const RobotCamera& camera_for(const RobotConfig& r, const std::string& key) {
  for (const auto& c : r.cameras) {
    const std::string tail = c.obs_key.substr(c.obs_key.rfind('/') + 1);
    if (key == c.obs_key || key == c.model_key || key == tail) return c;
  }
  std::string keys;
  for (const auto& c : r.cameras) keys += (keys.empty() ? "" : ", ") + c.obs_key + (c.required ? "" : " (optional)");
  throw Error(ErrorInfo{.message = "robot " + r.name + " has no camera called '" + key + "'", .field = "--image",
               .expected = keys, .got = key});
}

void put(Dict& obs, const std::string& key, Value v, bool nested) {
  const size_t slash = key.find('/');
  if (!nested || slash == std::string::npos) {
    obs[key] = std::move(v);
    return;
  }
  Value& group = obs[key.substr(0, slash)];
  if (!group.is<Dict>()) group = Value(Dict{});
  group.get_if<Dict>()->emplace(key.substr(slash + 1), std::move(v));
}

struct InferArgs {
  std::string checkpoint, robot, state, tokenizer, norm_stats, backend, precision = "auto";
  std::vector<std::string> images;
  bool json = false;
  std::optional<uint64_t> seed;
  std::optional<bool> discrete_state_input;
  std::optional<std::string> prompt;  // absent: the robot's default prompt
  // Real-time chunking (policy/rtc_request.h): put into the observation as a client would.
  std::string rtc_prev_actions;
  std::optional<int> rtc_delay, rtc_horizon;
  std::optional<double> rtc_max_weight;
  std::optional<std::string> rtc_schedule;
};

// --rtc-prev-actions FILE.json: a JSON array of action rows, or an object with "actions" (what
// `pi0 infer --json` prints, cut to the actions not yet executed), as a list of rows.
Value rtc_actions_file(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorInfo{.message = std::string("invalid JSON: ") + e.what(), .file = path, .field = "--rtc-prev-actions"});
  }
  if (j.is_object() && j.contains("actions")) j = j["actions"];
  if (!j.is_array())
    throw Error(ErrorInfo{.message = "previous actions must be a JSON array of rows (or an object with \"actions\")",
                          .file = path, .field = "--rtc-prev-actions", .expected = "[[a0, a1, ...], ...]", .got = j.type_name()});
  List rows;
  for (size_t h = 0; h < j.size(); ++h) {
    if (!j[h].is_array())
      throw Error(ErrorInfo{.message = "each previous action must be an array of numbers", .file = path,
                            .field = "actions[" + std::to_string(h) + "]", .expected = "array", .got = j[h].type_name()});
    List row;
    for (size_t i = 0; i < j[h].size(); ++i) {
      if (!j[h][i].is_number())
        throw Error(ErrorInfo{.message = "previous actions must be numbers", .file = path,
                              .field = "actions[" + std::to_string(h) + "][" + std::to_string(i) + "]", .expected = "number",
                              .got = j[h][i].dump()});
      row.push_back(Value(j[h][i].get<double>()));
    }
    rows.push_back(Value(std::move(row)));
  }
  return Value(std::move(rows));
}

void put_rtc(const InferArgs& a, Dict& obs) {
  if (a.rtc_prev_actions.empty()) {
    if (a.rtc_delay || a.rtc_horizon || a.rtc_max_weight || a.rtc_schedule)
      throw Error(ErrorInfo{.message = "the --rtc-* options need the previous actions", .field = "--rtc-prev-actions",
                            .expected = "FILE.json", .got = "nothing"});
    return;
  }
  obs["rtc_prev_actions"] = rtc_actions_file(a.rtc_prev_actions);
  if (!a.rtc_delay)
    throw Error(ErrorInfo{.message = "--rtc-prev-actions needs --rtc-delay (actions executed while this chunk is computed)",
                          .field = "--rtc-delay", .expected = "an int >= 0", .got = "nothing"});
  obs["rtc_inference_delay"] = Value(*a.rtc_delay);
  if (a.rtc_horizon) obs["rtc_execution_horizon"] = Value(*a.rtc_horizon);
  if (a.rtc_max_weight) obs["rtc_max_guidance_weight"] = Value(*a.rtc_max_weight);
  if (a.rtc_schedule) obs["rtc_schedule"] = Value(*a.rtc_schedule);
}

// --image KEY=FILE flags -> decoded uint8 HWC images under the robot's observation keys.
void put_images(const InferArgs& a, const RobotConfig& r, Dict& obs) {
  const bool nested = !r.images_group.empty();  // ALOHA clients send {"images": {...}}
  std::map<std::string, std::string> given;  // model camera -> the --image that set it
  for (const std::string& spec : a.images) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw Error(ErrorInfo{.message = "--image takes KEY=FILE", .field = "--image", .expected = "KEY=FILE", .got = spec});
    const RobotCamera& cam = camera_for(r, spec.substr(0, eq));
    // Two flags naming one camera (e.g. by its key and by its model name): which was meant?
    if (auto [it, fresh] = given.emplace(cam.model_key, spec); !fresh)
      throw Error(ErrorInfo{.message = "camera " + cam.model_key + " given twice", .field = "--image",
                            .expected = "one --image per camera", .got = it->second + " and " + spec});
    const ImageU8 img = decode_image_file(spec.substr(eq + 1));
    Tensor t = Tensor::zeros(DType::U8, {img.height, img.width, 3});
    std::copy(img.pixels.begin(), img.pixels.end(), t.data_mut<uint8_t>());
    put(obs, cam.obs_key, Value(std::move(t)), nested);
  }
}

// The --state flag carries every state value; split it over the robot's state keys.
void put_state(const InferArgs& a, const RobotConfig& r, Dict& obs) {
  const std::vector<double> state = parse_number_list(a.state, "--state");
  if (static_cast<int>(state.size()) != r.state_dim())
    throw Error(ErrorInfo{.message = "robot " + r.name + " takes " + std::to_string(r.state_dim()) + " state values",
                 .field = "--state", .expected = std::to_string(r.state_dim()) + " values",
                 .got = std::to_string(state.size())});
  size_t off = 0;
  for (const auto& part : r.state) {
    Tensor t = Tensor::zeros(DType::F64, {part.size});
    std::copy_n(state.begin() + static_cast<std::ptrdiff_t>(off), part.size, t.data_mut<double>());
    off += static_cast<size_t>(part.size);
    put(obs, part.obs_key, Value(std::move(t)), false);
  }
}

// The observation a robot client would send, built from the flags.
Dict observation_from_flags(const InferArgs& a, const RobotConfig& r) {
  Dict obs;
  put_images(a, r, obs);
  put_state(a, r, obs);
  // Given, even empty, the prompt is the observation's, as an openpi client sending "" would have it.
  if (a.prompt) obs["prompt"] = Value(*a.prompt);
  put_rtc(a, obs);
  return obs;
}

void print_json(const Policy& policy, const Dict& obs, const Tensor& act, double infer_ms, double load_ms) {
  const int64_t H = act.dim(0), D = act.dim(1);
  const double* v = act.data<double>();
  nlohmann::ordered_json j;
  j["robot"] = policy.robot().name;
  j["prompt"] = policy.prepare(obs).prompt;
  std::vector<std::vector<double>> rows(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) rows[h].assign(v + h * D, v + (h + 1) * D);
  j["actions"] = rows;
  j["infer_ms"] = infer_ms;
  j["load_ms"] = load_ms;
  std::printf("%s\n", j.dump(2).c_str());
}

void print_table(const RobotConfig& r, const Tensor& act, double infer_ms, double load_ms) {
  const int64_t H = act.dim(0), D = act.dim(1);
  const double* v = act.data<double>();
  std::printf("action chunk: %lld steps x %lld dims (robot %s, %s actions)\n", static_cast<long long>(H),
              static_cast<long long>(D), r.name.c_str(), r.delta_mask.empty() ? "absolute" : "delta -> absolute");
  std::printf("%5s", "step");
  for (int64_t d = 0; d < D; ++d) std::printf(" %9s", ("a" + std::to_string(d)).c_str());
  std::printf("\n");
  for (int64_t h = 0; h < H; ++h) {
    std::printf("%5lld", static_cast<long long>(h));
    for (int64_t d = 0; d < D; ++d) std::printf(" %9.4f", v[h * D + d]);
    std::printf("\n");
  }
  std::printf("inference: %.1f ms (load: %.1f ms)\n", infer_ms, load_ms);
}

}  // namespace

void add_infer(CLI::App& app) {
  auto* cmd = app.add_subcommand("infer", "Run the policy on images + state + prompt and print the action chunk");
  auto a = std::make_shared<InferArgs>();
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint directory")->required();
  cmd->add_option("--robot", a->robot, "aloha | aloha_sim | droid | libero | path/to/robot.json")->required();
  cmd->add_option("--image", a->images, "KEY=FILE, one per camera (KEY: observation key, e.g. observation/image, "
                                        "its last part, e.g. cam_high, or the model camera, e.g. base_0_rgb)");
  cmd->add_option("--state", a->state, "raw robot state v1,v2,... (all state values of the robot, in order)")->required();
  cmd->add_option("--prompt", a->prompt, "task prompt; \"\" is an empty prompt (default: the robot's default prompt, if any)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer model (default: <checkpoint>/tokenizer.model)");
  cmd->add_option("--norm-stats", a->norm_stats, "norm_stats.json or its directory "
                                                 "(default: <checkpoint>/assets/<asset_id>/norm_stats.json)");
  cmd->add_option("--backend", a->backend, "reference | cpu (default: the fastest available)");
  add_precision_option(cmd, &a->precision);
  cmd->add_option("--seed", a->seed, "noise seed (same seed, same actions)");
  add_discrete_state_input_option(cmd, a->discrete_state_input);
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_option("--rtc-prev-actions", a->rtc_prev_actions,
                  "real-time chunking: JSON file with the previous chunk's actions not yet executed, in robot units "
                  "([[a0, a1, ...], ...] or an object with \"actions\"); the new chunk continues them");
  cmd->add_option("--rtc-delay", a->rtc_delay, "real-time chunking: actions the robot executes while this chunk is computed")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--rtc-horizon", a->rtc_horizon, "real-time chunking: how far the previous actions guide (default 10)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--rtc-schedule", a->rtc_schedule, "real-time chunking: prefix weights, " + rtc_schedule_names() + " (default LINEAR)");
  cmd->add_option("--rtc-max-guidance-weight", a->rtc_max_weight, "real-time chunking: guidance weight cap (default 10)")
      ->check(CLI::PositiveNumber);
  cmd->callback([a] {
    const auto t0 = std::chrono::steady_clock::now();
    PolicyOptions po{.robot = a->robot, .tokenizer_path = a->tokenizer, .norm_stats_path = a->norm_stats,
                     .default_prompt = "", .backend = a->backend, .discrete_state_input = a->discrete_state_input,
                     .precision = parse_precision(a->precision)};
    auto policy = Policy::load(a->checkpoint, po);
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const Dict obs = observation_from_flags(*a, policy->robot());
    InferOptions io;
    io.seed = a->seed;
    const Dict reply = policy->infer(obs, io);
    const Tensor& act = *reply.at("actions").get_if<Tensor>();
    const double infer_ms = *reply.at("policy_timing").get_if<Dict>()->at("infer_ms").get_if<double>();
    if (a->json) print_json(*policy, obs, act, infer_ms, load_ms);
    else print_table(policy->robot(), act, infer_ms, load_ms);
  });
}

}  // namespace pi0::cli
