#pragma once
// Every string chokepoint observes (process and thread names, executable and file paths, symbol
// names, URLs, peer names, server responses, the bytes of input files) is hostile: it may hold
// ESC, BEL and other control characters that retitle or recolour a terminal, or bytes that are not
// UTF-8. This is the one place that makes such text safe, one function per output kind:
//
//   terminal (text reports, errors)  terminal_text: controls and invalid bytes become visible
//                                    escapes (\n, \e, \x07, ...); nothing else changes
//   HTML/SVG (XML)                   valid_xml_text, then append_xml_escaped
//   JSON                             valid_utf8 where a serialiser needs it; JSON documents are
//                                    written by nlohmann::json, whose escapes (\n, \u001b) are the
//                                    one representation of control characters in JSON
//
// docs/limits.md states the guarantee. All functions are pure and safe on any bytes.

#include <string>
#include <string_view>

namespace chokepoint::util {

// Text for a terminal: the result holds no C0 control (not even '\n' or '\t'), no DEL, no C1
// control, no bidirectional override or isolate, and only valid UTF-8. Each such character is
// spelled as a visible escape: \t \n \r \e, \xHH for the other C0 bytes, DEL and each byte that is
// not part of valid UTF-8, \u{HHHH} for C1 and bidi controls; a backslash becomes "\\" so the
// spelling is unambiguous. Printable text (any script) passes unchanged. Apply it once, at the
// point where a string is written: applying it twice escapes the backslashes again.
std::string terminal_text(std::string_view s);

// Valid UTF-8: each invalid or overlong sequence, surrogate, U+FFFE and U+FFFF becomes U+FFFD.
// JSON serialisers (nlohmann::json::dump) throw on invalid UTF-8; this makes names dumpable.
std::string valid_utf8(std::string_view s);

// valid_utf8, and also every C0 and C1 control character and DEL becomes a space: XML 1.0
// forbids most of them even as character references, and none is visible.
std::string valid_xml_text(std::string_view s);

// Appends text (already valid_xml_text) escaped for XML element content and attribute values in
// either quote style: & < > " '. Escaping '>' means "]]>" can never appear either.
void append_xml_escaped(std::string& out, std::string_view text);

}  // namespace chokepoint::util
