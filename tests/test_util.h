// Small helpers shared by the tests: run the CLI, catch an error's message.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <functional>
#include <string>

#include "pi0/error.h"

namespace pi0::test {

struct CliRun {
  int code;
  std::string out;  // stdout and stderr together
};

inline CliRun run_cli(const std::string& args) {
  std::string cmd = std::string(PI0_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
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
