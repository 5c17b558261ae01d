#include "profile/folded.h"

#include <charconv>
#include <string>

namespace chokepoint::profile {

util::Result<void> parse_folded(std::string_view text, Profile& into) {
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_number;
    if (line.empty()) continue;
    const std::size_t blank = line.rfind(' ');
    std::uint64_t value = 0;
    const std::string_view number =
        blank == std::string_view::npos ? std::string_view() : line.substr(blank + 1);
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      return util::Error{
          "folded stacks: line " + std::to_string(line_number) + " does not end in a value",
          "each line is 'frame;frame;frame value'", 0};
    }
    Stack stack;
    stack.value = value;
    std::string_view frames = line.substr(0, blank);
    while (true) {
      const std::size_t semi = frames.find(';');
      std::string_view name = frames.substr(0, semi);
      Frame f;
      if (name.size() > 4 && name.substr(name.size() - 4) == "_[k]") {
        f.kind = FrameKind::kKernel;
        name.remove_suffix(4);
      } else if (name.size() > 4 && name.substr(name.size() - 4) == "_[j]") {
        f.kind = FrameKind::kJit;
        name.remove_suffix(4);
      }
      f.name = std::string(name);
      stack.frames.push_back(std::move(f));
      if (semi == std::string_view::npos) break;
      frames.remove_prefix(semi + 1);
    }
    into.stacks.push_back(std::move(stack));
  }
  return {};
}

}  // namespace chokepoint::profile
