// Small parsing helpers and options shared by the policy subcommands (tokenize, preprocess,
// infer, serve).
#pragma once
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "backend/precision.h"
#include "pi0/error.h"

namespace pi0::cli {

// "v1,v2,…" -> numbers; `what` names the option in errors. NaN/inf are parsed as such (callers
// decide whether they are acceptable).
inline std::vector<double> parse_number_list(const std::string& text, const std::string& what) {
  std::vector<double> out;
  if (text.empty()) return out;
  size_t b = 0;
  while (true) {
    const size_t e = text.find(',', b);
    const std::string item = text.substr(b, e == std::string::npos ? std::string::npos : e - b);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(item.c_str(), &end);
    // ERANGE on underflow (1e-320) still gives the nearest value: only overflow is an error.
    const bool overflow = errno == ERANGE && std::fabs(v) == HUGE_VAL;
    if (item.empty() || end == item.c_str() || *end != '\0' || overflow)
      throw Error(ErrorInfo{.message = "not a number in a comma-separated list", .field = what,
                   .expected = "v1,v2,...", .got = "'" + item + "' in '" + text + "'"});
    out.push_back(v);
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

// "H,W" -> two positive ints.
inline void parse_size(const std::string& text, int* h, int* w) {
  const auto v = parse_number_list(text, "--size");
  if (v.size() != 2 || v[0] < 1 || v[1] < 1 || v[0] != static_cast<int>(v[0]) || v[1] != static_cast<int>(v[1]) ||
      v[0] > 8192 || v[1] > 8192)
    throw Error(ErrorInfo{.message = "image size must be two positive integers", .field = "--size", .expected = "H,W (e.g. 224,224)",
                 .got = text});
  *h = static_cast<int>(v[0]);
  *w = static_cast<int>(v[1]);
}

// --discrete-state-input true|false (infer, serve, tokenize): openpi's Pi0Config field, which its
// JAX->PyTorch conversion leaves out of config.json; the flag wins over config.json and the robot.
inline void add_discrete_state_input_option(CLI::App* cmd, std::optional<bool>& out) {
  cmd->add_option("--discrete-state-input", out,
                  "pi0.5 only: true puts the discretised state into the prompt, false leaves it out (the prompt "
                  "as pi0 sees it). Default: config.json's discrete_state_input, else the robot's openpi train "
                  "config (libero: false, as pi05_libero; droid, aloha: true), else true")
      ->check(CLI::IsMember({"true", "false"}));
}

// "a,b,c" -> {"a", "b", "c"} (empty items kept, so a count check catches "a,,b").
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t b = 0;
  while (true) {
    const size_t e = text.find(',', b);
    out.push_back(text.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

// --precision on every command that runs the model (replay, compare, bench, infer, serve).
inline void add_precision_option(CLI::App* cmd, std::string* value) {
  cmd->add_option("--precision", *value,
                  "auto | bf16 | f32 | int8 (auto: the faster of bf16 and f32, measured at load; int8: opt-in W8A8, "
                  "changes results more)")
      ->capture_default_str();
}

inline BackendOptions backend_options(const std::string& precision) { return {.precision = parse_precision(precision)}; }

}  // namespace pi0::cli
