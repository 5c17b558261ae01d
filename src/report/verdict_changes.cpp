#include "report/verdict_changes.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "model/time_split.h"
#include "util/escape.h"

namespace chokepoint::report {
namespace {

using nlohmann::json;

constexpr int kNotSeen = -1;
constexpr auto kIdle = static_cast<std::size_t>(model::Resource::kIdle);
constexpr auto kSleep = static_cast<std::size_t>(model::Resource::kSleep);

std::string state_name(int state) {
  if (state < 0 || state >= static_cast<int>(model::kResourceCount)) return "not seen";
  return std::string(model::resource_name(static_cast<model::Resource>(state)));
}

std::string percent(double share) {
  return fmt::format("{:.0f}%", share * 100);
}

// A thread's row decoded to one state and one detail per column.
struct ThreadColumns {
  int pid = 0;
  std::string comm, process;
  std::vector<int> states, details;
};

ThreadColumns decode(const json& thread, std::size_t n) {
  ThreadColumns t;
  t.pid = thread.value("pid", 0);
  t.comm = thread.value("comm", "");
  t.process = thread.value("process", "");
  t.states.assign(n, kNotSeen);
  t.details.assign(n, kNotSeen);
  const json& runs = thread.at("runs");
  std::size_t c = 0;
  for (std::size_t i = 0; i + 2 < runs.size() && c < n; i += 3) {
    for (int k = 0; k < runs[i + 2].get<int>() && c < n; ++k, ++c) {
      t.states[c] = runs[i].get<int>();
      t.details[c] = runs[i + 1].get<int>();
    }
  }
  return t;
}

// The columns of one side of a change, nearest to the change first.
std::vector<std::size_t> outward(std::size_t from, std::size_t to, bool before) {
  std::vector<std::size_t> cols;
  for (std::size_t i = from; i < to; ++i) cols.push_back(i);
  if (before) std::reverse(cols.begin(), cols.end());
  return cols;
}

// The most frequent value of `values` over `cols`, `kNotSeen` skipped (kNotSeen when there is
// none); a tie goes to the value met first, nearest to the change. `where`: only the columns in
// which it holds count.
template <typename Where>
int most_frequent(const std::vector<int>& values, const std::vector<std::size_t>& cols,
                  Where where) {
  std::map<int, int> counts;
  int best = kNotSeen, best_count = 0;
  for (std::size_t c : cols) {
    if (values[c] == kNotSeen || !where(c)) continue;
    if (++counts[values[c]] > best_count) {
      best_count = counts[values[c]];
      best = values[c];
    }
  }
  return best;
}

// The mean of the columns' splits (8 shares of thread time); nullopt when none has one.
std::optional<std::vector<double>> mean_split(const json& split,
                                              const std::vector<std::size_t>& cols) {
  std::vector<double> sum(model::kResourceCount, 0.0);
  int rows = 0;
  for (std::size_t c : cols) {
    if (c >= split.size() || !split[c].is_array()) continue;
    for (std::size_t r = 0; r < model::kResourceCount && r < split[c].size(); ++r) {
      sum[r] += split[c][r].get<double>();
    }
    ++rows;
  }
  if (rows == 0) return std::nullopt;
  for (double& s : sum) s /= rows;
  return sum;
}

double busy_of(const std::vector<double>& split) {
  return std::max(0.0, 1.0 - split[kIdle] - split[kSleep]);
}

// A thread name split into a stem and a trailing number ("lab-loop-" and 3), so that the threads
// of one pool group as "lab-loop-0..3".
std::pair<std::string, std::optional<long>> name_stem(const std::string& comm) {
  std::size_t i = comm.size();
  while (i > 0 && i + 9 > comm.size() && comm[i - 1] >= '0' && comm[i - 1] <= '9') --i;
  if (i == comm.size() || i == 0) return {comm, std::nullopt};
  return {comm.substr(0, i), std::stol(comm.substr(i))};
}

struct Group {
  int pid = 0;
  std::string process, stem, first_comm;
  int from = kNotSeen, to = kNotSeen;
  int count = 0;
  bool all_numbered = true, one_name = true;
  long lowest = 0, highest = 0;
  std::map<int, int> from_details, to_details;

