#include "lab/pipeline.h"

#include <semaphore.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lab/cpu_work.h"
#include "lab/worker_pool.h"

namespace chokepoint::lab {
namespace {

// One request handed to the stage. Lives on the requester's stack until the reply is posted.
struct Job {
  std::uint64_t key_hash = 0;
  CpuResult result;
  sem_t done{};   // --handoff semaphore: posted once by the stage
  std::mutex mu;  // --handoff condvar
  std::condition_variable cv;
  bool finished = false;  // guarded by mu
};

void sem_wait_uninterrupted(sem_t* s) {
  while (sem_wait(s) != 0 && errno == EINTR) {
  }
}

class PipelineHandler : public Handler {
 public:
  explicit PipelineHandler(const Options& o)
      : work_(CpuWork::calibrate(o.work_us)), semaphore_(o.handoff == HandoffMode::kSemaphore) {
    sem_init(&jobs_, 0, 0);
    for (int i = 0; i < o.pipeline_workers; ++i) stages_.emplace_back([this] { stage_loop(); });
  }
  ~PipelineHandler() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    for (std::size_t i = 0; i < stages_.size(); ++i) sem_post(&jobs_);
    for (auto& t : stages_) t.join();
    sem_destroy(&jobs_);
  }

  Response handle(std::string_view query) override {
    const std::string key(query);
    Job job;
    job.key_hash = key_hash(key);
    if (semaphore_) sem_init(&job.done, 0, 0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(&job);
    }
    sem_post(&jobs_);
    if (semaphore_) {
      sem_wait_uninterrupted(&job.done);
      sem_destroy(&job.done);
    } else {
      std::unique_lock<std::mutex> lock(job.mu);
      job.cv.wait(lock, [&job] { return job.finished; });
    }
    char hex[64];
    std::snprintf(hex, sizeof(hex), " hash=%016llx sum=%016llx\n",
                  static_cast<unsigned long long>(job.result.hash),
                  static_cast<unsigned long long>(job.result.checksum));
    Response r;
    r.body = "pipeline key=" + key + hex;
    return r;
  }
  bool blocking() const override { return true; }

 private:
  void stage_loop() {
    set_thread_name("lab-stage");
    for (;;) {
      sem_wait_uninterrupted(&jobs_);
      Job* job = nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.empty()) {
          if (stopping_) return;
          continue;
        }
        job = queue_.front();
        queue_.pop_front();
      }
      job->result = run_cpu_work(work_, job->key_hash);
      if (semaphore_) {
        sem_post(&job->done);
      } else {
        // Notify under the lock: once it is released the requester may return and free the job.
        std::lock_guard<std::mutex> lock(job->mu);
        job->finished = true;
        job->cv.notify_one();
      }
    }
  }

  CpuWork work_;
  bool semaphore_;
  sem_t jobs_{};  // counts queued jobs (and, at shutdown, one wake-up per stage thread)
  std::mutex mu_;
  std::deque<Job*> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> stages_;
};

}  // namespace

std::unique_ptr<Handler> make_pipeline_handler(const Options& options) {
  return std::make_unique<PipelineHandler>(options);
}

}  // namespace chokepoint::lab
