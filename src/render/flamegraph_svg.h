#pragma once
// A self-contained interactive flame graph as one SVG document: inline CSS and JavaScript, no
// external fetches. Stacks are merged by prefix into a call tree (frames are the same node when
// name, kind and module match); each frame's width is its share of the profile's total. Click a
// frame to zoom into it, click the root or "Reset Zoom" to reset; "Search" (or Ctrl-F) highlights
// the frames whose name matches a regular expression and shows the matched share of the total.
// Hover shows a tooltip (<title>): name, samples or time, percent, module and file:line.
//
// Safety: every name, module, file, title and note is XML-escaped into text or attribute values;
// the script is a fixed string that reads names from the DOM (textContent / getAttribute) and
// writes them back only through textContent, so no name can inject markup or script.
//
// Pure function of the profile; no I/O. Format details in docs/profile-outputs.md.

#include <cstdint>
#include <string>

#include "profile/profile.h"

namespace chokepoint::render {

struct SvgOptions {
  int width_px = 1200;
  int frame_height_px = 16;
  // Frames narrower than this share of the total are not drawn (with their callees); the SVG
  // says how many were elided. 0.001 = 0.1%.
  double min_width_fraction = 0.001;
  // Empty: Profile::title, or "On-CPU Flame Graph" / "Off-CPU Time Flame Graph" when that is empty.
  std::string title;
  // false: the classic flame graph, root at the bottom; true: icicle, root at the top.
  bool inverted = false;
  // Non-empty: the SVG is for embedding inline in an HTML page whose Content-Security-Policy
  // allows scripts and styles by this nonce (report/page.h): no XML declaration, and its <style>
  // and <script> carry nonce="...". Base64 characters only.
  std::string nonce;
};

// What flamegraph_svg drew, for tests and for a caller that reports it.
struct SvgStats {
  std::uint64_t frames_drawn = 0;   // call-tree nodes drawn, including the root "all"
  std::uint64_t frames_elided = 0;  // call-tree nodes below min_width_fraction, not drawn
  int max_depth = 0;                // deepest drawn frame (the root "all" is depth 0)
};

// The SVG document (UTF-8, valid XML). On-CPU and off-CPU profiles get distinct palettes (warm
// for on-CPU, blue for off-CPU); within each, user, kernel, JIT, unresolved and synthetic
// process/thread frames have distinct hue families. Deterministic: the same profile gives the
// same bytes (children are ordered by name; colours are a hash of the name).
std::string flamegraph_svg(const profile::Profile& profile, const SvgOptions& options = {},
                           SvgStats* stats = nullptr);

}  // namespace chokepoint::render
