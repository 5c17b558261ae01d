#include "model/wait_graph.h"

#include <algorithm>
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

std::optional<WaitChain> follow_chain(const std::vector<WaitObject>& objects,
                                      const std::vector<ThreadAccount>& threads, int pid, int tid,
                                      long syscall_nr, std::uint64_t object) {
  const WaitObject* o = find_object(objects, {pid, syscall_nr, object});
  if (!o || o->shape != WaitShape::kHandoff) return std::nullopt;
  WaitChain chain;
  std::set<int> visited{tid};
  ChainStep step{pid, tid, "", syscall_nr, object};
  for (;;) {
    if (const ThreadAccount* t = find_thread(threads, step.pid, step.tid)) step.comm = t->comm;
    chain.steps.push_back(step);
    chain.root_pid = o->waker_pid;
    chain.root_tid = o->waker_tid;
    chain.root_kind = o->waker_kind;
    const ThreadAccount* waker = o->waker_kind == WakerKind::kThread
                                     ? find_thread(threads, o->waker_pid, o->waker_tid)
                                     : nullptr;
    if (!waker) break;  // outside the target, or kernel context: the chain ends there
    chain.root_comm = waker->comm;
    const auto [state, share] = main_state(*waker);
    chain.root_resource = state;
    chain.root_share = share;
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

std::vector<Handoff> lock_handoffs(const WaitGraph& graph,
                                   const std::vector<ThreadAccount>& threads) {
  const auto objects = wait_objects(graph);
  struct Acc {
    Handoff h;
    double best_waiter_ns = -1;
  };
  std::map<std::pair<int, int>, Acc> by_root;
  for (const auto& t : threads) {
    const std::int64_t lock_ns = t.split[Resource::kLock];
    if (lock_ns <= 0 || t.lock_objects_ns.empty()) continue;
    double total = 0;
    for (const auto& [key, ns] : t.lock_objects_ns)
      total += static_cast<double>(std::max<std::int64_t>(ns, 0));
    if (total <= 0) continue;
    std::map<std::pair<int, int>, std::pair<double, WaitChain>> mine;
    for (const auto& [key, ns] : t.lock_objects_ns) {
      if (ns <= 0) continue;
      auto chain = follow_chain(objects, threads, t.key.pid, t.key.tid, key.first, key.second);
      if (!chain) continue;
      auto& m = mine[{chain->root_pid, chain->root_tid}];
      m.first += static_cast<double>(lock_ns) * static_cast<double>(ns) / total;
      if (m.second.steps.empty()) m.second = std::move(*chain);
    }
    for (auto& [root, m] : mine) {
      Acc& a = by_root[root];
      a.h.lock_ns += m.first;
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
            [](const Handoff& a, const Handoff& b) { return a.lock_ns > b.lock_ns; });
  return out;
}

}  // namespace chokepoint::model
