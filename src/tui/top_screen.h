#pragma once
// `chokepoint top` on a terminal: the frames render/top_frame builds (one diagnosis window per
// interval) drawn full-screen with ncurses. The header (verdict, confidence, top evidence line,
// time split bar, CPU/run queue/PSI/disk/net) and the process and thread rows with the columns the
// --batch frames have; keys: q quit; c r d m p n sort by cpu, run queue, disk, rss, pid, name;
// / filter by name (Enter applies, Esc clears); t threads shown or collapsed; s the stacks now of
// the selected thread, or of the selected process's threads (stacks::capture_stacks), in a
// pager; P a few seconds' on-CPU profile of the selected thread or process, its hottest functions
// in the pager (live only: TopScreenSource::profile, run on a thread of its own, q or Esc cancel
// it); D the frame's full diagnose report (render::diagnosis_text) in the pager; i, o, l the
// disks, connections and locks panels (render::top_panel_lines) in place of the rows; arrows,
// j/k, PgUp/PgDn move the selection. Replay: space pauses, left/right step a frame back/forward,
// [ and ] jump 10 frames.
// KEY_RESIZE (SIGWINCH) redraws at the new size; the screen is erased and refreshed, so ncurses
// sends only what changed. Every observed name reaches the screen through util::terminal_text.
//
// Needs stdin and stdout on a terminal (the caller checks).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/observation.h"
#include "render/top_frame.h"

namespace chokepoint::tui {

struct TopScreenFrame {
  model::Observation observation;
  analysis::Diagnosis diagnosis;
  render::TopFrameInfo info;
};

// Where frames come from: live (poll_live returns a frame when a new window is ready, without
// blocking) or a recording (replay_count frames, replay_frame(i) builds frame i, 0-based).
struct TopScreenSource {
  std::function<std::optional<TopScreenFrame>()> poll_live;
  std::size_t replay_count = 0;
  std::function<TopScreenFrame(std::size_t)> replay_frame;
  std::int64_t interval_ns = 1'000'000'000;  // replay: how long a frame stays before the next
  std::string waiting;                       // live: what the screen says before the first frame
  // Live: the on-CPU profile of process pid (tid != 0: of that thread) over profile_ns, as the
  // pager's text (the hottest functions, or an error with its hint); it returns early, with what
  // it has, once *stop is set. Called on a thread of the screen's, one at a time.
  std::function<std::string(int pid, int tid, const std::atomic<bool>* stop)> profile;
  std::int64_t profile_ns = 5'000'000'000;
};

struct TopScreenOptions {
  render::TopFrameOptions frame;
  bool color = true;  // false: --no-color or NO_COLOR
};

// Runs until q (or until *stop, checked between keys). Returns the exit code (0).
int run_top_screen(const TopScreenSource& source, const TopScreenOptions& options,
                   const std::function<bool()>& stop);

}  // namespace chokepoint::tui
