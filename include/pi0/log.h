// Where the library's messages go. The library never writes to stdout or stderr itself: warnings
// (a prompt truncated to the token window, a CPU without the requested instructions), notes
// (what was loaded and how), server log lines and progress of long work (loading, writing
// gigabytes) are handed to one callback that the embedding program sets. Without one they are
// dropped. The `pi0` tool installs log_to_stderr().
#pragma once
#include <functional>
#include <string>

namespace pi0 {

enum class LogLevel {
  Info,      // what happened: loads, requests served
  Warning,   // the result may not be what the caller expects (truncation, a slower fallback)
  Progress,  // a progress line of long work ("label [###   ] 40% 1.2s"), replaced by the next one;
             // an empty message ends the line
};

using LogCallback = std::function<void(LogLevel level, const std::string& message)>;

// Replaces the process-wide callback (null: drop everything). Thread-safe; the callback may be
// called from any thread, one call at a time.
void set_log_callback(LogCallback callback);

// The callback the CLI uses: "warning: ..." lines for warnings, plain lines for info, and progress
// bars redrawn in place, only when stderr is a terminal.
LogCallback log_to_stderr();

// Sends one message to the callback (library code; also usable by embedders for their own lines).
void log_message(LogLevel level, const std::string& message);

}  // namespace pi0
