#pragma once
// The text table of `chokepoint profile --memory`: allocation sites (analysis::memory_sites) with
// the bytes still live at the end of the window (leak candidates) and their growth rate, and the
// bytes allocated and their rate. Reads, never collects.

#include <cstddef>
#include <string>
#include <vector>

#include "analysis/stack_evidence.h"

namespace chokepoint::render {

// At most `top` sites. `sampling` says how the figures were sampled ("one sample per 64 KiB
// allocated on average"); `duration_s` turns bytes into rates.
std::string memory_sites_text(const std::vector<analysis::MemorySite>& sites, double duration_s,
                              const std::string& sampling, std::size_t top);

}  // namespace chokepoint::render
