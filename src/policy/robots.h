// Robot configs (docs/model.md §6.4): how an openpi observation dict for one robot maps onto the model's
// cameras and state, and how the model's actions map back to robot commands. Built in: ALOHA,
// ALOHA sim, DROID and LIBERO as openpi's policies/*.py define them; custom robots from JSON.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/value.h"
#include "pi0/config.h"
#include "policy/image.h"

namespace pi0 {

struct RobotCamera {
  std::string model_key;  // model camera, e.g. "base_0_rgb"
  std::string obs_key;    // observation key, e.g. "observation/image"; "a/b" also finds obs["a"]["b"]
  bool required = true;   // absent optional cameras become black with image_mask 0
};

struct RobotStatePart {
  std::string obs_key;  // concatenated in order into the state vector
  int size = 0;         // values expected under that key (a scalar counts as 1)
};

struct RobotConfig {
  std::string name;
  std::string asset_id;  // norm stats live in <checkpoint>/assets/<asset_id>/norm_stats.json
  std::vector<RobotCamera> cameras;
  // When set (ALOHA: "images"), every key of that sub-dict must be in `allowed_images`;
  // openpi refuses unknown cameras there rather than ignoring a misspelt one.
  std::string images_group;
  std::vector<std::string> allowed_images;
  std::vector<RobotStatePart> state;
  int action_dim = 0;            // robot action width: the model's actions are sliced to it
  std::vector<bool> delta_mask;  // actions predicted relative to the state on these dims (empty: absolute)
  bool aloha_adapt = false;      // ALOHA adapt_to_pi: joint sign flips and gripper conversions
  std::string default_prompt;    // used when neither the observation nor the server gives one
  Dict metadata;                 // sent to clients on connect (ALOHA: reset_pose)
  // Whether a π0.5 prompt carries the state, as the openpi train config this robot stands for
  // fixes it (Pi0Config.discrete_state_input: pi05_libero false, pi05_droid / pi05_aloha true);
  // nullopt: the robot does not say. Used when config.json does not say either.
  std::optional<bool> discrete_state_input;
  // Where discrete_state_input comes from, for the load note: "robot preset libero (openpi's
  // pi05_libero)" or "robot config FILE".
  std::string discrete_state_input_origin;

  int state_dim() const;
};

// "aloha", "aloha_sim", "droid", "libero". `pi05` selects openpi's per-model variant where the
// configs differ (LIBERO: pi0_libero predicts the first 6 dims as deltas, pi05_libero does not).
RobotConfig builtin_robot(const std::string& name, bool pi05);
std::vector<std::string> builtin_robot_names();
// A custom robot (format in README "Custom robots"); errors name the file and field.
RobotConfig parse_robot_json(const std::string& text, const std::string& source);
// A built-in name, or a path to a .json file.
RobotConfig resolve_robot(const std::string& name_or_path, bool pi05);

// The prompt format of a loaded policy (openpi's TokenizePrompt(discrete_state_input)) and where
// the choice came from, for the one line the CLI prints at load.
struct PromptFormat {
  bool pi05 = false;
  bool state_in_prompt = false;
  std::string source;  // e.g. "ck/config.json", "robot preset libero (openpi's pi05_libero)"
  std::string note;    // e.g. "robot droid (openpi's pi05_droid) would put the state in the prompt"
  std::string describe() const;  // "pi0.5 prompt without the state (...) (from ...)"
};
// Decides as openpi does, where its train config fixes what a converted config.json omits:
// `flag` (--discrete-state-input) over config.json's discrete_state_input over the robot's, else
// Pi0Config's default (state in the prompt for π0.5). π0 never puts the state in the prompt (it
// is a continuous input); asking for it with `flag` is an error. `config_file` names config.json.
PromptFormat decide_prompt_format(const ModelConfig& model, const RobotConfig& robot, std::optional<bool> flag,
                                  const std::string& config_file);

// The robot's *Inputs transform: the raw (unnormalised) state after the robot's own encoding,
// the images of the cameras present, and the prompt if the observation carries one.
struct RobotObservation {
  std::vector<double> state;
  std::map<std::string, ImageU8> images;  // model camera -> image (absent optional cameras omitted)
  std::optional<std::string> prompt;
};
// Throws pi0::Error naming the key for a missing camera/state, a wrong shape or length, a
// non-numeric or non-finite state value, or an unknown ALOHA camera.
RobotObservation robot_inputs(const RobotConfig& robot, const Dict& obs);

// AbsoluteActions (delta dims += state) then the robot's *Outputs (slice to action_dim, ALOHA
// encoding). `actions` is [H, width] unnormalised; `state` the unnormalised state (≥ mask width).
// Returns [H, action_dim] row-major.
std::vector<double> robot_outputs(const RobotConfig& robot, const std::vector<double>& actions, int64_t H,
                                  int64_t width, const std::vector<double>& state);

// The inverse of robot_outputs on the robot's dims (real-time chunking: the previous chunk's
// remainder, as the robot was sent it, back towards model space): the ALOHA encoding undone,
// then absolute -> delta on delta dims with the same `state`. `robot_actions` is [n, action_dim];
// returns [n, action_dim] unnormalised model actions (the model's dims past the robot's were
// dropped by the slice: the caller pads them).
std::vector<double> robot_outputs_inverse(const RobotConfig& robot, const std::vector<double>& robot_actions, int64_t n,
                                          const std::vector<double>& state);

// Looks `key` up in an observation: the literal key first, then as a '/'-separated path through
// nested dicts (openpi clients send both "observation/image" flat and ALOHA's {"images": {...}}).
const Value* find_key(const Dict& obs, const std::string& key);

}  // namespace pi0
