#include "pi0/error.h"

namespace pi0 {

std::string format_error(const ErrorInfo& e) {
  std::string s;
  if (!e.file.empty()) s += e.file + ": ";
  if (!e.tensor.empty()) s += "tensor '" + e.tensor + "': ";
  if (!e.field.empty()) s += "field '" + e.field + "': ";
  s += e.message;
  if (!e.expected.empty() || !e.got.empty()) {
    s += " (expected " + (e.expected.empty() ? std::string("?") : e.expected) + ", got " +
         (e.got.empty() ? std::string("?") : e.got) + ")";
  }
  // what() is a C string: a NUL from outside input (a key, a prompt, a file's bytes) would cut the
  // message there, hiding the rest of it from the client or the operator.
  for (size_t i = s.find('\0'); i != std::string::npos; i = s.find('\0', i + 4)) s.replace(i, 1, "\\x00");
  return s;
}

Error::Error(ErrorInfo info) : std::runtime_error(format_error(info)), info_(std::move(info)) {}

}  // namespace pi0
