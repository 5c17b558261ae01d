#include "render/text_safety.h"

#include <cstdint>

namespace chokepoint::render {

namespace {

std::string clean(std::string_view s, bool strip_controls) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (strip_controls && (c < 0x20 || c == 0x7f)) ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    // RFC 3629: the lead byte gives the length; continuation bytes are 10xxxxxx.
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
    if (!ok) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER; resynchronise at the next byte
      ++i;
      continue;
    }
    if (strip_controls && cp <= 0x9F) {
      out += ' ';  // C1 controls
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace

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

}  // namespace chokepoint::render
