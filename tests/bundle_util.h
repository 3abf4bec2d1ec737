// A make-checkpoint bundle (random weights + demo tokenizer + norm stats for every built-in
// robot) for policy-level tests, written once per preset per test process.
#pragma once
#include <map>
#include <string>

#include "model/random_checkpoint.h"
#include "pi0/config.h"
#include "policy/demo_assets.h"
#include "temp_dir.h"

namespace pi0::test {

inline const std::string& bundle(const std::string& preset) {
  static std::map<std::string, std::string> dirs;
  auto it = dirs.find(preset);
  if (it != dirs.end()) return it->second;
  const std::string dir = temp_dir("bundle-" + preset);
  const ModelConfig cfg = model_preset(preset);
  write_random_checkpoint(dir, cfg, {.seed = 3});
  write_demo_assets(dir, cfg);
  return dirs[preset] = dir;
}

}  // namespace pi0::test
