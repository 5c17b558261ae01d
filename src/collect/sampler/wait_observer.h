#pragma once
// What a sampled thread waits on, as raw evidence for model::classify_wait: the role of the fd its
// syscall names (a file, an accepted client, an upstream we called, a pipe...), the fds a poll(2)
// names, whether its process has requests out or data queued on its TCP sockets, and the libc
// function under a futex sleep. Also keeps the TCP socket reads it made, as samples.
//
// Thread-safety: used by the sampler thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "collect/bpf/socket_order.h"
#include "collect/procfs/proc_fs.h"
#include "collect/procfs/task.h"
#include "collect/sampler/futex_stack.h"
#include "collect/sampler/sockets.h"
#include "model/samples.h"
#include "model/wait.h"

namespace chokepoint::collect::sampler {

class WaitObserver {
 public:
  // proc must outlive the observer.
  explicit WaitObserver(const procfs::ProcFs& proc);

  // The observation of one thread of `pid` in state `state` (stat field 3) whose syscall file
  // read `sc`. majflt_delta is left 0 (the model derives it).
  model::WaitObservation observe(int pid, const procfs::SyscallState& sc, char state,
                                 std::int64_t now_ns);

  // What fd `fd_arg` of `pid` is to a thread blocked in system call `nr` on it: the role and
  // detail observe() gives such a thread (a write to a file opened O_DSYNC says so). {kUnknown,
  // ""} when it is not open (or not an fd).
  std::pair<model::FdRole, std::string> fd_in_call(int pid, long nr, std::uint64_t fd_arg,
                                                   std::int64_t now_ns);

  // Reads every TCP socket of pid now, even if they were read recently.
  void read_sockets(int pid, std::int64_t now_ns);

  // The socket reads made since the last call, oldest first.
  std::vector<model::SocketSample> take_socket_samples();

  const FutexStackStats& stack_stats() const { return futex_stacks_.stats(); }
  const std::string& stack_problem() const { return futex_stacks_.problem(); }
  std::string socket_problem() const { return sockets_.problem(); }
  // The exact send/receive order of the target's sockets (eBPF), tried when an event loop is first
  // seen with a connection it opened (an upstream): tried, working, and why not when it is not.
  // An event loop that only serves clients never starts it, so its sends and receives do not pay
  // for the tracer's programs.
  bool socket_order_tried() const { return order_tried_; }
  bool socket_order_on() const { return order_ != nullptr; }
  const std::string& socket_order_problem() const { return order_problem_; }

 private:
  struct NetWait {
    // Per tick: does this process wait on the network (outstanding upstream requests, or data
    // queued to slow clients)? Computed lazily, at most once per socket refresh.
    std::int64_t at_ns = -1;
    bool waits = false;
    std::string detail;
    std::size_t socket_count = 0;  // TCP sockets at the last look
    // A thread of it was seen in an event-loop wait (epoll_wait, select): only such a process
    // needs the socket-order tracer, and only once it has a connection it opened.
    bool event_loop = false;
  };
  void compute_net_wait(int pid, NetWait& p, std::int64_t now_ns);
  // Starts the socket-order tracer at the first call and watches pid's sockets from then on
  // (called for an event loop's process with an established connection it opened).
  void watch_socket_order(int pid);
  // A request out on a connection we opened: sent after the last receive. Exact (ns) when the
  // socket-order tracer has seen the socket move data, else from tcp_info's jiffy-resolution times.
  bool request_out(const netlink::TcpSocket& s) const;
  // What an fd of `pid` is, for the wait classifier: its role and a stable detail text.
  std::pair<model::FdRole, std::string> classify_fd(int pid, int fd, std::int64_t now_ns);
  // poll(2)/ppoll(2) on a few fds: reads the pollfd array from the thread's memory and says
  // whether it waits on a peer (a connection the process opened, or a full send buffer), with the
  // detail. std::nullopt when the array cannot be read (no ptrace access, too many fds).
  std::optional<std::pair<bool, std::string>> poll_waits_on_network(
      int pid, const model::WaitObservation& obs, std::int64_t now_ns);

  const procfs::ProcFs& proc_;
  SocketTracker sockets_;
  // Tells rwlock and semaphore waits from parked threads for FUTEX_WAIT_BITSET sleepers.
  FutexStackScanner futex_stacks_;
  std::map<int, NetWait> net_waits_;
  std::vector<model::SocketSample> socket_samples_;
  bool poll_read_denied_ = false;  // process_vm_readv failed with EPERM once: do not retry
  std::unique_ptr<bpf::SocketOrderTracer> order_;
  bool order_tried_ = false;
  std::string order_problem_;
  std::set<int> order_watched_;
};

}  // namespace chokepoint::collect::sampler
