#pragma once
// A fixed pool of threads fed by one queue. Idle threads park on a std::condition_variable, so a
// profiler sees them in futex_wait with nothing queued: idle, not contended.
//
// Thread-safe: submit() from any thread. The destructor (or stop()) runs every job already queued,
// then joins the threads; submit() after stop() runs nothing.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chokepoint::lab {

class WorkerPool {
 public:
  // Starts `threads` threads named `name` (at most 15 characters, see pthread_setname_np(3)).
  WorkerPool(int threads, std::string name);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> job);
  void stop();
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
  std::string name_;
};

// Names the calling thread (shown in /proc/PID/task/TID/comm and by perf).
void set_thread_name(const std::string& name);

}  // namespace chokepoint::lab
