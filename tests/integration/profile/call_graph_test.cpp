// --call-graph fp versus dwarf on a program built without frame pointers (dwarf_target.c): with
// frame pointers the callers of its hot functions are lost; with DWARF unwinding nearly every
// sample of the hot leaf carries main -> dwarf_outer -> dwarf_middle -> dwarf_leaf, and nearly
// every sample of the qsort comparator carries main -> dwarf_sort -> qsort... -> dwarf_compare,
// through Debian's libc, which keeps no frame pointers either.
//
// Robust on a loaded 2-core machine: the shares compared are of the target's own samples, so
// fewer samples (the target got less CPU) only widen the noise, and the bounds (>= 90 % with
// dwarf, <= 50 % with fp) sit far from what a run gives (about 99 % and 0 %).
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::profile_test {
namespace {

using test_support::expect_cli_error;
using test_support::read_file;
using test_support::run_chokepoint;
using test_support::TempDir;

const std::string kTarget = DWARF_TARGET;

struct Folded {
  std::vector<std::string> frames;  // outermost first
  std::uint64_t count = 0;
};

// "a;b;c 12" lines (render/flamegraph_folded.h).
std::vector<Folded> parse_folded(const std::string& text) {
  std::vector<Folded> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    Folded f;
    f.count = std::stoull(line.substr(space + 1));
    std::istringstream stack(line.substr(0, space));
    std::string frame;
    while (std::getline(stack, frame, ';')) f.frames.push_back(frame);
    out.push_back(std::move(f));
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// The frames of a folded line after the process frame, by function name (the symbolizer appends
// nothing to names in folded output, but be lenient about suffixes).
std::size_t find_frame(const Folded& f, const std::string& name, std::size_t from = 1) {
  for (std::size_t i = from; i < f.frames.size(); ++i) {
    if (f.frames[i] == name || starts_with(f.frames[i], name + " ")) return i;
  }
  return std::string::npos;
}

struct Shares {
  std::uint64_t leaf = 0, leaf_full = 0;        // samples in dwarf_leaf; with the full chain
  std::uint64_t compare = 0, compare_full = 0;  // samples in dwarf_compare; with the full chain
  std::string stderr_text;
};

// main -> dwarf_outer -> dwarf_middle -> dwarf_leaf, nothing between them.
bool leaf_chain(const Folded& f) {
  const std::size_t m = find_frame(f, "main");
  return m != std::string::npos && f.frames.size() == m + 4 && f.frames[m + 1] == "dwarf_outer" &&
         f.frames[m + 2] == "dwarf_middle" && f.frames[m + 3] == "dwarf_leaf";
}

// main -> dwarf_sort -> (libc frames, one of them qsort or qsort_r) -> dwarf_compare.
bool compare_chain(const Folded& f) {
  const std::size_t m = find_frame(f, "main");
  if (m == std::string::npos || m + 1 >= f.frames.size() || f.frames[m + 1] != "dwarf_sort") {
    return false;
  }
  bool through_qsort = false;
  for (std::size_t i = m + 2; i + 1 < f.frames.size(); ++i) {
    if (f.frames[i].find("qsort") != std::string::npos) through_qsort = true;
  }
  return through_qsort && f.frames.back() == "dwarf_compare";
}

// Profiles a fresh dwarf_target for `seconds` with `call_graph`; nullopt (after GTEST_SKIP) when
// perf events are not available here.
std::optional<Shares> profile(const std::string& call_graph, const std::string& seconds) {
  TempDir d{"chokepoint-call-graph"};
  const std::string folded = d.path + "/out.folded";
  // The target runs a little longer than the window, so it is alive for the whole of it.
  auto r = run_chokepoint(
      {"profile", "--call-graph", call_graph, "--user-only", "--frequency", "499", "--duration",
       seconds + "s", "-o", folded, "--", kTarget, std::to_string(std::stoi(seconds) + 5)},
      60);
  if (r.exit_code != 0 && (r.stderr_text.find("Permission denied") != std::string::npos ||
                           r.stderr_text.find("refused DWARF-mode") != std::string::npos ||
                           r.stderr_text.find("is not available") != std::string::npos)) {
    return std::nullopt;
  }
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  Shares s;
  s.stderr_text = r.stderr_text;
  for (const Folded& f : parse_folded(read_file(folded))) {
    if (f.frames.empty()) continue;
    if (f.frames.back() == "dwarf_leaf") {
      s.leaf += f.count;
      if (leaf_chain(f)) s.leaf_full += f.count;
    } else if (f.frames.back() == "dwarf_compare") {
      s.compare += f.count;
      if (compare_chain(f)) s.compare_full += f.count;
    }
  }
  return s;
}

TEST(ProfileCallGraph, DwarfFindsCallersThatFramePointersLose) {
  auto fp = profile("fp", "3");
  if (!fp) GTEST_SKIP() << "perf events are not available here";
  auto dwarf = profile("dwarf", "4");
  if (!dwarf) GTEST_SKIP() << "this kernel cannot copy user stacks (PERF_SAMPLE_STACK_USER)";

  // Enough samples of each path to make the shares mean something even on a busy machine.
  ASSERT_GE(fp->leaf, 20u) << fp->stderr_text;
  ASSERT_GE(fp->compare, 20u) << fp->stderr_text;
  ASSERT_GE(dwarf->leaf, 20u) << dwarf->stderr_text;
  ASSERT_GE(dwarf->compare, 20u) << dwarf->stderr_text;

  // Frame pointers: the callers are mostly missing.
  EXPECT_LE(fp->leaf_full * 2, fp->leaf) << fp->stderr_text;
  EXPECT_LE(fp->compare_full * 2, fp->compare) << fp->stderr_text;
  // DWARF: at least 90 % of each leaf's samples carry the full chain.
  EXPECT_GE(dwarf->leaf_full * 10, dwarf->leaf * 9)
      << dwarf->leaf_full << " of " << dwarf->leaf << "\n"
      << dwarf->stderr_text;
  EXPECT_GE(dwarf->compare_full * 10, dwarf->compare * 9)
      << dwarf->compare_full << " of " << dwarf->compare << "\n"
      << dwarf->stderr_text;
  // The unwinder's counters are shown, never silent.
  EXPECT_NE(dwarf->stderr_text.find("DWARF-unwound"), std::string::npos) << dwarf->stderr_text;
}

TEST(ProfileCallGraph, BadModesAreUsageErrors) {
  const std::string self = std::to_string(getpid());
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--call-graph", "lbr"}), 2,
                   "unknown mode");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--call-graph", "dwarf,100"}), 2,
                   "multiple of 8");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--call-graph", "dwarf,70000"}), 2,
                   "65528");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--call-graph", "dwarf,abc"}), 2,
                   "not a number");
  expect_cli_error(run_chokepoint({"profile", "--pid", self, "--off-cpu", "--call-graph", "dwarf"}),
                   2, "--off-cpu");
}

}  // namespace
}  // namespace chokepoint::profile_test
