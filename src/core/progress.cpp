#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "pi0/log.h"

namespace pi0 {

bool stderr_is_tty() { return isatty(STDERR_FILENO) != 0; }

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total ? total : 1), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

void Progress::update(uint64_t done) {
  if (!enabled_) return;
  int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
  if (pct == last_pct_) return;
  last_pct_ = pct;
  const int width = 30, fill = pct * width / 100;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char line[256];
  std::snprintf(line, sizeof line, "%s [%.*s%*s] %3d%% %.1fs", label_.c_str(), fill, "##############################",
                width - fill, "", pct, secs);
  log_message(LogLevel::Progress, line);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  update(total_);
  log_message(LogLevel::Progress, "");
  finished_ = true;
}

Progress::~Progress() { finish(); }

}  // namespace pi0
