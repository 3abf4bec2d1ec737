// Where the golden cases are: tests/data/golden in this repository (see its README), unless the
// environment variable PI0_GOLDEN_DIR names another copy (e.g. a newer set being evaluated).
#pragma once
#include <cstdlib>
#include <string>

namespace pi0::test {

inline std::string golden_dir() {
  const char* env = std::getenv("PI0_GOLDEN_DIR");
  return env && *env ? std::string(env) : std::string(PI0_GOLDEN_DIR);
}

inline std::string golden(const std::string& rel) { return golden_dir() + "/" + rel; }

}  // namespace pi0::test
