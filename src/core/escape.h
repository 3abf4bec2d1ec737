// Text from outside (request keys, prompts, error messages quoting them) made safe for a log line:
// a client must not be able to forge lines or send terminal escape sequences to an operator's
// console through the server's log.
#pragma once
#include <string>
#include <string_view>

namespace pi0 {

// Control characters (C0, DEL, C1) and bytes that are not valid UTF-8 become "\n", "\t", "\r" or
// "\xNN"; a backslash becomes "\\". Printable ASCII and valid UTF-8 text pass unchanged.
std::string escape_control(std::string_view s);

}  // namespace pi0
