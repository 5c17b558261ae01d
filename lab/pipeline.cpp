#include "lab/pipeline.h"

#include <semaphore.h>

#include <unistd.h>

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

// --stage-work fsync: appends `record` and waits until it is on disk (a durable hand-off).
__attribute__((noinline)) bool lab_stage_commit(int fd, const std::string& record) {
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return ::fdatasync(fd) == 0;
}

void sem_wait_uninterrupted(sem_t* s) {
  while (sem_wait(s) != 0 && errno == EINTR) {
  }
}

class PipelineHandler : public Handler {
 public:
  PipelineHandler(const Options& o, util::ScopedFd stage_file)
      : work_(CpuWork::calibrate(o.work_us)),
        semaphore_(o.handoff == HandoffMode::kSemaphore),
        join_(o.handoff == HandoffMode::kJoin),
        stage_file_(std::move(stage_file)),
        record_(static_cast<std::size_t>(o.record_bytes), 'r') {
    if (!record_.empty()) record_.back() = '\n';
    sem_init(&jobs_, 0, 0);
    for (int i = 0; !join_ && i < o.pipeline_workers; ++i)
      stages_.emplace_back([this] { stage_loop(); });
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
    if (join_) {
      // A thread for this one job, joined: it lives for the job's work only.
      std::thread joined([this, &job] {
        set_thread_name("lab-joined");
        run_job(job);
      });
      joined.join();
      return reply(key, job);
    }
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
    return reply(key, job);
  }
  bool blocking() const override { return true; }

 private:
  static Response reply(const std::string& key, const Job& job) {
    char hex[64];
    std::snprintf(hex, sizeof(hex), " hash=%016llx sum=%016llx\n",
                  static_cast<unsigned long long>(job.result.hash),
                  static_cast<unsigned long long>(job.result.checksum));
    Response r;
    r.body = "pipeline key=" + key + hex;
    return r;
  }

  // The job's work: CPU work, or with --stage-work fsync one record made durable.
  void run_job(Job& job) {
    if (stage_file_.valid()) {
      // A failed write leaves the result zero; the answer still goes back to the requester.
      job.result = CpuResult{};
      if (lab_stage_commit(stage_file_.get(), record_)) job.result.hash = job.key_hash;
    } else {
      job.result = run_cpu_work(work_, job.key_hash);
    }
  }

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
      run_job(*job);
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
  bool join_;                  // --handoff join: a thread per job, joined; no stage threads
  util::ScopedFd stage_file_;  // --stage-work fsync
  std::string record_;         // what each fsync'ed job appends
  sem_t jobs_{};  // counts queued jobs (and, at shutdown, one wake-up per stage thread)
  std::mutex mu_;
  std::deque<Job*> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> stages_;
};

}  // namespace

std::unique_ptr<Handler> make_pipeline_handler(const Options& options, util::ScopedFd stage_file) {
  return std::make_unique<PipelineHandler>(options, std::move(stage_file));
}

}  // namespace chokepoint::lab
