#pragma once
// Group commit, the fix of the disk and db-commit scenarios: requests queue their item and wait;
// one committer thread takes everything queued while its previous commit ran, commits it as one
// group (one write + one fdatasync, one INSERT of many rows) and wakes every request of the group.
// The cost of one durable commit is shared by all the requests that arrived during the previous
// one, so throughput grows with concurrency while each commit stays durable.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chokepoint::lab {

class GroupCommit {
 public:
  // Makes one group durable; true when it is. Called on the committer thread only, one group at a
  // time, with the items in the order they were submitted (never an empty group).
  using CommitFn = std::function<bool(const std::vector<std::string>& group)>;

  // Starts the committer thread, named `thread_name` (at most 15 bytes, as the kernel keeps).
  // `commit` and what it uses must outlive this object.
  GroupCommit(std::string thread_name, CommitFn commit);
  // Commits what is already queued, wakes the requests still waiting, joins the thread.
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues `item` and blocks until the group that holds it is committed. False when that commit
  // failed (or an earlier one did: a failed commit is not retried, so every later request fails
  // too), or when the object is being destroyed. Safe from any number of threads.
  bool submit(std::string item);

 private:
  void committer_loop(const std::string& thread_name);

  CommitFn commit_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<std::string> pending_;  // guarded by mu_
  std::uint64_t enqueued_ = 0;        // guarded by mu_: items queued so far
  std::uint64_t committed_ = 0;       // guarded by mu_: items committed so far
  bool failed_ = false;               // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::thread committer_;             // last: starts after every member above exists
};

}  // namespace chokepoint::lab
