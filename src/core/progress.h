// A progress bar for long work (writing or loading GBs), sent through the log callback
// (pi0/log.h) as LogLevel::Progress lines: only when the percentage changes, so a sink that draws
// it costs nothing measurable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pi0 {

class Progress {
 public:
  // `enabled` false: silent (e.g. a command printing JSON that wants no bar).
  Progress(std::string label, uint64_t total, bool enabled = true);
  void update(uint64_t done);
  void finish();
  ~Progress();

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_, finished_ = false;
  int last_pct_ = -1;
  std::chrono::steady_clock::time_point start_;
};

bool stderr_is_tty();

}  // namespace pi0
