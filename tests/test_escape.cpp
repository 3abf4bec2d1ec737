// Log lines quote client text: control characters and invalid UTF-8 must come out escaped.
#include <gtest/gtest.h>

#include "core/escape.h"
#include "pi0/error.h"

using pi0::escape_control;

TEST(Escape, ControlCharactersAndInvalidUtf8AreEscaped) {
  EXPECT_EQ(escape_control("got keys: state"), "got keys: state");
  EXPECT_EQ(escape_control("a\nINFO forged line"), "a\\nINFO forged line");
  EXPECT_EQ(escape_control("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(escape_control(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(escape_control("tab\there\r"), "tab\\there\\r");
  EXPECT_EQ(escape_control("back\\slash"), "back\\\\slash");
  EXPECT_EQ(escape_control("\x7f"), "\\x7f");
  EXPECT_EQ(escape_control("\xc2\x9b" "2J"), "\\xc2\\x9b2J");  // C1 CSI as UTF-8
  EXPECT_EQ(escape_control("\x9b"), "\\x9b");                   // a lone 8-bit CSI byte
  EXPECT_EQ(escape_control("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape_control("\xe0\x80\x80"), "\\xe0\\x80\\x80");  // overlong
}

TEST(Escape, ValidUtf8TextIsKept) {
  EXPECT_EQ(escape_control("pick up the café cup π0 ü 日本 🤖"), "pick up the café cup π0 ü 日本 🤖");
  EXPECT_EQ(escape_control("\xc2\xa0"), "\xc2\xa0");  // U+00A0 is printable
}

// An error's what() is a C string: a NUL in client text must not cut the message short.
TEST(Escape, ErrorMessagesKeepTheTextAfterANul) {
  const pi0::Error e(pi0::ErrorInfo{.message = "unknown key", .field = "obs", .expected = "state",
                                    .got = std::string("a\0b, c", 6)});
  EXPECT_STREQ(e.what(), "field 'obs': unknown key (expected state, got a\\x00b, c)");
}
