// Over 600 lines: one output format, start to end (the interned call tree, layout, colours and the
// escaped SVG text); its script is the asset flamegraph.js, its call tree profile/call_tree.h.
#include "render/flamegraph_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "profile/call_tree.h"
#include "render/flamegraph_js.h"  // generated from flamegraph.js
#include "util/escape.h"
#include "util/plural.h"

namespace chokepoint::render {

namespace {

using profile::FrameKind;

constexpr int kPadPx = 10;
constexpr int kFontPx = 12;
// Verdana's average advance is about 0.59 em: the label fits ~width / (0.59 * 12) characters.
constexpr double kCharPx = 0.59 * kFontPx;
constexpr int kMaxNoteLines = 8;

// ---- Text --------------------------------------------------------------------------------------

std::string clean_text(std::string_view s) {
  return util::valid_xml_text(s);
}

void append_escaped(std::string& out, std::string_view clean) {
  util::append_xml_escaped(out, clean);
}

void append_xml(std::string& out, std::string_view raw) {
  append_escaped(out, clean_text(raw));
}

// Number of code points of valid UTF-8.
std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The label that fits a frame `width_px` wide: the name, or its head and "..", or nothing.
// Mirrors fit() in the script, which redoes it on zoom.
std::string fit_label(std::string_view name, double width_px) {
  const auto fits = static_cast<long>(std::floor((width_px - 6) / kCharPx));
  if (fits < 3) return {};
  if (code_points(name) <= static_cast<std::size_t>(fits)) return std::string(name);
  std::string out;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const bool starts = (static_cast<unsigned char>(name[i]) & 0xC0) != 0x80;
    if (starts && kept == static_cast<std::size_t>(fits - 2)) break;
    kept += starts;
    out += name[i];
  }
  return out + "..";
}

// ---- Numbers -----------------------------------------------------------------------------------

std::string group_thousands(std::uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_ns(std::uint64_t ns) {
  const auto v = static_cast<double>(ns);
  if (ns < 1'000) return fmt::format("{} ns", ns);
  // Three significant digits, trailing zeros kept: "65.0 ms", "1.20 s", "312 us".
  auto three = [](double x, const char* unit) {
    const int decimals = x < 10 ? 2 : (x < 100 ? 1 : 0);
    return fmt::format("{:.{}f} {}", x, decimals, unit);
  };
  if (ns < 1'000'000) return three(v / 1e3, "\u00b5s");
  if (ns < 1'000'000'000) return three(v / 1e6, "ms");
  return three(v / 1e9, "s");
}

double percent(std::uint64_t part, std::uint64_t total) {
  return total == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(total);
}

// ---- Colours -----------------------------------------------------------------------------------

struct Rgb {
  int r, g, b;
};

Rgb hsl(double h_deg, double s, double l) {
  const double c = (1 - std::fabs(2 * l - 1)) * s;
  const double hp = std::fmod(h_deg, 360.0) / 60.0;
  const double x = c * (1 - std::fabs(std::fmod(hp, 2.0) - 1));
  double r = 0, g = 0, b = 0;
  if (hp < 1) {
    r = c, g = x;
  } else if (hp < 2) {
    r = x, g = c;
  } else if (hp < 3) {
    g = c, b = x;
  } else if (hp < 4) {
    g = x, b = c;
  } else if (hp < 5) {
    r = x, b = c;
  } else {
    r = c, b = x;
  }
  const double m = l - c / 2;
  auto to8 = [m](double v) { return static_cast<int>(std::lround((v + m) * 255)); };
  return {to8(r), to8(g), to8(b)};
}

// FNV-1a: a stable hash, so a function keeps its colour from one run to the next.
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// On-CPU: warm (user red to orange, kernel amber, JIT green as in FlameGraph's java palette);
// off-CPU: cool (user blue, kernel teal, JIT violet). Unresolved frames are grey in both, the
// synthetic process/thread frames a pale neutral, so each kind reads apart from the others.
Rgb frame_colour(bool off_cpu, FrameKind kind, std::string_view name) {
  const std::uint64_t h = fnv1a(name);
  const double v1 = static_cast<double>(h & 0xffff) / 65535.0;
  const double v2 = static_cast<double>((h >> 16) & 0xffff) / 65535.0;
  switch (kind) {
    case FrameKind::kUser:
      return off_cpu ? hsl(205 + 25 * v1, 0.70, 0.55 + 0.10 * v2)
                     : hsl(0 + 28 * v1, 0.80, 0.55 + 0.10 * v2);
    case FrameKind::kKernel:
      return off_cpu ? hsl(168 + 18 * v1, 0.60, 0.42 + 0.10 * v2)
                     : hsl(40 + 15 * v1, 0.85, 0.48 + 0.08 * v2);
    case FrameKind::kJit:
      return off_cpu ? hsl(262 + 25 * v1, 0.55, 0.62 + 0.08 * v2)
                     : hsl(90 + 40 * v1, 0.55, 0.50 + 0.10 * v2);
    case FrameKind::kUnresolved:
      return hsl(0, 0, 0.62 + 0.08 * v2);
    case FrameKind::kProcess:
    case FrameKind::kThread:
      return off_cpu ? hsl(215, 0.18, 0.74 + 0.05 * v2) : hsl(30, 0.30, 0.74 + 0.05 * v2);
  }
  return hsl(0, 0, 0.6);
}

const char* kind_class(FrameKind kind) {
  switch (kind) {
    case FrameKind::kUser:
      return "ku";
    case FrameKind::kKernel:
      return "kk";
    case FrameKind::kJit:
      return "kj";
    case FrameKind::kUnresolved:
      return "kx";
    case FrameKind::kProcess:
    case FrameKind::kThread:
      return "kp";
  }
  return "ku";
}

const char* kind_text(FrameKind kind) {
  switch (kind) {
    case FrameKind::kUser:
      return "user";
    case FrameKind::kKernel:
      return "kernel";
    case FrameKind::kJit:
      return "JIT";
    case FrameKind::kUnresolved:
      return "unresolved";
    case FrameKind::kProcess:
      return "process";
    case FrameKind::kThread:
      return "thread";
  }
  return "user";
}

// ---- Call tree ----------------------------------------------------------------------------------
//
// The shared call tree (profile/call_tree.h) keyed by (name, kind, module): the stacks below any
// node are one contiguous run of its sorted stacks, in the order the flame graph draws them
// (children by name). A node's value is then a prefix-sum difference over its run, and the number
// of nodes below it (to count what elision hides) is a sum of (length - common prefix with the
// previous stack) over the run. Only nodes wide enough to draw are visited.

// A distinct (name, kind, module): the identity of a flame graph frame.
struct Key {
  std::string name;    // clean_text of the frame name ("[unknown]" when empty)
  std::string module;  // clean_text of the module
  FrameKind kind = FrameKind::kUser;
  friend bool operator<(const Key& a, const Key& b) {
    return std::tie(a.name, a.kind, a.module) < std::tie(b.name, b.kind, b.module);
  }
  friend bool operator==(const Key&, const Key&) = default;
};

constexpr std::uint32_t kNone = UINT32_MAX;

// One frame to draw.
struct Node {
  std::uint32_t key = kNone;  // index into Drawing::keys; kNone for the root "all"
  std::uint32_t depth = 0;    // the root is 0
  std::uint64_t x = 0;        // offset from the left, in weight units
  std::uint64_t value = 0;
  std::uint64_t self = 0;
  std::uint64_t count = 0;
  // Of the frames merged here, the least by (file, line, unresolved): where the tooltip says it
  // is. The least rather than the first, so the output does not depend on the stacks' order.
  const profile::Frame* rep = nullptr;
  bool mixed_location = false;  // merged frames disagree on file:line
};

// The nodes wide enough to draw.
struct Drawing {
  std::vector<Key> keys;    // sorted by (name, kind, module): a key's index is its rank
  std::vector<Node> nodes;  // the drawn nodes in preorder, children left to right
  std::uint64_t total = 0;
  std::uint64_t total_count = 0;
  std::uint64_t elided = 0;  // nodes too narrow to draw, with everything below them
  int max_depth = 0;
};

Drawing draw_call_tree(const profile::Profile& profile, double min_fraction) {
  profile::CallTree<Key> tree = profile::build_call_tree<Key>(
      profile,
      [](const profile::Frame& f, std::string& buf) { profile::append_frame_bytes(f, buf, false); },
      [](const profile::Frame& f) {
        return Key{f.name.empty() ? "[unknown]" : clean_text(f.name), clean_text(f.module), f.kind};
      });
  Drawing t;
  t.total = tree.total_value;
  t.total_count = tree.total_count;
  const std::vector<profile::TreeStack>& seqs = tree.stacks;
  auto seq_ids = [&](const profile::TreeStack& s) { return tree.ranks(s); };

  // Over the sorted stacks: common prefix with the previous one, and prefix sums of value,
  // count and new nodes (len - lcp).
  const std::size_t n = seqs.size();
  const std::vector<std::uint32_t> lcp = profile::shared_prefix(tree);
  std::vector<std::uint64_t> pv(n + 1, 0), pc(n + 1, 0), pn(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    pv[i + 1] = pv[i] + seqs[i].value;
    pc[i + 1] = pc[i] + seqs[i].count;
    pn[i + 1] = pn[i] + (seqs[i].len - lcp[i]);
  }

  const auto min_value = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(min_fraction * static_cast<double>(t.total))));

  // A task: the stacks [a, b) that share their first `depth` frames and continue below the node
  // at that depth, which sits at x.
  struct Task {
    std::size_t a, b;
    std::uint32_t depth;
    std::uint64_t x;
  };
  std::vector<Task> todo;
  std::vector<Task> children;
  // Splits [a, b) (sharing `depth` frames) into its children's runs: drawn ones into `children`
  // left to right, packed from x; elided ones counted.
  auto split = [&](std::size_t a, std::size_t b, std::uint32_t depth, std::uint64_t x) {
    children.clear();
    std::size_t i = a;
    while (i < b && seqs[i].len == depth) ++i;  // stacks that end here: self time
    while (i < b) {
      std::size_t j = i + 1;
      while (j < b && lcp[j] > depth) ++j;
      const std::uint64_t value = pv[j] - pv[i];
      if (value >= min_value) {
        children.push_back({i, j, depth + 1, x});
        x += value;
      } else {
        t.elided += (seqs[i].len - depth) + (pn[j] - pn[i + 1]);
      }
      i = j;
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it) todo.push_back(*it);
  };

  Node root;
  root.value = t.total;
  root.count = t.total_count;
  t.nodes.push_back(root);
  split(0, n, 0, 0);
  while (!todo.empty()) {
    const Task task = todo.back();
    todo.pop_back();
    const std::uint32_t at = task.depth - 1;  // index of this node's frame in each stack
    Node node;
    node.key = seq_ids(seqs[task.a])[at];
    node.depth = task.depth;
    node.x = task.x;
    node.value = pv[task.b] - pv[task.a];
    node.count = pc[task.b] - pc[task.a];
    node.rep = &seqs[task.a].frames[at];
    for (std::size_t i = task.a; i < task.b; ++i) {
      const profile::Frame& f = seqs[i].frames[at];
      if (seqs[i].len == task.depth) node.self += seqs[i].value;
      if (f.file != node.rep->file || f.line != node.rep->line) node.mixed_location = true;
      if (std::tie(f.file, f.line, f.unresolved) <
          std::tie(node.rep->file, node.rep->line, node.rep->unresolved)) {
        node.rep = &f;
      }
    }
    t.max_depth = std::max(t.max_depth, static_cast<int>(node.depth));
    t.nodes.push_back(node);
    split(task.a, task.b, task.depth, task.x);
  }
  t.keys = std::move(tree.keys);
  return t;
}

// ---- Document ----------------------------------------------------------------------------------

constexpr std::string_view kStyle = R"css(
text { font-family: Verdana, "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 12px; fill: rgb(0,0,0); }
#title { font-size: 17px; font-weight: bold; }
.sub { fill: rgb(50,50,50); }
.honesty { fill: rgb(90,90,90); }
.honesty.warn { fill: rgb(170,0,0); }
.note { font-size: 11px; fill: rgb(80,80,80); }
.btn { cursor: pointer; fill: rgb(30,60,170); }
.btn.on { font-weight: bold; text-decoration: underline; }
.h { display: none; }
g.f { cursor: pointer; }
g.f text { pointer-events: none; }
g.f:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.6; }
g.a > rect { opacity: 0.55; }
g.m > rect { fill: rgb(230,0,230); }
)css";

// The script is a constant: it never contains a name. It reads names from data-n attributes and
// <title> text, and writes labels with textContent only, so names cannot become code or markup.
// It lives in flamegraph.js, embedded at build time as kFlamegraphScript (render/CMakeLists.txt).
constexpr std::string_view kScript = kFlamegraphScript;

static_assert(kScript.find("]]>") == std::string_view::npos, "the script sits in a CDATA section");
static_assert(kStyle.find("]]>") == std::string_view::npos, "the style sits in a CDATA section");

std::string default_title(const profile::Profile& p) {
  if (!p.title.empty()) return p.title;
  if (p.weight == profile::Weight::kBytes) return "Memory Flame Graph";
  return p.off_cpu ? "Off-CPU Time Flame Graph" : "On-CPU Flame Graph";
}

std::string format_value(const profile::Profile& p, std::uint64_t v) {
  if (p.weight == profile::Weight::kNanoseconds) return format_ns(v);
  if (p.weight == profile::Weight::kBytes) return util::bytes_text(static_cast<double>(v));
  return group_thousands(v) + (v == 1 ? " sample" : " samples");
}

std::string totals_line(const profile::Profile& p, std::uint64_t total, std::uint64_t count) {
  std::string s;
  if (p.weight == profile::Weight::kNanoseconds) {
    s = format_ns(total) + (p.off_cpu ? " off-CPU" : "");
    if (p.duration_s > 0) s += fmt::format(" over {:.1f} s", p.duration_s);
    // A profile read back from folded text (a recording) has no counts: none are claimed.
    if (count > 0)
      s += " in " + group_thousands(count) + (p.off_cpu ? " context switches" : " events");
  } else if (p.weight == profile::Weight::kBytes) {
    s = format_value(p, total);
    if (p.duration_s > 0) s += fmt::format(" over {:.1f} s", p.duration_s);
    s += " (estimated)";
    if (count > 0) s += " from " + group_thousands(count) + " sampled allocations";
  } else {
    s = format_value(p, total);
    if (p.frequency_hz > 0) s += fmt::format(" at {:g} Hz", p.frequency_hz);
    if (p.duration_s > 0) s += fmt::format(" over {:.1f} s", p.duration_s);
    if (p.frequency_hz > 0) {
      s += fmt::format(" (\u2248 {:.2f} s of CPU)", static_cast<double>(total) / p.frequency_hz);
    }
  }
  if (total == 0) s += " \u2014 nothing was recorded";
  return s;
}

void append_tooltip(std::string& out, const profile::Profile& p, const Drawing& t, const Node& node,
                    std::uint64_t total) {
  const bool root = node.key == kNone;
  append_escaped(out, root ? std::string_view("all") : std::string_view(t.keys[node.key].name));
  out += '\n';
  out += format_value(p, node.value);
  fmt::format_to(std::back_inserter(out), ", {:.2f}%", percent(node.value, total));
  const bool counts = t.total_count > 0;  // none in a profile read back from folded text
  if (p.weight == profile::Weight::kNanoseconds) {
    if (counts) out += ", " + group_thousands(node.count) + (p.off_cpu ? " switches" : " events");
  } else if (p.weight == profile::Weight::kBytes) {
    if (counts) out += ", " + group_thousands(node.count) + " sampled allocations";
  } else if (p.frequency_hz > 0) {
    fmt::format_to(std::back_inserter(out), ", \u2248 {:.3g} s",
                   static_cast<double>(node.value) / p.frequency_hz);
  }
  if (!root) {
    fmt::format_to(std::back_inserter(out), " (self {}, {:.2f}%)", format_value(p, node.self),
                   percent(node.self, total));
    const Key& key = t.keys[node.key];
    out += '\n';
    out += kind_text(key.kind);
    if (key.kind == FrameKind::kUnresolved && !node.rep->unresolved.empty()) {
      out += ": ";
      append_xml(out, node.rep->unresolved);
    }
    if (!key.module.empty()) {
      out += "\nmodule: ";
      append_escaped(out, key.module);
    }
    if (!node.rep->file.empty()) {
      out += "\nsource: ";
      append_xml(out, node.rep->file);
      if (node.rep->line > 0) fmt::format_to(std::back_inserter(out), ":{}", node.rep->line);
      if (node.mixed_location) out += " (and other lines)";
    }
  }
}

}  // namespace

