// libFuzzer target: any text as a custom robot JSON (--robot file.json); then, for an accepted
// robot, an observation built from its own keys must map without crashing.
#include <cstdint>
#include <string>

#include "pi0/error.h"
#include "policy/robots.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const pi0::RobotConfig r = pi0::parse_robot_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (r.state_dim() <= 0 || r.action_dim <= 0 || r.cameras.empty()) __builtin_trap();  // accepted means usable
    pi0::Dict obs;
    (void)pi0::robot_inputs(r, obs);  // every key missing: must be an error naming one
  } catch (const pi0::Error&) {
  }
  return 0;
}
