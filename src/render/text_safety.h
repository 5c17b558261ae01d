#pragma once
// Text from the profiled process (symbol names, paths, comm) is untrusted bytes: a stripped or
// hostile binary may name a function anything. These make it safe for the text formats the
// renderers write.

#include <string>
#include <string_view>

namespace chokepoint::render {

// Valid UTF-8: each invalid or overlong sequence, surrogate, U+FFFE and U+FFFF becomes U+FFFD.
// JSON serialisers (nlohmann::json::dump) throw on invalid UTF-8; this makes names dumpable.
std::string valid_utf8(std::string_view s);

// valid_utf8, and also every C0 and C1 control character and DEL becomes a space: XML 1.0
// forbids most of them even as character references, and none is visible.
std::string valid_xml_text(std::string_view s);

// Appends text (already valid_xml_text) escaped for XML element content and attribute values in
// either quote style: & < > " '. Escaping '>' means "]]>" can never appear either.
void append_xml_escaped(std::string& out, std::string_view text);

}  // namespace chokepoint::render
