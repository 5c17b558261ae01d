#pragma once
// Small hand-made profiles shared by the render tests: the lab's cpu scenario in miniature (70/30
// between two functions), with a kernel, a JIT and an unresolved frame, and names that need
// sanitizing.

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "profile/profile.h"

namespace chokepoint::render::sample {

using profile::Frame;
using profile::FrameKind;

inline Frame process(std::string name) {
  return {std::move(name), FrameKind::kProcess, "", "", 0, ""};
}
inline Frame user(std::string name, std::string module = "/opt/lab/chokepoint-lab",
                  std::string file = "", int line = 0) {
  return {std::move(name), FrameKind::kUser, std::move(module), std::move(file), line, ""};
}
inline Frame kernel(std::string name) {
  return {std::move(name), FrameKind::kKernel, "[kernel]", "", 0, ""};
}
inline Frame jit(std::string name) {
  return {std::move(name), FrameKind::kJit, "/tmp/perf-1234.map", "", 0, ""};
}
inline Frame unresolved(std::string name, std::string why) {
  return {std::move(name), FrameKind::kUnresolved, "/opt/lab/chokepoint-lab", "", 0,
          std::move(why)};
}

// 120 samples under worker_loop: handle_cpu 100 (hash_rounds 70, of which 5 in a kernel timer
// interrupt; checksum 30, 1 of them on another line, which folding merges), a JIT frame 10 (2 in
// an unresolved callee), and a name with ';' and a newline 10.
inline profile::Profile lab_cpu_profile() {
  profile::Profile p;
  p.title = "chokepoint-lab (pid 1234), on-CPU, 99 Hz, 10.0 s";
  p.off_cpu = false;
  p.weight = profile::Weight::kSamples;
  p.frequency_hz = 99;
  p.duration_s = 10;
  const std::vector<Frame> base = {
      process("chokepoint-lab (1234)"), user("start_thread", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
      user("lab::worker_loop()", "/opt/lab/chokepoint-lab", "lab/server.cpp", 88)};
  const Frame handle =
      user("lab::handle_cpu(Request const&)", "/opt/lab/chokepoint-lab", "lab/cpu.cpp", 20);
  auto with = [&](std::vector<Frame> tail, std::uint64_t v) {
    profile::Stack s;
    s.frames = base;
    s.frames.insert(s.frames.end(), tail.begin(), tail.end());
    s.value = v;
    s.count = v;
    p.stacks.push_back(std::move(s));
  };
  with({handle, user("lab_cpu_hash_rounds", "/opt/lab/chokepoint-lab", "lab/cpu.cpp", 41)}, 65);
  with({handle, user("lab_cpu_hash_rounds", "/opt/lab/chokepoint-lab", "lab/cpu.cpp", 41),
        kernel("asm_sysvec_apic_timer_interrupt")},
       5);
  with({handle, user("lab_cpu_checksum", "/opt/lab/chokepoint-lab", "lab/cpu.cpp", 60)}, 29);
  with({handle, user("lab_cpu_checksum", "/opt/lab/chokepoint-lab", "lab/cpu.cpp", 61)}, 1);
  with({jit("Interpreter::run"), unresolved("[chokepoint-lab+0x1f3a]", "stripped")}, 2);
  with({jit("Interpreter::run")}, 8);
  with({user("weird;name\nwith newline")}, 10);
  // A zero-weight stack is noise from the collector and must not show.
  with({user("never_shown")}, 0);
  return p;
}

// The same profile as an off-CPU one: values in nanoseconds.
inline profile::Profile lab_offcpu_profile() {
  profile::Profile p = lab_cpu_profile();
  p.title = "chokepoint-lab (pid 1234), off-CPU, 10.0 s";
  p.off_cpu = true;
  p.weight = profile::Weight::kNanoseconds;
  p.frequency_hz = 0;
  for (auto& s : p.stacks) s.value *= 1'000'000;  // 1 ms per former sample
  return p;
}

inline std::uint64_t total_value(const profile::Profile& p) {
  std::uint64_t t = 0;
  for (const auto& s : p.stacks) t += s.value;
  return t;
}

inline profile::Profile shuffled(profile::Profile p, unsigned seed) {
  std::mt19937 rng(seed);
  std::shuffle(p.stacks.begin(), p.stacks.end(), rng);
  return p;
}

}  // namespace chokepoint::render::sample
