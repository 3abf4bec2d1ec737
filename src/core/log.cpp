#include "pi0/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace pi0 {
namespace {

std::mutex g_mu;
LogCallback g_callback;  // guarded by g_mu; calls are serialised so sinks need no locking

}  // namespace

void set_log_callback(LogCallback callback) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_callback = std::move(callback);
}

void log_message(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_callback) g_callback(level, message);
}

LogCallback log_to_stderr() {
  const bool tty = isatty(STDERR_FILENO) != 0;
  return [tty](LogLevel level, const std::string& message) {
    switch (level) {
      case LogLevel::Info: std::fprintf(stderr, "%s\n", message.c_str()); break;
      case LogLevel::Warning: std::fprintf(stderr, "warning: %s\n", message.c_str()); break;
      case LogLevel::Progress:
        if (!tty) return;  // logs and CI output get no bars
        if (message.empty()) std::fprintf(stderr, "\n");
        else std::fprintf(stderr, "\r%s", message.c_str());
        break;
    }
    std::fflush(stderr);
  };
}

}  // namespace pi0
