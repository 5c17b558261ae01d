#include "render/memory_report.h"

#include <fmt/format.h>

#include "util/escape.h"
#include "util/plural.h"

namespace chokepoint::render {

std::string memory_sites_text(const std::vector<analysis::MemorySite>& sites, double duration_s,
                              const std::string& sampling, std::size_t top) {
  const auto rate = [&](std::uint64_t bytes) {
    return duration_s > 0 ? util::bytes_text(static_cast<double>(bytes) / duration_s) + "/s"
                          : std::string("-");
  };
  std::uint64_t live = 0, allocated = 0;
  for (const auto& s : sites) {
    live += s.live_bytes;
    allocated += s.allocated_bytes;
  }
  std::string out = fmt::format(
      "Allocation sites over {:.1f} s, leak candidates first (estimates: {}):\n"
      "  live: allocated during the window and not freed by its end ({} in all, +{}); "
      "allocated: {} in all ({})\n",
      duration_s, util::terminal_text(sampling), util::bytes_text(static_cast<double>(live)),
      rate(live), util::bytes_text(static_cast<double>(allocated)), rate(allocated));
  out += fmt::format("  {:>10} {:>12} {:>10} {:>12}  {}\n", "live", "growth", "allocated",
                     "alloc rate", "site");
  for (std::size_t i = 0; i < sites.size() && i < top; ++i) {
    const auto& s = sites[i];
    out += fmt::format("  {:>10} {:>12} {:>10} {:>12}  {}\n",
                       util::bytes_text(static_cast<double>(s.live_bytes)), rate(s.live_bytes),
                       util::bytes_text(static_cast<double>(s.allocated_bytes)),
                       rate(s.allocated_bytes), util::terminal_text(s.text));
  }
  if (sites.empty()) out += "  (no allocation was sampled)\n";
  return out;
}

}  // namespace chokepoint::render
