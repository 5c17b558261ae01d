#pragma once
// `chokepoint top` frames without a terminal UI: one diagnosis window (an Observation and its
// Diagnosis, model/ and analysis/) as a plain-text frame like `top -b` prints, or as one JSON
// line. A frame has a header (the rolling verdict with its confidence and top evidence line, the
// target's time split as a bar, CPU, run-queue, PSI, disk and network summaries) and the
// processes with their threads under them: the time split bar, CPU%, run-queue wait%, the wait
// the thread spent most of its off-CPU time in (syscall and file or socket), the process's disk
// read/write bytes/s, RSS and its growth over the window.
//
// Every observed name goes through util::terminal_text (text) or into nlohmann::json (JSON).
// Pure: no I/O, no clocks (the caller passes the frame's time).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/diagnosis.h"
#include "model/observation.h"

namespace chokepoint::render {

enum class TopSort : std::uint8_t { kCpu, kRunQueue, kDisk, kRss, kPid, kName };

// "cpu", "runq", "disk", "rss", "pid", "name".
std::string_view top_sort_name(TopSort sort);
std::optional<TopSort> top_sort_from_name(std::string_view name);

struct TopFrameOptions {
  TopSort sort = TopSort::kCpu;
  // Threads shown under each process: those with busy time (not idle or asleep), at most this
  // many; the rest are counted on one line. 0: processes only.
  std::size_t threads_per_process = 16;
  std::size_t max_processes = 0;  // 0: all
};

struct TopFrameInfo {
  std::uint64_t frame = 0;  // 1, 2, ...
  double at_s = 0;          // the window's end, seconds from the first frame's start
};

// A text frame in parts, for a screen that lays them out itself (tui/top_screen): the header
// (every line newline-terminated, the legend last), the column header, and one row per process
// and per shown thread, in order, each with its identity and raw names for filtering.
struct TopRowLine {
  int pid = 0;
  int tid = 0;               // 0 on a process row and on a "more threads" line
  bool thread = false;       // a thread row or the "more threads" line under its process
  std::string process_name;  // raw (filter on it, escape it to print it)
  std::string name;          // the thread's comm on a thread row, else the process name; raw
  std::string text;          // the row as top_frame_text prints it, without the newline
};

struct TopFrameLines {
  std::string header;
  std::string columns;
  std::vector<TopRowLine> rows;
};

TopFrameLines top_frame_lines(const model::Observation& obs, const analysis::Diagnosis& d,
                              const TopFrameInfo& info, const TopFrameOptions& options);

// The panels behind keys in the full-screen view, from the same window (render/top_panels.cpp):
// disks (each device, then the threads that waited on disk with the file, then the processes'
// read/write bytes/s, as iotop shows them), connections (the host's TCP counters, then each
// process's sockets: accepted and outgoing connections, listeners with their queues, bytes/s, the
// worst upstream RTT, bytes not yet sent, and its peers as iftop shows them) and locks (each lock
// or futex address: how many threads waited on it, how long in all, and who held it when the
// exact mode's wait-for graph says). One string per line, names escaped.
enum class TopPanel : std::uint8_t { kDisks, kConnections, kLocks };
std::string_view top_panel_name(TopPanel panel);  // "disks", "connections", "locks"
std::vector<std::string> top_panel_lines(const model::Observation& obs, TopPanel panel);

std::string top_frame_text(const model::Observation& obs, const analysis::Diagnosis& d,
                           const TopFrameInfo& info, const TopFrameOptions& options);
// "1.2M", "850K", "0": bytes in at most 5 characters (powers of 1024, as top prints memory), as
// the frames and the panels print them.
std::string top_bytes_short(double bytes);
// One line, newline-terminated.
std::string top_frame_json(const model::Observation& obs, const analysis::Diagnosis& d,
                           const TopFrameInfo& info, const TopFrameOptions& options);

}  // namespace chokepoint::render
