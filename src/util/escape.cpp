#include "util/escape.h"

#include <fmt/format.h>

#include <cstdint>

namespace chokepoint::util {

namespace {

// One UTF-8 sequence at s[i]: its code point and length, or len 0 when the bytes there are not
// valid UTF-8 (RFC 3629: the lead byte gives the length, continuation bytes are 10xxxxxx; no
// overlong forms, surrogates or code points above U+10FFFF). U+FFFE and U+FFFF count as invalid:
// XML forbids them and no text needs them.
struct CodePoint {
  std::uint32_t cp = 0;
  std::size_t len = 0;
};

CodePoint decode(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {c, 1};
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  }
  bool ok = len != 0 && i + len <= s.size();
  for (std::size_t k = 1; ok && k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    ok = (cc & 0xC0) == 0x80;
    cp = (cp << 6) | (cc & 0x3F);
  }
  ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE &&
       cp != 0xFFFF;
  if (!ok) return {0, 0};
  return {cp, len};
}

// Walks `s` one UTF-8 sequence at a time, building the result: invalid(out, byte) for each byte
// that is not part of valid UTF-8 (resynchronising at the next byte), valid(out, code point, its
// bytes) for the rest.
template <typename Invalid, typename Valid>
std::string transcode(std::string_view s, Invalid invalid, Valid valid) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const CodePoint p = decode(s, i);
    if (p.len == 0) {
      invalid(out, static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    valid(out, p.cp, s.substr(i, p.len));
    i += p.len;
  }
  return out;
}

std::string clean(std::string_view s, bool strip_controls) {
  return transcode(
      s, [](std::string& out, unsigned char) { out += "\xEF\xBF\xBD"; },  // U+FFFD
      [&](std::string& out, std::uint32_t cp, std::string_view bytes) {
        if (strip_controls && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9F))) {
          out += ' ';  // C0, DEL and C1 controls
        } else {
          out.append(bytes);
        }
      });
}

// Characters that change how a terminal shows the text around them without being visible:
// bidirectional embeddings, overrides and isolates ("Trojan Source", CVE-2021-42574) and the
// line and paragraph separators.
bool invisible_control(std::uint32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E ||
         cp == 0x200F || cp == 0x061C || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

std::string terminal_text(std::string_view s) {
  return transcode(
      s, [](std::string& out, unsigned char byte) { out += fmt::format("\\x{:02x}", byte); },
      [](std::string& out, std::uint32_t cp, std::string_view bytes) {
        switch (cp) {
          case '\\':
            out += "\\\\";
            break;
          case '\t':
            out += "\\t";
            break;
          case '\n':
            out += "\\n";
            break;
          case '\r':
            out += "\\r";
            break;
          case 0x1b:
            out += "\\e";
            break;
          default:
            if (cp < 0x20 || cp == 0x7f) {
              out += fmt::format("\\x{:02x}", cp);
            } else if ((cp >= 0x80 && cp <= 0x9f) || invisible_control(cp)) {
              out += fmt::format("\\u{{{:04x}}}", cp);
            } else {
              out.append(bytes);
            }
        }
      });
}

std::string valid_utf8(std::string_view s) {
  return clean(s, false);
}

std::string valid_xml_text(std::string_view s) {
  return clean(s, true);
}

void append_xml_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace chokepoint::util
