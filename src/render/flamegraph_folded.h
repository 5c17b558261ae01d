#pragma once
// Folded stacks: the text format of Brendan Gregg's FlameGraph tools (flamegraph.pl, and what
// stackcollapse-*.pl produce), one line per distinct stack:
//
//   frame;frame;frame value\n
//
// Frames outermost first. Pure function of the profile; no I/O. Format details in
// docs/profile-outputs.md.

#include <string>

#include "profile/profile.h"

namespace chokepoint::render {

// One line per distinct folded stack, sorted frame by frame: by the first frame's folded text
// (byte-wise), then the second, ..., a stack before its own extensions. That is the flame
// graph's left-to-right order, and the same profile always gives the same bytes. (It differs
// from sorting whole lines as text where a name holds a byte below ';', e.g. "a;x" comes before
// "a::b"; flamegraph.pl sorts its input itself, so either order draws the same graph.) Stacks
// that fold to the same text (frames that differ only in file:line or module) are merged and
// their values summed; stacks with value 0 are left out. A stack without frames folds to the
// single frame "[no frames]".
//
// The value is Stack::value unchanged: samples on-CPU, NANOSECONDS off-CPU (pass
// --countname=ns to flamegraph.pl). The values of all lines sum to the profile's total.
//
// Frame names are made safe for the format: ';' becomes ':' and every control character
// (newline, tab, ...) becomes a space, so each stack stays one parseable line; an empty name
// becomes "[unknown]". Kernel frames get the suffix "_[k]" and JIT frames "_[j]", as
// stackcollapse-perf.pl --all annotates them (flamegraph.pl colours them by it).
std::string folded(const profile::Profile& profile);

// The name one frame has in folded output (sanitized and annotated as described above).
std::string folded_frame_name(const profile::Frame& frame);

}  // namespace chokepoint::render
