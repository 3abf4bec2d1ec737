// Small helpers shared by the tests: run the CLI, catch an error's message.
#pragma once
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <functional>
#include <string>

#include "pi0/error.h"
#include "temp_dir.h"

namespace pi0::test {

struct CliRun {
  int code;
  std::string out;  // stdout and stderr together (stdout alone with `separate`)
  std::string err;  // stderr, with `separate`
};

// `separate`: for commands whose stdout is JSON while stderr carries notes (infer's load line).
inline CliRun run_cli(const std::string& args, bool separate = false) {
  static std::atomic<int> runs{0};
  const std::string err_file = separate ? temp_file("cli_stderr_" + std::to_string(runs++)) : "";
  std::string cmd = std::string(PI0_CLI_PATH) + " " + args + (separate ? " 2>" + err_file : " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  std::string err;
  if (separate) {
    if (FILE* f = std::fopen(err_file.c_str(), "rb")) {
      while (size_t n = fread(buf.data(), 1, buf.size(), f)) err.append(buf.data(), n);
      std::fclose(f);
    }
    std::remove(err_file.c_str());
  }
  return {WEXITSTATUS(status), out, err};
}

// The pi0::Error message `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace pi0::test
