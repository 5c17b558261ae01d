#pragma once
// The hottest functions of a profile, by self and by total weight, as shares of the whole
// profile. Pure: no I/O.
//
//   self  = weight of the stacks whose leaf frame is the function (where the time was spent)
//   total = weight of the stacks that contain the function anywhere (the time spent in it and in
//           everything it called); a recursive function counts once per stack
//
// Functions are keyed by (name, module): the same name in two binaries is two functions.
// Synthetic process and thread frames are not functions and are left out (a stack made only of
// them, a sample without any address, still counts in the total weight).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "profile/profile.h"

namespace chokepoint::profile {

struct TopEntry {
  std::string name;
  std::string module;
  FrameKind kind = FrameKind::kUser;
  // Where in the source: of the function's frames, the file:line that carried the most weight
  // (for a leaf, its hottest line; for a caller, its busiest call site). Empty without debug info.
  std::string file;
  int line = 0;
  std::uint64_t self_value = 0;
  std::uint64_t total_value = 0;
  double self_share = 0;   // self_value / total weight of the profile
  double total_share = 0;  // total_value / total weight
};

struct TopTable {
  std::uint64_t total_value = 0;   // sum of every stack's value
  std::vector<TopEntry> by_self;   // descending self_value, then total, then name; at most n
  std::vector<TopEntry> by_total;  // descending total_value, then self, then name; at most n
};

// n == 0 keeps every function.
TopTable top(const Profile& profile, std::size_t n);

// Text for the terminal: two tables (self, total) with shares in percent and the weight unit
// (samples or ms off-CPU). Names, files and modules pass through util::terminal_text.
std::string top_text(const Profile& profile, const TopTable& table);

}  // namespace chokepoint::profile
