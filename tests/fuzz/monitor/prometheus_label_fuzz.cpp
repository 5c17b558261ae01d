// Fuzzes the Prometheus label escaping with any bytes as a target name: the sample line it makes
// is one line, valid UTF-8, and unescaping the quoted value gives back valid_utf8(input).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "render/prometheus_text.h"
#include "util/escape.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  chokepoint::render::ExpositionWriter w;
  w.sample("chokepoint_target_up", {{"target", raw}}, 1);
  const std::string line = w.take();
  const std::string prefix = "chokepoint_target_up{target=\"";
  const std::string suffix = "\"} 1\n";
  if (line.rfind(prefix, 0) != 0 || line.size() < prefix.size() + suffix.size()) std::abort();
  if (line.compare(line.size() - suffix.size(), suffix.size(), suffix) != 0) std::abort();
  if (line.find('\n') != line.size() - 1) std::abort();
  if (chokepoint::util::valid_utf8(line) != line) std::abort();
  const std::string quoted =
      line.substr(prefix.size(), line.size() - prefix.size() - suffix.size());
  std::string back;
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    char c = quoted[i];
    if (c == '"') std::abort();  // an unescaped quote would end the value early
    if (c == '\\') {
      if (++i >= quoted.size()) std::abort();
      c = quoted[i];
      if (c == 'n') {
        back += '\n';
      } else if (c == '\\' || c == '"') {
        back += c;
      } else {
        std::abort();
      }
    } else {
      back += c;
    }
  }
  if (back != chokepoint::util::valid_utf8(raw)) std::abort();
  return 0;
}
