#include "lab/group_commit.h"

#include <utility>

#include "lab/worker_pool.h"

namespace chokepoint::lab {

GroupCommit::GroupCommit(std::string thread_name, CommitFn commit)
    : commit_(std::move(commit)),
      committer_([this, name = std::move(thread_name)] { committer_loop(name); }) {}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

bool GroupCommit::submit(std::string item) {
  std::unique_lock<std::mutex> lock(mu_);
  pending_.push_back(std::move(item));
  const std::uint64_t mine = ++enqueued_;
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return committed_ >= mine || stopping_; });
  return committed_ >= mine && !failed_;
}

void GroupCommit::committer_loop(const std::string& thread_name) {
  set_thread_name(thread_name);
  std::vector<std::string> group;
  for (;;) {
    std::uint64_t last = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;
      group.swap(pending_);
      pending_.clear();
      last = enqueued_;
    }
    const bool ok = commit_(group);
    group.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      committed_ = last;
      if (!ok) failed_ = true;
    }
    done_cv_.notify_all();
  }
}

}  // namespace chokepoint::lab
