#include "render/flamegraph_svg.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <cstdio>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "unit/render/sample_profile.h"

namespace chokepoint::render {
namespace {

using namespace sample;  // NOLINT: the sample profiles

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command and captures its stdout (stderr goes to the test log).
Run run(const std::string& command) {
  Run r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool have(const std::string& tool) {
  return run("command -v " + tool + " >/dev/null").exit_code == 0;
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Single-quotes an argument for /bin/sh.
std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// xmllint --xpath on the file; the result as text.
std::string xpath(const std::string& path, const std::string& expr) {
  std::string out = run("xmllint --xpath " + sh_quote(expr) + " " + path).out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void expect_well_formed(const std::string& svg, const std::string& name) {
  if (!have("xmllint")) GTEST_SKIP() << "xmllint is missing: scripts/setup installs libxml2-utils";
  const std::string path = write_temp(name, svg);
  EXPECT_EQ(run("xmllint --noout " + path).exit_code, 0) << "not well-formed XML: " << path;
}

// Runs the SVG's script in node (svg_script_harness.js) through `actions`; the final state.
nlohmann::json script_state(const std::string& svg, const std::string& actions) {
  const std::string path = write_temp("script.svg", svg);
  const Run r = run("node " CHOKEPOINT_SOURCE_DIR "/tests/unit/render/svg_script_harness.js " +
                    path + " " + sh_quote(actions));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
}

const nlohmann::json& frame_state(const nlohmann::json& state, const std::string& name) {
  for (const auto& f : state["frames"]) {
    if (f["name"] == name) return f;
  }
  ADD_FAILURE() << "no frame " << name;
  static const nlohmann::json none;
  return none;
}

// One drawn frame as the SVG holds it (attribute values still escaped).
struct DrawnFrame {
  std::string kind;  // ku kk kj kx kp kr
  std::string name;
  int r = 0, g = 0, b = 0;
  double x = 0, width = 0;
};

std::string attr(const std::string& element, const std::string& name, std::size_t from = 0) {
  const std::string key = " " + name + "=\"";
  const auto at = element.find(key, from);
  if (at == std::string::npos) return {};
  const auto begin = at + key.size();
  return element.substr(begin, element.find('"', begin) - begin);
}

std::vector<DrawnFrame> drawn_frames(const std::string& svg) {
  std::vector<DrawnFrame> out;
  const std::string open = "<g class=\"f ";
  for (auto at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const std::string el = svg.substr(at, svg.find("</g>", at) - at);
    DrawnFrame f;
    f.kind = el.substr(open.size(), 2);
    f.name = attr(el, "data-n");
    const auto rect = el.find("<rect ");
    f.x = std::stod(attr(el, "x", rect));
    f.width = std::stod(attr(el, "width", rect));
    EXPECT_EQ(std::sscanf(attr(el, "fill", rect).c_str(), "rgb(%d,%d,%d)", &f.r, &f.g, &f.b), 3);
    out.push_back(f);
  }
  return out;
}

const DrawnFrame& drawn(const std::vector<DrawnFrame>& frames, const std::string& name) {
  for (const auto& f : frames) {
    if (f.name == name) return f;
  }
  ADD_FAILURE() << "no drawn frame " << name;
  static const DrawnFrame none;
  return none;
}

TEST(FlamegraphSvg, IsWellFormedXml) {
  expect_well_formed(flamegraph_svg(lab_cpu_profile()), "lab_cpu.svg");
  expect_well_formed(flamegraph_svg(lab_offcpu_profile()), "lab_offcpu.svg");
  expect_well_formed(flamegraph_svg(profile::Profile{}), "empty.svg");
  SvgOptions icicle;
  icicle.inverted = true;
  expect_well_formed(flamegraph_svg(lab_cpu_profile(), icicle), "icicle.svg");
}

TEST(FlamegraphSvg, SelfContainedWithZoomSearchAndTooltips) {
  const std::string svg = flamegraph_svg(lab_cpu_profile());
  EXPECT_NE(svg.find("<script type=\"text/ecmascript\"><![CDATA["), std::string::npos);
  EXPECT_NE(svg.find("function zoom("), std::string::npos);
  EXPECT_NE(svg.find("function search("), std::string::npos);
  EXPECT_NE(svg.find("new RegExp("), std::string::npos);
  EXPECT_NE(svg.find("<style type=\"text/css\">"), std::string::npos);
  // No external fetches: nothing references another document.
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("http://", svg.find("xmlns=\"http://www.w3.org/2000/svg\"") + 40),
            std::string::npos);
  EXPECT_EQ(svg.find("https://"), std::string::npos);
  EXPECT_EQ(svg.find("@import"), std::string::npos);
  // Tooltip of the hottest function: name, samples, percent, module, source.
  EXPECT_NE(svg.find("<title>lab_cpu_hash_rounds\n70 samples, 58.33%"), std::string::npos) << svg;
  EXPECT_NE(svg.find("module: /opt/lab/chokepoint-lab\nsource: lab/cpu.cpp:41</title>"),
            std::string::npos);
  // Merged lines 60 and 61 say so.
  EXPECT_NE(svg.find("source: lab/cpu.cpp:60 (and other lines)"), std::string::npos);
  EXPECT_NE(svg.find("unresolved: stripped"), std::string::npos);
}

TEST(FlamegraphSvg, TitleTotalsAndHonestyCounters) {
  profile::Profile p = lab_cpu_profile();
  p.lost_samples = 1234;
  p.truncated_stacks = 5;
  p.failed_stacks = 6;
  p.notes = {"kernel.kptr_restrict hides kernel addresses", "the target exited after 3.2 s"};
  const std::string svg = flamegraph_svg(p);
  EXPECT_NE(svg.find(">chokepoint-lab (pid 1234), on-CPU, 99 Hz, 10.0 s</text>"),
            std::string::npos);
  EXPECT_NE(svg.find("120 samples at 99 Hz over 10.0 s"), std::string::npos);
  EXPECT_NE(svg.find("lost samples: 1,234"), std::string::npos);
  EXPECT_NE(svg.find("truncated stacks: 5"), std::string::npos);
  EXPECT_NE(svg.find("failed stacks: 6"), std::string::npos);
  EXPECT_NE(svg.find("class=\"honesty warn\""), std::string::npos);
  EXPECT_NE(svg.find("note: kernel.kptr_restrict hides kernel addresses"), std::string::npos);
  EXPECT_NE(svg.find("note: the target exited after 3.2 s"), std::string::npos);
  expect_well_formed(svg, "honesty.svg");
}

TEST(FlamegraphSvg, ManyNotesOverflowIntoATooltipNotSilence) {
  profile::Profile p = lab_cpu_profile();
  for (int i = 0; i < 12; ++i) p.notes.push_back("note number " + std::to_string(i));
  const std::string svg = flamegraph_svg(p);
  for (int i = 0; i < 12; ++i) {
    EXPECT_NE(svg.find("note number " + std::to_string(i)), std::string::npos) << i;
  }
  EXPECT_NE(svg.find("and 4 more notes"), std::string::npos);
}

// The XSS test: names, modules, files, unresolved reasons, notes and the title are attacker
// controlled (any binary can name a symbol anything, a process can name itself anything).
TEST(FlamegraphSvg, HostileNamesCannotInjectMarkupOrScript) {
  const std::string evil_script = "</title><script>alert(1)</script>";
  const std::string evil_cdata = "]]><script>alert(2)</script><![CDATA[";
  const std::string evil_quotes = "a\"b'c\" onload=\"alert(3)";
  const std::string evil_js = "');alert(4);//\\";
  profile::Profile p;
  p.title = "<svg onload=alert(5)> & </text>";
  p.notes = {"<script>alert(6)</script>"};
  profile::Stack s;
  s.frames = {process(evil_script + " (1)"),
              {evil_cdata, FrameKind::kUser, evil_quotes, "</title>file.cpp", 7, ""},
              user(evil_quotes),
              user(evil_js),
              {"[x+0x1]", FrameKind::kUnresolved, "m", "", 0, "<b>why</b>"}};
  s.value = 10;
  p.stacks.push_back(s);
  const std::string svg = flamegraph_svg(p);

  EXPECT_EQ(svg.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_EQ(svg.find("]]><script"), std::string::npos);
  EXPECT_EQ(svg.find("onload=\""), std::string::npos);
  EXPECT_EQ(svg.find("<svg onload"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  // "]]>" appears exactly twice: closing the style's and the script's CDATA sections.
  std::size_t cdata_ends = 0;
  for (auto at = svg.find("]]>"); at != std::string::npos; at = svg.find("]]>", at + 1)) {
    ++cdata_ends;
  }
  EXPECT_EQ(cdata_ends, 2u);

  if (!have("xmllint")) GTEST_SKIP() << "xmllint is missing: scripts/setup installs libxml2-utils";
  const std::string path = write_temp("hostile.svg", svg);
  ASSERT_EQ(run("xmllint --noout " + path).exit_code, 0);
  // A parser sees one script and one style, and the names back as plain text.
  EXPECT_EQ(xpath(path, "count(//*[local-name()='script'])"), "1");
  EXPECT_EQ(xpath(path, "count(//*[local-name()='style'])"), "1");
  EXPECT_EQ(xpath(path, "count(//@*[starts-with(name(), 'on')])"), "0");
  EXPECT_EQ(xpath(path, "string(//*[local-name()='g'][@data-d='1']/@data-n)"),
            evil_script + " (1)");
  EXPECT_EQ(xpath(path, "string(//*[local-name()='g'][@data-d='2']/@data-n)"), evil_cdata);
  EXPECT_EQ(xpath(path, "string(//*[local-name()='g'][@data-d='3']/@data-n)"), evil_quotes);
  EXPECT_EQ(xpath(path, "string(//*[local-name()='g'][@data-d='4']/@data-n)"), evil_js);
  EXPECT_EQ(xpath(path, "string(//*[@id='title'])"), p.title);
  // The tooltip holds the module and file as text.
  const std::string tip =
      xpath(path, "string(//*[local-name()='g'][@data-d='2']/*[local-name()='title'])");
  EXPECT_NE(tip.find("module: " + evil_quotes), std::string::npos) << tip;
  EXPECT_NE(tip.find("source: </title>file.cpp:7"), std::string::npos) << tip;

  // And the script handles them as data: searching for a hostile name finds its frame.
  if (!have("node")) GTEST_SKIP() << "node is missing: scripts/setup installs nodejs";
  const nlohmann::json state = script_state(svg, R"js([{"search": "alert\\(4\\)"}])js");
  EXPECT_TRUE(frame_state(state, evil_js)["matched"]);
  EXPECT_FALSE(frame_state(state, evil_quotes)["matched"]);
}

TEST(FlamegraphSvg, InvalidUtf8AndControlCharactersStayWellFormed) {
  profile::Profile p;
  p.title = std::string("title\x01\xff");
  profile::Stack s;
  s.frames = {user(std::string("bad\xc3\x28utf8")), user(std::string("nul\0byte", 8)),
              user("\xed\xa0\x80surrogate"), user("ok \xe2\x9c\x93 check"), user("c1\xc2\x85next")};
  s.value = 1;
  p.stacks.push_back(s);
  const std::string svg = flamegraph_svg(p);
  EXPECT_NE(svg.find("ok \xe2\x9c\x93 check"), std::string::npos);  // valid UTF-8 is kept
  expect_well_formed(svg, "utf8.svg");
}

TEST(FlamegraphSvg, OnAndOffCpuPalettesDiffer) {
  const std::string on = flamegraph_svg(lab_cpu_profile());
  const std::string off = flamegraph_svg(lab_offcpu_profile());
  EXPECT_NE(on.find("class=\"oncpu\""), std::string::npos);
  EXPECT_NE(off.find("class=\"offcpu\""), std::string::npos);
  // The fill of every user frame: warm (red dominates blue) on-CPU, cool (blue dominates red)
  // off-CPU; kernel frames amber on-CPU and teal off-CPU; unresolved grey in both.
  auto check = [&](const std::string& svg, bool off_cpu) {
    int users = 0, kernels = 0, jits = 0, unresolved = 0;
    for (const DrawnFrame& f : drawn_frames(svg)) {
      const std::string what = f.name + " " + f.kind;
      if (f.kind == "ku") {
        ++users;
        if (off_cpu) {
          EXPECT_GT(f.b, f.r) << what;
        } else {
          EXPECT_GT(f.r, f.b) << what;
          EXPECT_GE(f.r, f.g) << what;
        }
      } else if (f.kind == "kk") {
        ++kernels;
        if (off_cpu) {
          EXPECT_GT(f.g, f.r) << what;  // teal
          EXPECT_GT(f.b, f.r) << what;
        } else {
          EXPECT_GT(f.r, f.b) << what;  // amber: red and green well above blue
          EXPECT_GT(f.g, f.b + 60) << what;
        }
      } else if (f.kind == "kj") {
        ++jits;
        if (off_cpu) {
          EXPECT_GT(f.b, f.g) << what;  // violet
        } else {
          EXPECT_GT(f.g, f.r) << what;  // green
        }
      } else if (f.kind == "kx") {
        ++unresolved;
        EXPECT_TRUE(f.r == f.g && f.g == f.b) << what;
      }
    }
    EXPECT_GT(users, 0);
    EXPECT_EQ(kernels, 1);
    EXPECT_EQ(jits, 1);
    EXPECT_EQ(unresolved, 1);
  };
  check(on, false);
  check(off, true);
  // The same function is coloured differently in the two profiles.
  const std::vector<DrawnFrame> on_frames = drawn_frames(on);
  const std::vector<DrawnFrame> off_frames = drawn_frames(off);
  const DrawnFrame& hot_on = drawn(on_frames, "lab_cpu_hash_rounds");
  const DrawnFrame& hot_off = drawn(off_frames, "lab_cpu_hash_rounds");
  EXPECT_NE(std::tie(hot_on.r, hot_on.g, hot_on.b), std::tie(hot_off.r, hot_off.g, hot_off.b));
  EXPECT_NE(off.find("ms off-CPU over 10.0 s in"), std::string::npos);
  EXPECT_NE(off.find("70.0 ms, 58.33%, 70 switches (self 65.0 ms, 54.17%)"), std::string::npos);
}

TEST(FlamegraphSvg, ElidesNarrowFramesAndCountsThem) {
  profile::Profile p;
  p.stacks.push_back({{user("main"), user("hot")}, 100'000, 100'000});
  // Five stacks of 0.001% each under "main", each two frames deep: 10 frames below 0.1%.
  for (int i = 0; i < 5; ++i) {
    p.stacks.push_back({{user("main"), user("cold" + std::to_string(i)), user("leaf")}, 1, 1});
  }
  // One frame at 0.2%: drawn.
  p.stacks.push_back({{user("main"), user("warm")}, 200, 200});
  SvgStats stats;
  const std::string svg = flamegraph_svg(p, {}, &stats);
  EXPECT_EQ(stats.frames_elided, 10u);
  EXPECT_EQ(stats.frames_drawn, 4u);  // all, main, hot, warm
  EXPECT_EQ(svg.find("cold"), std::string::npos);
  EXPECT_NE(svg.find("data-n=\"warm\""), std::string::npos);
  EXPECT_NE(svg.find("frames narrower than 0.1% not drawn: 10"), std::string::npos);

  SvgOptions all;
  all.min_width_fraction = 0;
  const std::string full = flamegraph_svg(p, all, &stats);
  EXPECT_EQ(stats.frames_elided, 0u);
  EXPECT_EQ(stats.frames_drawn, 14u);
  EXPECT_NE(full.find("data-n=\"cold4\""), std::string::npos);
}

TEST(FlamegraphSvg, CallTreeMergesByPrefixWithProportionalWidths) {
  SvgStats stats;
  const std::string svg = flamegraph_svg(lab_cpu_profile(), {}, &stats);
  // all, process, start_thread, worker_loop, handle_cpu, hash_rounds, kernel irq, checksum,
  // Interpreter::run, unresolved, weird name: 11 nodes.
  EXPECT_EQ(stats.frames_drawn, 11u);
  EXPECT_EQ(stats.max_depth, 6);
  // hash_rounds is 70 of 120 samples: 70/120 of the 1180 px span (less a 0.5 px gap).
  const std::vector<DrawnFrame> frames = drawn_frames(svg);
  EXPECT_NEAR(drawn(frames, "lab_cpu_hash_rounds").width, 1180.0 * 70 / 120 - 0.5, 0.01);
  EXPECT_NEAR(drawn(frames, "all").width, 1179.5, 0.01);
  // Children sit inside their parent, left to right by name.
  const DrawnFrame& handle = drawn(frames, "lab::handle_cpu(Request const&amp;)");
  const DrawnFrame& checksum = drawn(frames, "lab_cpu_checksum");
  const DrawnFrame& hash = drawn(frames, "lab_cpu_hash_rounds");
  EXPECT_NEAR(checksum.x, handle.x, 0.01);
  EXPECT_NEAR(hash.x, checksum.x + 1180.0 * 30 / 120, 0.01);
  // Control characters in names become spaces in the SVG.
  EXPECT_NE(svg.find("data-n=\"weird;name with newline\""), std::string::npos);
}

TEST(FlamegraphSvg, DeterministicWhateverTheStackOrder) {
  const std::string first = flamegraph_svg(lab_cpu_profile());
  for (unsigned seed = 1; seed <= 5; ++seed) {
    EXPECT_EQ(flamegraph_svg(shuffled(lab_cpu_profile(), seed)), first);
  }
}

TEST(FlamegraphSvg, ScriptZoomsIntoAFrameAndResets) {
  if (!have("node")) GTEST_SKIP() << "node is missing: scripts/setup installs nodejs";
  const std::string svg = flamegraph_svg(lab_cpu_profile());
  nlohmann::json s = script_state(svg, R"js([{"click": "lab::handle_cpu(Request const&)"}])js");
  const auto& handle = frame_state(s, "lab::handle_cpu(Request const&)");
  EXPECT_FALSE(handle["hidden"]);
  EXPECT_NEAR(handle["x"].get<double>(), 10, 0.01);
  EXPECT_NEAR(handle["width"].get<double>(), 1179.5, 0.01);
  // handle_cpu holds 100 of 120 samples; hash_rounds 70 of those 100 after the zoom.
  EXPECT_NEAR(frame_state(s, "lab_cpu_hash_rounds")["width"].get<double>(), 1180.0 * 0.7 - 0.5,
              0.01);
  EXPECT_TRUE(frame_state(s, "start_thread")["ancestor"]);
  EXPECT_NEAR(frame_state(s, "start_thread")["width"].get<double>(), 1179.5, 0.01);
  EXPECT_TRUE(frame_state(s, "Interpreter::run")["hidden"]);
  EXPECT_FALSE(s["reset_hidden"]);
  EXPECT_EQ(frame_state(s, "lab_cpu_hash_rounds")["label"], "lab_cpu_hash_rounds");

  s = script_state(svg, R"js([{"click": "lab_cpu_checksum"}, {"button": "reset"}])js");
  EXPECT_TRUE(s["reset_hidden"]);
  for (const auto& f : s["frames"]) {
    EXPECT_FALSE(f["hidden"]) << f;
    EXPECT_FALSE(f["ancestor"]) << f;
  }
  EXPECT_NEAR(frame_state(s, "lab_cpu_checksum")["width"].get<double>(), 1180.0 * 30 / 120 - 0.5,
              0.01);
  // Clicking the root resets too; Escape as well.
  s = script_state(svg, R"js([{"click": "lab_cpu_checksum"}, {"click": "all"}])js");
  EXPECT_TRUE(s["reset_hidden"]);
  s = script_state(svg, R"js([{"click": "lab_cpu_checksum"}, {"key": "Escape"}])js");
  EXPECT_TRUE(s["reset_hidden"]);
}

TEST(FlamegraphSvg, ScriptSearchHighlightsAndReportsTheMatchedShare) {
  if (!have("node")) GTEST_SKIP() << "node is missing: scripts/setup installs nodejs";
  const std::string svg = flamegraph_svg(lab_cpu_profile());
  nlohmann::json s = script_state(svg, R"js([{"search": "^lab_cpu_"}])js");
  EXPECT_TRUE(frame_state(s, "lab_cpu_hash_rounds")["matched"]);
  EXPECT_TRUE(frame_state(s, "lab_cpu_checksum")["matched"]);
  EXPECT_FALSE(frame_state(s, "start_thread")["matched"]);
  EXPECT_EQ(s["matched"], "Matched: 83.33% (2 frames)");  // (70 + 30) / 120
  EXPECT_EQ(s["search_label"], "Reset Search");
  // Nested matches count once: handle_cpu contains hash_rounds.
  s = script_state(svg, R"js([{"search": "handle_cpu|hash_rounds"}])js");
  EXPECT_EQ(s["matched"], "Matched: 83.33% (2 frames)");
  // Case: "ic" toggles ignore-case.
  s = script_state(svg, R"js([{"search": "INTERPRETER"}])js");
  EXPECT_EQ(s["matched"], "Matched: 0.00% (0 frames)");
  s = script_state(svg, R"js([{"button": "ic"}, {"search": "INTERPRETER"}])js");
  EXPECT_EQ(s["matched"], "Matched: 8.33% (1 frames)");
  // A bad expression says so instead of throwing.
  s = script_state(svg, R"js([{"search": "(unclosed"}])js");
  EXPECT_NE(s["matched"].get<std::string>().find("Invalid regular expression"), std::string::npos);
  // Hover shows the tooltip's first two lines in the details bar.
  s = script_state(svg, R"js([{"hover": "lab_cpu_checksum"}])js");
  EXPECT_EQ(s["details"].get<std::string>().rfind("lab_cpu_checksum \u2014 30 samples, 25.00%", 0),
            0u)
      << s["details"];
}

}  // namespace
}  // namespace chokepoint::render
