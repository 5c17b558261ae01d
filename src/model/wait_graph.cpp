#include "model/wait_graph.h"

#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <set>
#include <tuple>

namespace chokepoint::model {

namespace {

using ObjectKey = std::tuple<int, long, std::uint64_t>;  // pid, system call, object
using WakerKey = std::tuple<int, int, WakerKind>;        // pid, tid, kind

const WaitObject* find_object(const std::vector<WaitObject>& objects, const ObjectKey& key) {
  auto it = std::lower_bound(objects.begin(), objects.end(), key,
                             [](const WaitObject& o, const ObjectKey& k) {
                               return std::tie(o.pid, o.syscall_nr, o.object) < k;
                             });
  if (it == objects.end() || std::tie(it->pid, it->syscall_nr, it->object) != key) return nullptr;
  return &*it;
}

const ThreadAccount* find_thread(const std::vector<ThreadAccount>& threads, int pid, int tid) {
  for (const auto& t : threads) {
    if (t.key.pid == pid && t.key.tid == tid) return &t;
  }
  return nullptr;
}

// The thread's largest state in the window and its share of the thread's time.
// The waits another thread may post: a futex, a read (of a pipe or an eventfd; a socket read
// whose time is idle is a client's, woken from outside the target).
bool handoff_call(long nr) {
  return nr == SYS_futex || nr == SYS_read || nr == SYS_readv || nr == SYS_pread64 ||
         nr == SYS_preadv;
}

std::pair<Resource, double> main_state(const ThreadAccount& t) {
  const std::int64_t total = t.split.total_ns();
  Resource best = Resource::kIdle;
  std::int64_t best_ns = -1;
  for (std::size_t i = 0; i < kResourceCount; ++i) {
    const auto r = static_cast<Resource>(i);
    if (t.split[r] > best_ns) {
      best_ns = t.split[r];
      best = r;
    }
  }
  return {best, total > 0 ? static_cast<double>(best_ns) / static_cast<double>(total) : 0.0};
}

}  // namespace

std::string_view wait_shape_name(WaitShape shape) {
  switch (shape) {
    case WaitShape::kHandoff:
      return "handoff";
    case WaitShape::kContention:
      return "contention";
    case WaitShape::kMixed:
      return "mixed";
  }
  return "mixed";
}

std::vector<WaitObject> wait_objects(const WaitGraph& graph) {
  struct Acc {
    std::map<WakerKey, double> by_waker;
    std::map<int, double> by_waiter;
    std::map<std::pair<int, int>, double> by_thread_waker;
    double ns = 0;
  };
  std::map<ObjectKey, Acc> acc;
  // An object whose wakeups ended no measurable time still has a shape: weigh by count then.
  bool any_ns = false;
  for (const auto& e : graph.edges) any_ns = any_ns || e.ns > 0;
  for (const auto& e : graph.edges) {
    const double w = static_cast<double>(any_ns ? e.ns : e.count);
    auto& a = acc[{e.wakee_pid, e.syscall_nr, e.object}];
    a.by_waker[{e.waker_pid, e.waker_tid, e.waker_kind}] += w;
    if (e.waker_kind == WakerKind::kThread) a.by_thread_waker[{e.waker_pid, e.waker_tid}] += w;
    a.by_waiter[e.wakee_tid] += w;
    a.ns += w;
  }
  std::vector<WaitObject> out;
  out.reserve(acc.size());
  for (const auto& [key, a] : acc) {
    WaitObject o;
    std::tie(o.pid, o.syscall_nr, o.object) = key;
    o.ns = a.ns;
    o.ns_by_waiter = a.by_waiter;
    o.ns_by_thread_waker = a.by_thread_waker;
    for (const auto& [tid, ns] : a.by_waiter) o.waiters.push_back(tid);
    double main_ns = -1, by_waiters_ns = 0;
    for (const auto& [waker, ns] : a.by_waker) {
      const auto& [pid, tid, kind] = waker;
      if (ns > main_ns) {
        main_ns = ns;
        o.waker_pid = pid;
        o.waker_tid = tid;
        o.waker_kind = kind;
      }
      if (pid == o.pid && kind == WakerKind::kThread && a.by_waiter.count(tid) != 0) {
        by_waiters_ns += ns;
      }
    }
    o.waker_share = a.ns > 0 ? main_ns / a.ns : 0.0;
    if (o.waiters.size() >= 2 && by_waiters_ns >= kContentionWaiterShare * a.ns) {
      o.shape = WaitShape::kContention;
    } else if (a.ns - by_waiters_ns >= kHandoffWakerShare * a.ns &&
               !(o.waker_pid == o.pid && a.by_waiter.count(o.waker_tid) != 0)) {
      o.shape = WaitShape::kHandoff;
    } else {
      o.shape = WaitShape::kMixed;
    }
    out.push_back(std::move(o));
  }
  return out;  // std::map's order: (pid, syscall, object)
}

namespace {

// The graph's objects: those its builder kept, else classified now.
std::shared_ptr<const std::vector<WaitObject>> graph_objects(const WaitGraph& graph) {
  if (graph.objects) return graph.objects;
  return std::make_shared<const std::vector<WaitObject>>(wait_objects(graph));
}

// What a short-lived thread's blocked time on (syscall, object) was (ShortLivedThread).
Resource blocked_resource(const std::vector<WaitObject>& objects, int pid, long nr,
                          std::uint64_t object) {
  switch (nr) {
    case SYS_futex: {
      const WaitObject* o = find_object(objects, {pid, nr, object});
      return o && o->shape == WaitShape::kContention ? Resource::kLock : Resource::kIdle;
    }
    case SYS_fsync:
    case SYS_fdatasync:
    case SYS_msync:
    case SYS_sync_file_range:
      return Resource::kDisk;
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
      return Resource::kSleep;
    default:
      return Resource::kIdle;
  }
}

const ShortLivedThread* find_short_lived(const std::vector<ShortLivedThread>& short_lived, int pid,
                                         int tid) {
  auto it = std::lower_bound(short_lived.begin(), short_lived.end(), std::make_pair(pid, tid),
                             [](const ShortLivedThread& s, const std::pair<int, int>& k) {
                               return std::make_pair(s.pid, s.tid) < k;
                             });
  return it != short_lived.end() && it->pid == pid && it->tid == tid ? &*it : nullptr;
}

// The short-lived threads among the user-thread wakers of `o`, by (pid, tid).
void add_short_lived_wakers(const WaitObject& o, const std::vector<ShortLivedThread>& short_lived,
                            std::set<std::pair<int, int>>& members) {
  for (const auto& [waker, ns] : o.ns_by_thread_waker) {
    if (find_short_lived(short_lived, waker.first, waker.second) != nullptr) members.insert(waker);
  }
}

// Ends `chain` at the short-lived threads `members` as one root: their number, a name, and the
// largest state of their summed inferred splits.
void set_short_lived_root(WaitChain& chain, const std::set<std::pair<int, int>>& members,
                          const std::vector<ShortLivedThread>& short_lived) {
  ThreadAccount group;
  chain.root_short_lived = 0;
  chain.root_comm.clear();
  for (const auto& [pid, tid] : members) {
    const ShortLivedThread* s = find_short_lived(short_lived, pid, tid);
    if (s == nullptr) continue;
    group.split += s->split;
    ++chain.root_short_lived;
    if (chain.root_comm.empty()) chain.root_comm = s->comm;
  }
  const auto [state, share] = main_state(group);
  chain.root_resource = state;
  chain.root_share = share;
  chain.root_split = group.split;
}

}  // namespace

std::vector<ShortLivedThread> short_lived_threads(const WaitGraph& graph,
                                                  const std::vector<ThreadAccount>& threads) {
  std::set<int> pids;
  std::map<std::pair<int, int>, const ThreadAccount*> seen;
  for (const auto& t : threads) {
    pids.insert(t.key.pid);
    seen[{t.key.pid, t.key.tid}] = &t;
  }
  // Each one's life: the longest mean blocked time of one of its wakeups' (waker, object).
  std::map<std::pair<int, int>, double> life_ns;
  // Each one's joiner: the thread whose wait for it gave its life.
  std::map<std::pair<int, int>, std::pair<int, int>> joiner;
  for (const auto& e : graph.edges) {
    if (e.waker_kind != WakerKind::kThread || pids.count(e.waker_pid) == 0 || e.count == 0 ||
        (e.waker_pid == e.wakee_pid && e.waker_tid == e.wakee_tid)) {
      continue;
    }
    auto it = seen.find({e.waker_pid, e.waker_tid});
    if (it != seen.end() && it->second->split.total_ns() > 0) continue;
    double& life = life_ns[{e.waker_pid, e.waker_tid}];
    const double mean_ns = static_cast<double>(e.ns) / static_cast<double>(e.count);
    if (mean_ns > life || life == 0) {
      life = mean_ns;
      joiner[{e.waker_pid, e.waker_tid}] = {e.wakee_pid, e.wakee_tid};
    }
  }
  if (life_ns.empty()) return {};
  const auto kept_objects = graph_objects(graph);
  const auto& objects = *kept_objects;
  // The objects on which each one's joiner woke it (a start signal, a condvar broadcast): those
  // wakeups came while the joiner ran, so before its wait for the thread began, and so did every
  // block of the thread on the same objects (the same wait for that signal, however it ended: a
  // timed wait's timeouts too). They are not part of the life the joiner's wait saw.
  std::set<std::tuple<int, int, long, std::uint64_t>> before_join;
  for (const auto& e : graph.edges) {
    auto it = joiner.find({e.wakee_pid, e.wakee_tid});
    if (it != joiner.end() && e.waker_kind == WakerKind::kThread &&
        it->second == std::make_pair(e.waker_pid, e.waker_tid)) {
      before_join.insert({e.wakee_pid, e.wakee_tid, e.syscall_nr, e.object});
    }
  }
  std::map<std::pair<int, int>, std::array<double, kResourceCount>> blocked;
  for (const auto& e : graph.edges) {
    if (life_ns.count({e.wakee_pid, e.wakee_tid}) == 0 ||
        before_join.count({e.wakee_pid, e.wakee_tid, e.syscall_nr, e.object}) != 0) {
      continue;
    }
    const Resource r = blocked_resource(objects, e.wakee_pid, e.syscall_nr, e.object);
    blocked[{e.wakee_pid, e.wakee_tid}][static_cast<std::size_t>(r)] += static_cast<double>(e.ns);
  }
  std::vector<ShortLivedThread> out;
  for (const auto& [key, life] : life_ns) {
    ShortLivedThread t;
    std::tie(t.pid, t.tid) = key;
    if (auto it = seen.find(key); it != seen.end()) t.comm = it->second->comm;
    const auto& b = blocked[key];
    double blocked_ns = 0;
    for (const double v : b) blocked_ns += v;
    // Blocked longer than the life seen: the blocks are its whole life, in their proportions.
    const double scale = blocked_ns > life && blocked_ns > 0 ? life / blocked_ns : 1.0;
    for (std::size_t r = 0; r < kResourceCount; ++r) {
      t.split.ns[r] = static_cast<std::int64_t>(b[r] * scale);
    }
    t.split[Resource::kOnCpu] += static_cast<std::int64_t>(std::max(life - blocked_ns, 0.0));
    if (t.split.total_ns() > 0) out.push_back(std::move(t));
  }
  return out;  // std::map's order: (pid, tid)
}

std::optional<WaitChain> follow_chain(const std::vector<WaitObject>& objects,
                                      const std::vector<ThreadAccount>& threads, int pid, int tid,
                                      long syscall_nr, std::uint64_t object,
                                      const std::vector<ShortLivedThread>& short_lived) {
  const WaitObject* o = find_object(objects, {pid, syscall_nr, object});
  // A word served mostly by a short-lived thread that does not wait on it is a hand-off (a join)
  // whatever else woke it now and then.
  const bool joined = o != nullptr && o->waker_kind == WakerKind::kThread &&
                      o->ns_by_waiter.count(o->waker_tid) == 0 &&
                      find_short_lived(short_lived, o->waker_pid, o->waker_tid) != nullptr;
  if (!o || (o->shape != WaitShape::kHandoff && !joined)) return std::nullopt;
  WaitChain chain;
  std::set<int> visited{tid};
  ChainStep step{pid, tid, "", syscall_nr, object};
  for (;;) {
    if (const ThreadAccount* t = find_thread(threads, step.pid, step.tid)) step.comm = t->comm;
    chain.steps.push_back(step);
    chain.root_pid = o->waker_pid;
    chain.root_tid = o->waker_tid;
    chain.root_kind = o->waker_kind;
    if (o->waker_kind == WakerKind::kThread &&
        find_short_lived(short_lived, o->waker_pid, o->waker_tid) != nullptr) {
      // The root is the short-lived threads that served this object, as a group.
      std::set<std::pair<int, int>> members;
      add_short_lived_wakers(*o, short_lived, members);
      set_short_lived_root(chain, members, short_lived);
      break;
    }
    const ThreadAccount* waker = o->waker_kind == WakerKind::kThread
                                     ? find_thread(threads, o->waker_pid, o->waker_tid)
                                     : nullptr;
    if (!waker) break;  // outside the target, or kernel context: the chain ends there
    chain.root_comm = waker->comm;
    const auto [state, share] = main_state(*waker);
    chain.root_resource = state;
    chain.root_share = share;
    // A waker mostly in a device wait of its own (disk, network, memory) is the root: what wakes
    // it there (a kernel thread or an interrupt completing its IO) is the device answering, not
    // a thread it hands work to.
    if (state == Resource::kDisk || state == Resource::kNetwork || state == Resource::kMemory) {
      break;
    }
    if (visited.count(waker->key.tid) != 0) break;  // a cycle
    visited.insert(waker->key.tid);
    // Go on while the waker itself mostly waits in a hand-off: its largest such wait.
    const WaitObject* next = nullptr;
    double next_ns = 0;
    for (const auto& w : objects) {
      if (w.pid != waker->key.pid || w.shape != WaitShape::kHandoff) continue;
      auto it = w.ns_by_waiter.find(waker->key.tid);
      if (it != w.ns_by_waiter.end() && it->second > next_ns) {
        next_ns = it->second;
        next = &w;
      }
    }
    const double total = static_cast<double>(waker->split.total_ns());
    if (!next || total <= 0 || next_ns < 0.5 * total) break;
    if (static_cast<int>(chain.steps.size()) >= kChainDepthLimit) {
      chain.depth_limited = true;
      break;
    }
    step = ChainStep{waker->key.pid, waker->key.tid, "", next->syscall_nr, next->object};
    o = next;
  }
  return chain;
}

namespace {

// The hand-off time of `threads` by root thread, largest first: each thread's `amount` (ns) is
// divided by its wait objects' shares (`objects_of`: over all of them, or with `over_handoffs`
// over those whose chain resolves only), and the parts whose chain resolves go to the chain's
// root. `field` is the Handoff member the time is summed in.
template <typename Objects, typename Amount>
std::vector<Handoff> handoffs_by_root(const WaitGraph& graph,
                                      const std::vector<ThreadAccount>& threads, Objects objects_of,
                                      Amount amount, bool over_handoffs, double Handoff::*field) {
  const auto kept_objects = graph_objects(graph);
  const auto& objects = *kept_objects;
  const auto short_lived = short_lived_threads(graph, threads);
  struct Acc {
    Handoff h;
    double best_waiter_ns = -1;
  };
  std::map<std::pair<int, int>, Acc> by_root;
  for (const auto& t : threads) {
    const auto& per_object = objects_of(t);
    const std::int64_t amount_ns = amount(t);
    if (amount_ns <= 0 || per_object.empty()) continue;
    double total = 0;
    std::vector<std::pair<double, WaitChain>> resolved;
    for (const auto& [key, ns] : per_object) {
      if (ns <= 0) continue;
      auto chain =
          follow_chain(objects, threads, t.key.pid, t.key.tid, key.first, key.second, short_lived);
      if (chain) resolved.emplace_back(static_cast<double>(ns), std::move(*chain));
      if (chain || !over_handoffs) total += static_cast<double>(ns);
    }
    if (total <= 0) continue;
    std::map<std::pair<int, int>, std::pair<double, WaitChain>> mine;
    // Short-lived roots are one group per process: each waiter meets other ones, one or a few on
    // each object (a thread-id word), so the group is every short-lived thread that served any of
    // the waiter's objects, and its state is theirs together, not one object's few.
    std::map<int, std::set<std::pair<int, int>>> groups;
    for (auto& [ns, chain] : resolved) {
      const bool group = chain.root_short_lived > 0;
      if (group) {
        const ChainStep& last = chain.steps.back();
        if (const WaitObject* o = find_object(objects, {last.pid, last.syscall_nr, last.object})) {
          add_short_lived_wakers(*o, short_lived, groups[chain.root_pid]);
        }
      }
      auto& m = mine[{chain.root_pid, group ? 0 : chain.root_tid}];
      m.first += static_cast<double>(amount_ns) * ns / total;
      if (m.second.steps.empty()) m.second = std::move(chain);
    }
    for (const auto& [pid, members] : groups) {
      auto it = mine.find({pid, 0});
      if (it != mine.end()) set_short_lived_root(it->second.second, members, short_lived);
    }
    for (auto& [root, m] : mine) {
      Acc& a = by_root[root];
      a.h.*field += m.first;
      ++a.h.waiters;
      if (m.first > a.best_waiter_ns) {
        a.best_waiter_ns = m.first;
        a.h.chain = std::move(m.second);
      }
    }
  }
  std::vector<Handoff> out;
  out.reserve(by_root.size());
  for (auto& [root, a] : by_root) out.push_back(std::move(a.h));
  std::sort(out.begin(), out.end(),
            [field](const Handoff& a, const Handoff& b) { return a.*field > b.*field; });
  return out;
}

}  // namespace

std::vector<Handoff> lock_handoffs(const WaitGraph& graph,
                                   const std::vector<ThreadAccount>& threads) {
  return handoffs_by_root(
      graph, threads, [](const ThreadAccount& t) -> const auto& { return t.lock_objects_ns; },
      [](const ThreadAccount& t) { return t.split[Resource::kLock]; }, false, &Handoff::lock_ns);
}

std::vector<Handoff> idle_handoffs(const WaitGraph& graph,
                                   const std::vector<ThreadAccount>& threads) {
  return handoffs_by_root(
      graph, threads, [](const ThreadAccount& t) -> const auto& { return t.idle_objects_ns; },
      [](const ThreadAccount& t) { return t.waited_for.total_ns(); }, true, &Handoff::idle_ns);
}

std::int64_t attribute_handoffs(const WaitGraph& graph, std::vector<ThreadAccount>& threads) {
  const auto kept_objects = graph_objects(graph);
  const auto& objects = *kept_objects;
  std::map<std::pair<int, int>, std::size_t> index;  // (pid, tid) -> threads[i]
  for (std::size_t i = 0; i < threads.size(); ++i) {
    index[{threads[i].key.pid, threads[i].key.tid}] = i;
  }
  // Short-lived wakers take part as entries after the threads, with their inferred splits; they
  // are not written back.
  const auto short_lived = short_lived_threads(graph, threads);
  for (std::size_t k = 0; k < short_lived.size(); ++k) {
    index[{short_lived[k].pid, short_lived[k].tid}] = threads.size() + k;
  }
  const std::size_t entries = threads.size() + short_lived.size();
  // Whether only short-lived threads woke the object: a reused thread-id word, not a pool.
  auto joined_only = [&](const WaitObject& o) {
    if (o.ns_by_thread_waker.empty()) return false;
    for (const auto& [waker, ns] : o.ns_by_thread_waker) {
      if (find_short_lived(short_lived, waker.first, waker.second) == nullptr) return false;
    }
    return true;
  };
  // The blocked time each thread's wakeups on one object ended, by waker.
  std::map<std::tuple<int, int, long, std::uint64_t>, std::map<std::size_t, double>> woken_by;
  std::map<std::tuple<int, int, long, std::uint64_t>, double> woken_ns;
  for (const auto& e : graph.edges) {
    const auto key = std::make_tuple(e.wakee_pid, e.wakee_tid, e.syscall_nr, e.object);
    const auto w = static_cast<double>(e.ns);
    woken_ns[key] += w;
    if (e.waker_kind != WakerKind::kThread) continue;
    auto it = index.find({e.waker_pid, e.waker_tid});
    if (it != index.end() && !(e.waker_pid == e.wakee_pid && e.waker_tid == e.wakee_tid)) {
      woken_by[key][it->second] += w;
    }
  }
  // handoff[i][j]: ns of thread i's idle that thread j's hand-offs ended.
  std::vector<std::map<std::size_t, double>> handoff(threads.size());
  std::vector<std::array<double, kResourceCount>> direct(entries);
  for (std::size_t k = 0; k < short_lived.size(); ++k) {
    for (std::size_t r = 0; r < kResourceCount; ++r) {
      direct[threads.size() + k][r] = static_cast<double>(short_lived[k].split.ns[r]);
    }
  }
  bool any = false;
  for (std::size_t i = 0; i < threads.size(); ++i) {
    const ThreadAccount& t = threads[i];
    for (std::size_t r = 0; r < kResourceCount; ++r) {
      direct[i][r] = static_cast<double>(t.split.ns[r]);
    }
    std::int64_t held = 0;
    for (const auto h : t.held_ns) held += h;
    double movable =
        static_cast<double>(std::max<std::int64_t>(t.split[Resource::kIdle] - held, 0));
    for (const auto& [key, idle_ns] : t.idle_objects_ns) {
      const auto& [nr, object] = key;
      if (idle_ns <= 0 || !handoff_call(nr)) continue;
      const WaitObject* o = find_object(objects, {t.key.pid, nr, object});
      if (!o || (nr == SYS_futex && o->waiters.size() != 1 && !joined_only(*o))) {
        continue;  // a parked pool
      }
      const auto wkey = std::make_tuple(t.key.pid, t.key.tid, nr, object);
      auto by = woken_by.find(wkey);
      const double total = woken_ns[wkey];
      if (by == woken_by.end() || total <= 0) continue;
      for (const auto& [j, ns] : by->second) {
        const double moved = std::min(movable, static_cast<double>(idle_ns) * ns / total);
        if (moved <= 0) continue;
        handoff[i][j] += moved;
        direct[i][static_cast<std::size_t>(Resource::kIdle)] -= moved;
        movable -= moved;
        any = true;
      }
    }
  }
  if (!any) return 0;
  // Each waiter takes its wakers' splits, those splits including what the wakers waited for in
  // turn: repeated, so chains of up to kAttributionRounds hops resolve.
  auto final_split = direct;
  for (int round = 0; round < kAttributionRounds; ++round) {
    auto next = direct;
    for (std::size_t i = 0; i < threads.size(); ++i) {
      for (const auto& [j, ns] : handoff[i]) {
        double total = 0;
        for (const double v : final_split[j]) total += v;
        if (total <= 0) {
          next[i][static_cast<std::size_t>(Resource::kIdle)] += ns;
          continue;
        }
        for (std::size_t r = 0; r < kResourceCount; ++r)
          next[i][r] += ns * final_split[j][r] / total;
      }
    }
    final_split = std::move(next);
  }
  // The wakers' evidence, as it was before anything moved.
  std::vector<std::array<std::map<std::string, std::int64_t>, kResourceCount>> details(entries);
  for (std::size_t i = 0; i < threads.size(); ++i) details[i] = threads[i].details;
  std::int64_t moved_ns = 0;
  for (std::size_t i = 0; i < threads.size(); ++i) {
    if (handoff[i].empty()) continue;
    for (const auto& [j, ns] : handoff[i]) moved_ns += static_cast<std::int64_t>(ns);
    ThreadAccount& t = threads[i];
    const std::int64_t total = t.split.total_ns();
    TimeSplit next;
    std::int64_t sum = 0;
    for (std::size_t r = 0; r < kResourceCount; ++r) {
      next.ns[r] = static_cast<std::int64_t>(std::max(final_split[i][r], 0.0));
      sum += next.ns[r];
    }
    next[Resource::kIdle] += total - sum;  // rounding: the total stays
    for (std::size_t r = 0; r < kResourceCount; ++r) {
      const auto res = static_cast<Resource>(r);
      const std::int64_t before = t.split.ns[r];
      const std::int64_t after = next.ns[r];
      t.waited_for.ns[r] =
          std::max<std::int64_t>(after - static_cast<std::int64_t>(std::max(direct[i][r], 0.0)), 0);
      if (after == before) continue;
      auto& d = t.details[r];
      if (res == Resource::kIdle) {  // its details follow it
        const double f = before > 0 ? static_cast<double>(after) / static_cast<double>(before) : 0;
        for (auto& [text, ns] : d) ns = static_cast<std::int64_t>(static_cast<double>(ns) * f);
        continue;
      }
      // What it waited for, named as the direct wakers named it.
      const double added = static_cast<double>(after - before);
      double weight_total = 0;
      for (const auto& [j, ns] : handoff[i]) {
        for (const auto& [text, v] : details[j][r]) weight_total += ns * static_cast<double>(v);
      }
      if (weight_total <= 0) continue;
      for (const auto& [j, ns] : handoff[i]) {
        for (const auto& [text, v] : details[j][r]) {
          d[text] += static_cast<std::int64_t>(added * ns * static_cast<double>(v) / weight_total);
        }
      }
    }
    t.split = next;
  }
  return moved_ns;
}

}  // namespace chokepoint::model
