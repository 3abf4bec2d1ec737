// One error type for everything that reads outside input. It carries the context a robotics
// engineer needs to fix the input (file, tensor, field, expected vs got) instead of a bare message.
#pragma once
#include <stdexcept>
#include <string>

namespace pi0 {

struct ErrorInfo {
  std::string message;   // what is wrong, in words
  std::string file;      // the file (or endpoint) the bad input came from
  std::string tensor;    // tensor name, when one is involved
  std::string field;     // config / JSON / header field, when one is involved
  std::string expected;  // what was expected ...
  std::string got;       // ... and what was found
};

class Error : public std::runtime_error {
 public:
  explicit Error(ErrorInfo info);
  explicit Error(const std::string& message) : Error(ErrorInfo{message}) {}
  const ErrorInfo& info() const { return info_; }

 private:
  ErrorInfo info_;
};

// Formats "file: tensor 'x': field 'y': message (expected A, got B)".
std::string format_error(const ErrorInfo& info);

}  // namespace pi0
