// Per-thread sampling cost: open/read/close of stat + schedstat + syscall + wchan for every thread
// of this process, versus TaskFiles keeping them open and re-reading with pread. Both run in one
// process, side by side, over the same parked threads; compare them as a ratio (the machine is
// shared and noisy). Results and the command go to docs/benchmarks.md ("## procfs").
//
//   procfs_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Each benchmark's time is for one sample of ALL threads; per_thread_ns divides it by the thread
// count.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <array>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "collect/procfs/task_files.h"

namespace procfs = chokepoint::collect::procfs;

namespace {

constexpr int kParkedThreads = 16;
constexpr const char* kFiles[] = {"stat", "schedstat", "syscall", "wchan"};

std::vector<int> g_tids;

// Reads a file with open/read/close into buf; returns bytes read (or -1).
ssize_t read_once(const std::string& path, std::array<char, procfs::kTaskFileBufferBytes>& buf) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  ::close(fd);
  return n;
}

void BM_OpenReadClose_Raw(benchmark::State& state) {
  const int pid = ::getpid();
  std::vector<std::string> paths;
  for (int tid : g_tids) {
    for (const char* f : kFiles) {
      paths.push_back("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/" + f);
    }
  }
  std::array<char, procfs::kTaskFileBufferBytes> buf;
  for (auto _ : state) {
    for (const auto& path : paths) benchmark::DoNotOptimize(read_once(path, buf));
  }
  state.counters["per_thread_ns"] = benchmark::Counter(
      static_cast<double>(g_tids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_TaskFilesPread_Raw(benchmark::State& state) {
  const int pid = ::getpid();
  std::vector<procfs::TaskFiles> files;
  for (int tid : g_tids) {
    auto f = procfs::TaskFiles::open("/proc", pid, tid,
                                     procfs::kSamplerFiles | procfs::TaskFile::kWchan);
    if (!f) {
      state.SkipWithError(f.error().message.c_str());
      return;
    }
    files.push_back(std::move(*f));
  }
  std::array<char, procfs::kTaskFileBufferBytes> buf;
  for (auto _ : state) {
    for (const auto& f : files) {
      for (auto which : {procfs::TaskFile::kStat, procfs::TaskFile::kSchedstat,
                         procfs::TaskFile::kSyscall, procfs::TaskFile::kWchan}) {
        benchmark::DoNotOptimize(f.read_raw(which, buf));
      }
    }
  }
  state.counters["per_thread_ns"] = benchmark::Counter(
      static_cast<double>(g_tids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The same with parsing, as a caller sees it: ProcFs read_* (open/read/close + parse) versus
// TaskFiles (pread + parse).
void BM_ProcFsReadParse(benchmark::State& state) {
  const int pid = ::getpid();
  procfs::ProcFs fs;
  for (auto _ : state) {
    for (int tid : g_tids) {
      benchmark::DoNotOptimize(fs.read_task_stat(pid, tid));
      benchmark::DoNotOptimize(fs.read_task_schedstat(pid, tid));
      benchmark::DoNotOptimize(fs.read_task_syscall(pid, tid));
      benchmark::DoNotOptimize(fs.read_task_wchan(pid, tid));
    }
  }
  state.counters["per_thread_ns"] = benchmark::Counter(
      static_cast<double>(g_tids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_TaskFilesPreadParse(benchmark::State& state) {
  const int pid = ::getpid();
  std::vector<procfs::TaskFiles> files;
  for (int tid : g_tids) {
    auto f = procfs::TaskFiles::open("/proc", pid, tid,
                                     procfs::kSamplerFiles | procfs::TaskFile::kWchan);
    if (!f) {
      state.SkipWithError(f.error().message.c_str());
      return;
    }
    files.push_back(std::move(*f));
  }
  std::array<char, procfs::kTaskFileBufferBytes> buf;
  for (auto _ : state) {
    for (const auto& f : files) {
      benchmark::DoNotOptimize(f.stat(buf));
      benchmark::DoNotOptimize(f.schedstat(buf));
      benchmark::DoNotOptimize(f.syscall(buf));
      benchmark::DoNotOptimize(f.wchan(buf));
    }
  }
  state.counters["per_thread_ns"] = benchmark::Counter(
      static_cast<double>(g_tids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The sampler's fast path: a thread whose schedstat did not change has not run, so only
// schedstat is read.
void BM_TaskFilesSchedstatOnly(benchmark::State& state) {
  const int pid = ::getpid();
  std::vector<procfs::TaskFiles> files;
  for (int tid : g_tids) {
    auto f = procfs::TaskFiles::open("/proc", pid, tid, procfs::kSamplerFiles);
    if (!f) {
      state.SkipWithError(f.error().message.c_str());
      return;
    }
    files.push_back(std::move(*f));
  }
  std::array<char, procfs::kTaskFileBufferBytes> buf;
  for (auto _ : state) {
    for (const auto& f : files) benchmark::DoNotOptimize(f.schedstat(buf));
  }
  state.counters["per_thread_ns"] = benchmark::Counter(
      static_cast<double>(g_tids.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_OpenReadClose_Raw);
BENCHMARK(BM_TaskFilesPread_Raw);
BENCHMARK(BM_ProcFsReadParse);
BENCHMARK(BM_TaskFilesPreadParse);
BENCHMARK(BM_TaskFilesSchedstatOnly);

}  // namespace

int main(int argc, char** argv) {
  // Park kParkedThreads threads on a condition variable, as an idle pool would be.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::thread> threads;
  std::mutex tids_mu;
  for (int i = 0; i < kParkedThreads; ++i) {
    threads.emplace_back([&] {
      {
        std::lock_guard<std::mutex> lock(tids_mu);
        g_tids.push_back(static_cast<int>(::syscall(SYS_gettid)));
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    });
  }
  for (;;) {
    std::lock_guard<std::mutex> lock(tids_mu);
    if (static_cast<int>(g_tids.size()) == kParkedThreads) break;
  }
  g_tids.push_back(static_cast<int>(::syscall(SYS_gettid)));  // and the main thread
  std::printf("sampling %zu threads of pid %d\n", g_tids.size(), ::getpid());

  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  return 0;
}
