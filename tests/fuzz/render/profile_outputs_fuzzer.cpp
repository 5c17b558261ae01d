// Fuzzes the profile outputs (folded, flame graph SVG, speedscope) with hostile frame names.
//
// Input: byte 0 picks on-/off-CPU; the rest is stacks separated by 0x01, frames by 0x00; a
// frame's first byte picks its kind (mod 6), the rest is its name, which is also used as its
// module, file and unresolved reason. Each stack weighs 1 + its index.
//
// Invariants: the SVG holds exactly our one <script> and one <style> (two CDATA ends), balanced
// <g>/<title>/<text> elements, one <g class="f ..."> per drawn frame, is valid UTF-8 with no
// control characters but newlines; folded lines each end in " <digits>" and sum to the total;
// speedscope serialises (json::dump throws on invalid UTF-8) and its weights sum to the total.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "profile/profile.h"
#include "render/flamegraph_folded.h"
#include "render/flamegraph_svg.h"
#include "render/speedscope.h"
#include "util/escape.h"

namespace {

namespace profile = chokepoint::profile;
namespace render = chokepoint::render;

void check(bool ok) {
  if (!ok) std::abort();
}

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

profile::Profile profile_from(std::string_view in) {
  profile::Profile p;
  p.off_cpu = !in.empty() && (in[0] & 1);
  p.weight = p.off_cpu ? profile::Weight::kNanoseconds : profile::Weight::kSamples;
  if (!in.empty()) in.remove_prefix(1);
  p.title = std::string(in.substr(0, 40));
  p.notes.push_back(std::string(in.substr(0, 60)));
  std::uint64_t weight = 1;
  while (!in.empty()) {
    const auto stack_end = in.find('\x01');
    std::string_view stack_text = in.substr(0, stack_end);
    in = stack_end == std::string_view::npos ? std::string_view() : in.substr(stack_end + 1);
    profile::Stack s;
    s.value = weight;
    s.count = weight++;
    while (!stack_text.empty()) {
      const auto frame_end = stack_text.find('\0');
      std::string_view f = stack_text.substr(0, frame_end);
      stack_text = frame_end == std::string_view::npos ? std::string_view()
                                                       : stack_text.substr(frame_end + 1);
      if (f.empty()) continue;
      const auto kind = static_cast<profile::FrameKind>(static_cast<unsigned char>(f[0]) % 6);
      const std::string name(f.substr(1));
      s.frames.push_back({name, kind, name, name, static_cast<int>(name.size()), name});
    }
    p.stacks.push_back(std::move(s));
  }
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const profile::Profile p =
      profile_from(std::string_view(reinterpret_cast<const char*>(data), size));
  std::uint64_t total = 0;
  for (const auto& s : p.stacks) total += s.value;

  render::SvgOptions options;
  options.min_width_fraction = (size % 3) * 0.01;
  render::SvgStats stats;
  const std::string svg = render::flamegraph_svg(p, options, &stats);
  check(count(svg, "<script") == 1 && count(svg, "</script>") == 1);
  check(count(svg, "<style") == 1 && count(svg, "]]>") == 2);
  check(count(svg, "<g ") == count(svg, "</g>"));
  check(count(svg, "<title>") == count(svg, "</title>"));
  check(count(svg, "<text ") == count(svg, "</text>"));
  check(count(svg, "<g class=\"f ") == stats.frames_drawn);
  check(chokepoint::util::valid_utf8(svg) == svg);
  for (char c : svg) check(c == '\n' || static_cast<unsigned char>(c) >= 0x20);

  const std::string folded = render::folded(p);
  std::uint64_t folded_total = 0;
  std::size_t start = 0;
  while (start < folded.size()) {
    const auto end = folded.find('\n', start);
    check(end != std::string::npos);
    const std::string_view line(folded.data() + start, end - start);
    const auto blank = line.rfind(' ');
    check(blank != std::string_view::npos && blank + 1 < line.size());
    for (char c : line.substr(blank + 1)) check(c >= '0' && c <= '9');
    for (char c : line) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    folded_total += std::stoull(std::string(line.substr(blank + 1)));
    start = end + 1;
  }
  check(folded_total == total);

  const nlohmann::json j = render::speedscope(p);
  (void)j.dump();  // throws (and so crashes the fuzzer) on invalid UTF-8
  std::uint64_t weights = 0;
  for (const auto& w : j["profiles"][0]["weights"]) weights += w.get<std::uint64_t>();
  check(weights == total && j["profiles"][0]["endValue"].get<std::uint64_t>() == total);
  return 0;
}
