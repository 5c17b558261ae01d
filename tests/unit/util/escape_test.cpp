// The one escaping function per output kind (util/escape.h): what a terminal may receive.
#include "util/escape.h"

#include <gtest/gtest.h>

#include <string>

namespace chokepoint::util {
namespace {

// True when `s` holds a byte a terminal could act on: C0 (including '\n'), DEL, or the UTF-8 of a
// C1 control (U+0080..U+009F: C2 80..C2 9F).
bool has_control(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return true;
  }
  return false;
}

TEST(TerminalText, HostileNamesFromIssue18) {
  EXPECT_EQ(terminal_text("<script>\a\x1b]0;"), "<script>\\x07\\e]0;");
  EXPECT_EQ(terminal_text("\x1b[32mGRN"), "\\e[32mGRN");
}

TEST(TerminalText, EveryControlIsVisibleAndTheSpellingIsUnambiguous) {
  EXPECT_EQ(terminal_text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
  EXPECT_EQ(terminal_text(std::string("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(terminal_text("back\\slash"), "back\\\\slash");
  EXPECT_EQ(terminal_text("\xC2\x9B"
                          "31m"),
            "\\u{009b}31m");  // C1 CSI
  EXPECT_EQ(terminal_text("\xE2\x80\xAE"
                          "evil"),
            "\\u{202e}evil");                          // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(terminal_text("\xff\xfe"), "\\xff\\xfe");  // not UTF-8
  EXPECT_EQ(terminal_text("ab\xc3"), "ab\\xc3");       // a comm cut by the kernel mid-character
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_FALSE(has_control(terminal_text(one))) << c;
  }
}

TEST(TerminalText, PrintableTextPassesUnchanged) {
  for (const char* s : {"nginx: worker process", "/tmp/chokepoint-lab.1/disk.dat",
                        "Grüße 日本語 🙂", "p99<50ms", "a,b;c'd\"e"}) {
    EXPECT_EQ(terminal_text(s), s);
  }
}

TEST(ValidUtf8, ReplacesInvalidSequences) {
  EXPECT_EQ(valid_utf8("ok"), "ok");
  EXPECT_EQ(valid_utf8("a\xc3"), "a\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(valid_utf8("\x1b"), "\x1b");  // JSON escapes controls itself
}

TEST(XmlText, ControlsBecomeSpacesAndMarkupIsEscaped) {
  std::string out;
  append_xml_escaped(out, valid_xml_text("<script>\a\x1b]0;&'\""));
  EXPECT_EQ(out, "&lt;script&gt;  ]0;&amp;&#39;&quot;");
}

}  // namespace
}  // namespace chokepoint::util