  std::string names() const {
    if (one_name) return first_comm;
    if (all_numbered) return fmt::format("{}{}..{}", stem, lowest, highest);
    return stem + "*";
  }
};

int top_detail(const std::map<int, int>& counts) {
  int best = kNotSeen, best_count = 0;
  for (const auto& [detail, count] : counts) {
    if (detail != kNotSeen && count > best_count) {
      best = detail;
      best_count = count;
    }
  }
  return best;
}

std::string detail_text(const json& details, int detail) {
  if (detail < 0 || static_cast<std::size_t>(detail) >= details.size()) return "";
  return details[static_cast<std::size_t>(detail)].get<std::string>();
}

// "disk (fdatasync /data/x)"; idle and sleep without their wait (what an idle thread waits in
// says little about the change).
std::string state_with_detail(int state, const std::string& detail) {
  const bool quiet = state == static_cast<int>(kIdle) || state == static_cast<int>(kSleep);
  if (detail.empty() || quiet || state < 0) return state_name(state);
  return state_name(state) + " (" + detail + ")";
}

struct Sides {
  std::vector<std::size_t> before, after;
};

json one_change(const json& timeline, const std::vector<ThreadColumns>& threads, std::size_t at,
                const Sides& sides, const ChangeOptions& o) {
  const json& columns = timeline.at("columns");
  const json& verdicts = timeline.at("verdicts");
  const json& details = timeline.value("details", json::array());
  const double column_s = timeline.value("column_s", 0.0);
  auto end_of = [&](std::size_t i) {
    return i + 1 < columns.size() ? columns[i + 1].get<double>()
                                  : columns[i].get<double>() + column_s;
  };
  json c;
  c["column"] = at;
  c["at_s"] = columns[at];
  c["from"] = verdict_label(verdicts[at - 1]);
  c["to"] = verdict_label(verdicts[at]);
  c["before_s"] = {columns[sides.before.back()], end_of(sides.before.front())};
  c["after_s"] = {columns[sides.after.front()], end_of(sides.after.back())};
  std::vector<std::string> parts;

  // The split: the busy share of thread time, and each busy resource's share of busy time.
  const auto before = mean_split(timeline.at("split"), sides.before);
  const auto after = mean_split(timeline.at("split"), sides.after);
  c["busy"] = nullptr;
  c["moved"] = json::array();
  if (before && after) {
    const double busy_before = busy_of(*before), busy_after = busy_of(*after);
    c["busy"] = {busy_before, busy_after};
    if (std::abs(busy_after - busy_before) >= o.min_share_move) {
      parts.push_back(fmt::format("busy {} -> {} of the threads' time", percent(busy_before),
                                  percent(busy_after)));
    }
    struct Move {
      std::size_t resource;
      double before, after;
    };
    std::vector<Move> moves;
    for (std::size_t r = 0; r < model::kResourceCount; ++r) {
      if (r == kIdle || r == kSleep) continue;
      const Move m{r, busy_before > 0 ? (*before)[r] / busy_before : 0.0,
                   busy_after > 0 ? (*after)[r] / busy_after : 0.0};
      if (std::abs(m.after - m.before) >= o.min_share_move) moves.push_back(m);
    }
    std::stable_sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) {
      return std::abs(a.after - a.before) > std::abs(b.after - b.before);
    });
    if (moves.size() > static_cast<std::size_t>(o.max_resources)) moves.resize(o.max_resources);
    std::string text;
    for (const Move& m : moves) {
      const std::string name = state_name(static_cast<int>(m.resource));
      c["moved"].push_back({{"resource", name}, {"before", m.before}, {"after", m.after}});
      text += fmt::format("{}{} {} -> {}", text.empty() ? "" : ", ", name, percent(m.before),
                          percent(m.after));
    }
    if (!text.empty()) parts.push_back(text + " of busy time");
  }

