#pragma once
// The pipeline scenario: a hand-off, not a lock. Each request's thread (a `lab-worker` of the
// blocking pool, or a `lab-conn` thread's pool job) queues the request's CPU work for a stage of
// --pipeline-workers (1) `lab-stage` threads and waits for the reply on a condition variable
// (--handoff condvar, the default) or a POSIX semaphore (--handoff semaphore). With one stage
// thread the service is bound by that one thread's CPU (cpu, serial) while the requesters sleep
// in futex waits that one other thread posts: the wait-for case of issue 15, class 1. The fix is
// more stage threads. With --handoff join there is no stage: each request starts a short-lived
// `lab-joined` thread that does the work and joins it (pthread_join sleeps on the thread-id word
// the kernel clears and wakes at the thread's exit), so the requester waits for a thread that
// lives for one job, less than a sampling interval. With --stage-work fsync the stage writes and
// fdatasyncs one record per job to `stage_file` instead (a durable hand-off: the service is bound
// by that one thread's disk syncs, disk (fsync), while the requesters wait on it).
//
// The handler owns its stage threads; destroying it (after the server stopped calling it) stops
// and joins them.

#include <memory>

#include "lab/options.h"
#include "lab/scenarios.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {

// `stage_file`: an open append-only file for --stage-work fsync (invalid otherwise).
std::unique_ptr<Handler> make_pipeline_handler(const Options& options, util::ScopedFd stage_file);

}  // namespace chokepoint::lab
