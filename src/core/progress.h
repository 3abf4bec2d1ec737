// A one-line progress bar on stderr for long work (writing or loading GBs). Silent when stderr is
// not a terminal unless forced, so logs and CI output stay clean.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pi0 {

class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled);
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