  // The threads whose main state changed, grouped by process, name and move.
  std::map<std::tuple<int, std::string, int, int>, Group> groups;
  auto busy = [](int state) {
    return state >= 0 && state != static_cast<int>(kIdle) && state != static_cast<int>(kSleep);
  };
  for (const ThreadColumns& t : threads) {
    int from = most_frequent(t.states, sides.before, [](std::size_t) { return true; });
    int to = most_frequent(t.states, sides.after, [](std::size_t) { return true; });
    auto seen_in = [&](const std::vector<std::size_t>& cols) {
      return static_cast<std::size_t>(std::count_if(
          cols.begin(), cols.end(), [&](std::size_t c) { return t.states[c] != kNotSeen; }));
    };
    // A thread absent from most of one side and busy on the other started (or ended) there: that
    // is its move, not the state of the few columns it was seen in (workers started in the last
    // column of a cpu run would otherwise read as in disk before the change too).
    if (busy(to) && 2 * seen_in(sides.before) < sides.before.size()) from = kNotSeen;
    if (busy(from) && 2 * seen_in(sides.after) < sides.after.size()) to = kNotSeen;
    if (from == to) continue;
    const auto [stem, number] = name_stem(t.comm);
    Group& g = groups[{t.pid, stem, from, to}];
    if (g.count == 0) {
      g.pid = t.pid;
      g.process = t.process;
      g.stem = stem;
      g.first_comm = t.comm;
      g.from = from;
      g.to = to;
      g.lowest = g.highest = number.value_or(0);
    }
    ++g.count;
    g.one_name = g.one_name && t.comm == g.first_comm;
    g.all_numbered = g.all_numbered && number.has_value();
    if (number) {
      g.lowest = std::min(g.lowest, *number);
      g.highest = std::max(g.highest, *number);
    }
    ++g.from_details[most_frequent(t.details, sides.before,
                                   [&](std::size_t col) { return t.states[col] == from; })];
    ++g.to_details[most_frequent(t.details, sides.after,
                                 [&](std::size_t col) { return t.states[col] == to; })];
  }
  std::vector<const Group*> ranked;
  ranked.reserve(groups.size());
  for (const auto& [key, g] : groups) ranked.push_back(&g);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Group* a, const Group* b) { return a->count > b->count; });
  c["threads"] = json::array();
  int more = 0;
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    const Group& g = *ranked[i];
    if (i >= static_cast<std::size_t>(o.max_thread_groups)) {
      more += g.count;
      continue;
    }
    const std::string from_detail = detail_text(details, top_detail(g.from_details));
    const std::string to_detail = detail_text(details, top_detail(g.to_details));
    c["threads"].push_back({{"pid", g.pid},
                            {"process", g.process},
                            {"names", g.names()},
                            {"count", g.count},
                            {"from", state_name(g.from)},
                            {"to", state_name(g.to)},
                            {"from_detail", from_detail},
                            {"to_detail", to_detail}});
    parts.push_back(fmt::format("{} {} {} of pid {} ({}) from {} to {}", g.count,
                                g.count == 1 ? "thread" : "threads", g.names(), g.pid, g.process,
                                state_with_detail(g.from, from_detail),
                                state_with_detail(g.to, to_detail)));
  }
  c["more_threads"] = more;
  if (more > 0) {
    parts.push_back(
        fmt::format("and {} more {} changed state", more, more == 1 ? "thread" : "threads"));
  }
  std::string text;
  for (const auto& p : parts) text += (text.empty() ? "" : "; ") + p;
  if (text.empty()) {
    text = fmt::format(
        "no share moved by {} or more and no thread changed its main state: a "
        "close call between the two verdicts",
        percent(o.min_share_move) + " points");
  }
  c["text"] = text;
  return c;
}

}  // namespace

