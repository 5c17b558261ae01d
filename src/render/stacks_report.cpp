#include "render/stacks_report.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "render/json_text.h"
#include "util/escape.h"

namespace chokepoint::render {

namespace {

std::string micros(std::int64_t ns) {
  return fmt::format("{:.0f} us", static_cast<double>(ns) / 1e3);
}

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "park_in_mutex (stacks_target.c:20)", "__lll_lock_wait [libc.so.6]", "futex_wait [kernel]".
std::string frame_text(const profile::Frame& f) {
  std::string out = util::terminal_text(f.name);
  if (!f.file.empty()) {
    out += fmt::format(" ({}:{})", util::terminal_text(basename_of(f.file)), f.line);
  } else if (f.kind == profile::FrameKind::kKernel) {
    out += " [kernel]";
  } else if (!f.module.empty() && f.kind != profile::FrameKind::kUnresolved) {
    out += fmt::format(" [{}]", util::terminal_text(basename_of(f.module)));
  }
  return out;
}

std::string wait_text(const stacks::StackGroup& g) {
  if (g.resource == model::Resource::kOnCpu) return "running";
  std::string out(model::resource_name(g.resource));
  constexpr std::size_t kShown = 3;
  for (std::size_t i = 0; i < g.waits.size() && i < kShown; ++i) {
    const auto& [detail, count] = g.waits[i];
    if (detail.empty()) continue;
    out += i == 0 ? ": " : "; ";
    out += util::terminal_text(detail);
    if (g.waits.size() > 1) out += fmt::format(" x{}", count);
  }
  if (g.waits.size() > kShown) out += fmt::format("; {} more", g.waits.size() - kShown);
  return out;
}

}  // namespace

std::string stacks_text(const stacks::StackDump& dump) {
  const auto groups = stacks::group_stacks(dump);
  std::string out = fmt::format("stacks of pid {} ({}): {} thread{}, {} distinct stack{}\n",
                                dump.pid, util::terminal_text(dump.name), dump.threads.size(),
                                dump.threads.size() == 1 ? "" : "s", groups.size(),
                                groups.size() == 1 ? "" : "s");
  out += fmt::format(
      "each thread stopped only for its read (8 at a time at most): {} of {} threads, {} median, "
      "{} max; {:.1f} ms in all\n",
      dump.threads_stopped, dump.threads.size(), micros(dump.stop_median_ns),
      micros(dump.stop_max_ns), static_cast<double>(dump.elapsed_ns) / 1e6);
  std::map<int, const stacks::ThreadStack*> by_tid;
  for (const auto& t : dump.threads) by_tid[t.tid] = &t;
  for (const auto& g : groups) {
    out += fmt::format("\n{} thread{}  state {}  ", g.tids.size(), g.tids.size() == 1 ? "" : "s",
                       g.state);
    if (!g.syscall.empty()) out += fmt::format("in {}  ", util::terminal_text(g.syscall));
    out += fmt::format("wait {}\n", wait_text(g));
    // The threads: tids with their names, the first few.
    constexpr std::size_t kTids = 8;
    std::string tids;
    for (std::size_t i = 0; i < g.tids.size() && i < kTids; ++i) {
      const auto* t = by_tid[g.tids[i]];
      tids += fmt::format("{}{} {}", i == 0 ? "" : ", ", g.tids[i],
                          util::terminal_text(t != nullptr ? t->name : std::string()));
    }
    if (g.tids.size() > kTids) tids += fmt::format(", {} more", g.tids.size() - kTids);
    out += fmt::format("  threads: {}\n", tids);
    for (std::size_t i = 0; i < g.frames.size(); ++i) {
      out += fmt::format("  #{:<3} {}\n", i, frame_text(g.frames[i]));
    }
    if (g.frames.empty()) out += "  (no frames)\n";
    if (!g.problem.empty()) out += fmt::format("  ({})\n", util::terminal_text(g.problem));
  }
  for (const auto& note : dump.notes) out += fmt::format("\nnote: {}", util::terminal_text(note));
  if (!dump.notes.empty()) out += "\n";
  return out;
}

std::string stacks_json(const stacks::StackDump& dump) {
  nlohmann::json j;
  j["pid"] = dump.pid;
  j["name"] = dump.name;
  j["threads"] = dump.threads.size();
  j["threads_stopped"] = dump.threads_stopped;
  j["stop_median_us"] = static_cast<double>(dump.stop_median_ns) / 1e3;
  j["stop_max_us"] = static_cast<double>(dump.stop_max_ns) / 1e3;
  j["elapsed_ms"] = static_cast<double>(dump.elapsed_ns) / 1e6;
  std::map<int, const stacks::ThreadStack*> by_tid;
  for (const auto& t : dump.threads) by_tid[t.tid] = &t;
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : stacks::group_stacks(dump)) {
    nlohmann::json jg;
    jg["count"] = g.tids.size();
    jg["state"] = std::string(1, g.state);
    jg["syscall"] = g.syscall;
    jg["resource"] = std::string(model::resource_name(g.resource));
    nlohmann::json waits = nlohmann::json::array();
    for (const auto& [detail, count] : g.waits)
      waits.push_back({{"detail", detail}, {"count", count}});
    jg["waits"] = waits;
    nlohmann::json threads = nlohmann::json::array();
    for (int tid : g.tids) {
      const auto* t = by_tid[tid];
      threads.push_back(
          {{"tid", tid},
           {"name", t->name},
           {"stop_us", t->stop_ns < 0 ? nlohmann::json(nullptr)
                                      : nlohmann::json(static_cast<double>(t->stop_ns) / 1e3)}});
    }
    jg["threads"] = threads;
    nlohmann::json frames = nlohmann::json::array();
    for (std::size_t i = 0; i < g.frames.size(); ++i) {
      const auto& f = g.frames[i];
      nlohmann::json jf{{"name", f.name}, {"module", f.module}, {"kernel", i < g.kernel_frames}};
      if (!f.file.empty()) {
        jf["file"] = f.file;
        jf["line"] = f.line;
      }
      frames.push_back(std::move(jf));
    }
    jg["frames"] = frames;
    if (!g.problem.empty()) jg["problem"] = g.problem;
    groups.push_back(std::move(jg));
  }
  j["groups"] = groups;
  j["notes"] = dump.notes;
  return json_text(j);
}

}  // namespace chokepoint::render
