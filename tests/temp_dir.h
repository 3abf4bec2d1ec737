// A per-process scratch directory for tests, removed when the test process exits.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace pi0::test {

inline const std::filesystem::path& temp_root() {
  struct Root {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("pi0_test_" + std::to_string(::getpid()));
    ~Root() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Root root;
  return root.path;
}

// A fresh, empty directory `name` under the process's scratch root.
inline std::string temp_dir(const std::string& name) {
  auto d = temp_root() / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// A path for a file `name` under the scratch root.
inline std::string temp_file(const std::string& name) {
  std::filesystem::create_directories(temp_root());
  return (temp_root() / name).string();
}

}  // namespace pi0::test