std::string verdict_label(const json& verdict) {
  if (!verdict.is_object()) return "no thread seen";
  std::string label = verdict.value("verdict", "");
  // A verdict of none has no kind: its top bottleneck was not significant.
  if (verdict.contains("kind") && label != "none") label += " (" + verdict.value("kind", "") + ")";
  return label;
}

json verdict_changes(const json& timeline, const ChangeOptions& options) {
  json out = json::array();
  const json& verdicts = timeline.value("verdicts", json::array());
  const std::size_t n = std::min(verdicts.size(), timeline.value("columns", json::array()).size());
  if (n < 2) return out;
  std::vector<std::string> labels;
  labels.reserve(n);
  for (std::size_t i = 0; i < n; ++i) labels.push_back(verdict_label(verdicts[i]));
  std::vector<ThreadColumns> threads;
  for (const auto& t : timeline.value("threads", json::array())) threads.push_back(decode(t, n));
  const auto settled = static_cast<std::size_t>(std::max(1, options.settled_columns));
  // The first column of the run that holds column i.
  auto run_start = [&](std::size_t i) {
    while (i > 0 && labels[i - 1] == labels[i]) --i;
    return i;
  };
  for (std::size_t at = 1; at < n; ++at) {
    if (labels[at] == labels[at - 1]) continue;
    std::size_t first = run_start(at - 1);  // the previous verdict's run, and the runs under way
    while (first > 0 && at - first < settled && labels[first - 1] != labels[at]) {
      first = run_start(first - 1);
    }
    std::size_t last = at + 1;  // the new verdict's run, to the next change
    while (last < n && labels[last] == labels[at]) ++last;
    const Sides sides{outward(first, at, true), outward(at, last, false)};
    out.push_back(one_change(timeline, threads, at, sides, options));
  }
  return out;
}

json verdict_over_time_json(const json& timeline, double window_from_s) {
  if (!timeline.is_object()) return nullptr;  // no timeline was built
  const json& columns = timeline.value("columns", json::array());
  const json& verdicts = timeline.value("verdicts", json::array());
  if (columns.empty() || verdicts.empty()) return nullptr;
  return {{"column_s", timeline.value("column_s", 0.0)},
          {"columns", columns.size()},
          {"first", verdict_label(verdicts[0])},
          {"window_from_s", window_from_s},
          {"changes", timeline.value("changes", json::array())}};
}

std::string verdict_over_time_text(const json& timeline, double window_from_s) {
  const json over = verdict_over_time_json(timeline, window_from_s);
  if (over.is_null()) return "";
  const json& changes = over["changes"];
  std::string out =
      fmt::format("Verdict over time ({} columns of {:g} s): {} at {:.1f} s{}\n",
                  over["columns"].get<std::size_t>(), over["column_s"].get<double>(),
                  util::terminal_text(over["first"].get<std::string>()), window_from_s,
                  changes.empty() ? ", unchanged to the end"
                                  : fmt::format(", then {} {}", changes.size(),
                                                changes.size() == 1 ? "change" : "changes"));
  // As many as the page lists; --json has them all.
  constexpr std::size_t kListed = 12;
  for (std::size_t i = 0; i < changes.size() && i < kListed; ++i) {
    const json& c = changes[i];
    out += fmt::format("  at {:.1f} s: {} -> {}\n    why: {}\n",
                       window_from_s + c["at_s"].get<double>(),
                       util::terminal_text(c["from"].get<std::string>()),
                       util::terminal_text(c["to"].get<std::string>()),
                       util::terminal_text(c["text"].get<std::string>()));
  }
  if (changes.size() > kListed) {
    out += fmt::format("  and {} more changes (replay --json lists them all)\n",
                       changes.size() - kListed);
  }
  return out;
}

}  // namespace chokepoint::report