std::string flamegraph_svg(const profile::Profile& profile, const SvgOptions& options,
                           SvgStats* stats_out) {
  const double min_fraction = std::max(0.0, options.min_width_fraction);
  const Drawing tree = draw_call_tree(profile, min_fraction);
  const std::uint64_t total = tree.total;
  SvgStats stats;
  stats.frames_drawn = tree.nodes.size();
  stats.frames_elided = tree.elided;
  stats.max_depth = tree.max_depth;

  const int width = std::max(options.width_px, 200);
  const int fh = std::max(options.frame_height_px, 8);
  const double span = width - 2 * kPadPx;
  const double scale = total == 0 ? 0.0 : span / static_cast<double>(total);

  // Header: title, totals, honesty counters, notes (the overflow goes into a tooltip).
  const bool honest_warn =
      profile.lost_samples != 0 || profile.truncated_stacks != 0 || profile.failed_stacks != 0;
  const std::size_t note_lines = std::min<std::size_t>(profile.notes.size(), kMaxNoteLines);
  const bool more_notes = profile.notes.size() > kMaxNoteLines;
  const int notes_top = 76;
  const int header_bottom =
      notes_top + static_cast<int>(note_lines + (more_notes ? 1 : 0)) * 14 - 4;
  const int frames_top = header_bottom + 6;
  const int rows = stats.max_depth + 1;
  const int frames_bottom = frames_top + rows * fh;
  const int details_y = frames_bottom + 20;
  const int legend_y = details_y + 20;
  const int height = legend_y + 12;

  std::string out;
  out.reserve(4096 + tree.nodes.size() * 400);
  if (options.nonce.empty()) {
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  }
  std::string nonce_attr;
  if (!options.nonce.empty()) {
    nonce_attr = " nonce=\"";
    append_xml(nonce_attr, options.nonce);
    nonce_attr += "\"";
  }
  fmt::format_to(std::back_inserter(out),
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" "
                 "height=\"{1}\" viewBox=\"0 0 {0} {1}\" class=\"{2}\" data-total=\"{3}\" "
                 "data-pad=\"{4}\" data-span=\"{5}\" data-char-px=\"{6:.3f}\" "
                 "data-unit=\"{7}\">\n",
                 width, height, profile.off_cpu ? "offcpu" : "oncpu", total, kPadPx, span, kCharPx,
                 profile.weight == profile::Weight::kNanoseconds ? "nanoseconds"
                 : profile.weight == profile::Weight::kBytes     ? "bytes"
                                                                 : "samples");
  out += "<style type=\"text/css\"" + nonce_attr + "><![CDATA[";
  out += kStyle;
  out += "]]></style>\n";
  out += "<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">";
  out += profile.off_cpu ? "<stop stop-color=\"rgb(248,248,252)\" offset=\"5%\"/>"
                           "<stop stop-color=\"rgb(224,232,246)\" offset=\"95%\"/>"
                         : "<stop stop-color=\"rgb(238,238,238)\" offset=\"5%\"/>"
                           "<stop stop-color=\"rgb(238,238,176)\" offset=\"95%\"/>";
  out += "</linearGradient></defs>\n";
  fmt::format_to(std::back_inserter(out),
                 "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"url(#background)\"/>\n",
                 width, height);

  out += "<text id=\"title\" x=\"";
  fmt::format_to(std::back_inserter(out), "{}\" y=\"24\" text-anchor=\"middle\">", width / 2);
  append_xml(out, options.title.empty() ? default_title(profile) : options.title);
  out += "</text>\n";
  fmt::format_to(std::back_inserter(out),
                 "<text id=\"reset\" class=\"btn h\" x=\"{}\" y=\"24\">Reset Zoom</text>\n"
                 "<text id=\"search\" class=\"btn\" x=\"{}\" y=\"24\" "
                 "text-anchor=\"end\">Search</text>\n"
                 "<text id=\"ic\" class=\"btn\" x=\"{}\" y=\"24\" text-anchor=\"end\">"
                 "<title>ignore case in searches</title>ic</text>\n",
                 kPadPx, width - kPadPx - 24, width - kPadPx);
  fmt::format_to(std::back_inserter(out),
                 "<text id=\"totals\" class=\"sub\" x=\"{}\" y=\"44\" text-anchor=\"middle\">",
                 width / 2);
  append_xml(out, totals_line(profile, total, tree.total_count));
  out += "</text>\n";
  fmt::format_to(std::back_inserter(out),
                 "<text id=\"honesty\" class=\"honesty{}\" x=\"{}\" y=\"62\" "
                 "text-anchor=\"middle\">lost {}: {} \u00b7 truncated stacks: {} \u00b7 failed "
                 "stacks: {} \u00b7 frames narrower than {:g}% not drawn: {}</text>\n",
                 honest_warn ? " warn" : "", width / 2, profile.off_cpu ? "events" : "samples",
                 group_thousands(profile.lost_samples), group_thousands(profile.truncated_stacks),
                 group_thousands(profile.failed_stacks), min_fraction * 100,
                 group_thousands(stats.frames_elided));
  for (std::size_t i = 0; i < note_lines; ++i) {
    fmt::format_to(std::back_inserter(out), "<text class=\"note\" x=\"{}\" y=\"{}\">", kPadPx,
                   notes_top + static_cast<int>(i) * 14);
    out += "note: ";
    append_xml(out, profile.notes[i]);
    out += "</text>\n";
  }
  if (more_notes) {
    fmt::format_to(std::back_inserter(out), "<text class=\"note\" x=\"{}\" y=\"{}\"><title>",
                   kPadPx, notes_top + static_cast<int>(note_lines) * 14);
    for (std::size_t i = kMaxNoteLines; i < profile.notes.size(); ++i) {
      if (i != kMaxNoteLines) out += '\n';
      append_xml(out, profile.notes[i]);
    }
    fmt::format_to(std::back_inserter(out), "</title>and {} more notes (hover to read)</text>\n",
                   profile.notes.size() - kMaxNoteLines);
  }

  out += "<g id=\"frames\">\n";
  const Rgb root_colour{200, 200, 200};
  for (const Node& node : tree.nodes) {
    const bool root = node.key == kNone;
    const std::string_view name =
        root ? std::string_view("all") : std::string_view(tree.keys[node.key].name);
    const FrameKind kind = root ? FrameKind::kProcess : tree.keys[node.key].kind;
    const Rgb c = root ? root_colour : frame_colour(profile.off_cpu, kind, name);
    const double px = kPadPx + static_cast<double>(node.x) * scale;
    const double pw = total == 0 ? span : static_cast<double>(node.value) * scale;
    const int row = options.inverted ? static_cast<int>(node.depth)
                                     : stats.max_depth - static_cast<int>(node.depth);
    const int y = frames_top + row * fh;
    fmt::format_to(std::back_inserter(out), "<g class=\"f {}\" data-x=\"{}\" data-w=\"{}\" ",
                   root ? "kr" : kind_class(kind), node.x, node.value);
    fmt::format_to(std::back_inserter(out), "data-d=\"{}\" data-n=\"", node.depth);
    append_escaped(out, name);
    out += "\"><title>";
    append_tooltip(out, profile, tree, node, total);
    fmt::format_to(std::back_inserter(out),
                   "</title><rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" rx=\"2\" "
                   "fill=\"rgb({},{},{})\"/><text x=\"{:.2f}\" y=\"{}\">",
                   px, y, std::max(pw - 0.5, 0.1), fh - 1, c.r, c.g, c.b, px + 3, y + fh - 4);
    append_escaped(out, fit_label(name, pw));
    out += "</text></g>\n";
  }
  out += "</g>\n";

  fmt::format_to(std::back_inserter(out),
                 "<text id=\"details\" x=\"{}\" y=\"{}\"> </text>\n"
                 "<text id=\"matched\" x=\"{}\" y=\"{}\" text-anchor=\"end\"></text>\n",
                 kPadPx, details_y, width - kPadPx, details_y);
  // Legend: which colour family is which kind of frame, in this palette.
  out += "<g id=\"legend\">";
  int lx = kPadPx;
  for (FrameKind kind : {FrameKind::kUser, FrameKind::kKernel, FrameKind::kJit,
                         FrameKind::kUnresolved, FrameKind::kProcess}) {
    const Rgb c = frame_colour(profile.off_cpu, kind, "legend");
    const char* label = kind == FrameKind::kProcess ? "process/thread" : kind_text(kind);
    fmt::format_to(std::back_inserter(out),
                   "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" rx=\"2\" "
                   "fill=\"rgb({},{},{})\"/><text x=\"{}\" y=\"{}\">{}</text>",
                   kind_class(kind), lx, legend_y - 9, c.r, c.g, c.b, lx + 16, legend_y, label);
    lx += 16 + static_cast<int>(std::string_view(label).size() * kCharPx) + 18;
  }
  out += "</g>\n";

  out += "<script type=\"text/ecmascript\"" + nonce_attr + "><![CDATA[";
  out += kScript;
  out += "]]></script>\n</svg>\n";

  if (stats_out != nullptr) *stats_out = stats;
  return out;
}

}  // namespace chokepoint::render
