#pragma once
// The stacks of a process's threads at one instant (`chokepoint stacks`, top's `s` key): what
// each thread was doing (its state, the syscall it was in and what it waited on, as
// model::classify_wait names it) and its stack, kernel part and user part, plus how long each
// thread was stopped to read it. Plain data and pure functions; capture.h fills it.

#include <cstdint>
#include <string>
#include <vector>

#include "model/wait.h"
#include "profile/profile.h"

namespace chokepoint::stacks {

struct ThreadStack {
  int tid = 0;
  std::string name;       // comm, raw (escape it for its output)
  char state = '?';       // /proc stat field 3, read just before the stop
  std::string syscall;    // "read", "futex", ...; empty when running or not in a syscall
  model::WaitClass wait;  // resource kOnCpu for a running thread
  // Innermost first: the kernel frames (/proc/PID/task/TID/stack, root only), then the user
  // frames from the DWARF unwind of the registers and stack bytes read during the stop.
  std::vector<profile::Frame> frames;
  std::size_t kernel_frames = 0;  // how many of `frames` are kernel frames (they come first)
  // Why the user stack is missing or cut short ("not stopped: ptrace: Operation not permitted",
  // "stack copy too small"); empty when the unwind reached the outermost frame.
  std::string problem;
  std::int64_t stop_ns = -1;  // how long the thread was held stopped; -1 when it was not stopped
};

struct StackDump {
  int pid = 0;
  std::string name;                  // the process's comm, raw
  std::vector<ThreadStack> threads;  // by tid
  std::size_t threads_stopped = 0;   // threads with stop_ns >= 0
  std::int64_t stop_median_ns = 0;   // over the stopped threads (0 when none)
  std::int64_t stop_max_ns = 0;
  std::int64_t elapsed_ns = 0;     // the whole capture, reading and symbolizing included
  std::vector<std::string> notes;  // what could not be seen and why (plain sentences)
};

// Threads with the same stack (frame names and modules), state, resource and syscall.
struct StackGroup {
  std::vector<profile::Frame> frames;  // innermost first, as in ThreadStack
  std::size_t kernel_frames = 0;
  char state = '?';
  std::string syscall;
  model::Resource resource = model::Resource::kIdle;
  // The distinct wait details (WaitClass::detail) of the group's threads with their counts, most
  // common first: "mutex 0x55d0c0a0" x 3.
  std::vector<std::pair<std::string, std::size_t>> waits;
  std::vector<int> tids;  // ascending
  std::string problem;    // of the first thread, when any thread's stack is incomplete
};

// Groups the dump's threads, largest group first (ties: lowest tid first).
std::vector<StackGroup> group_stacks(const StackDump& dump);

// Fills threads_stopped, stop_median_ns and stop_max_ns from the threads' stop_ns.
void summarize_stops(StackDump& dump);

}  // namespace chokepoint::stacks
