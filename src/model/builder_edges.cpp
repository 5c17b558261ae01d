// The wait-for edges of model::ObservationBuilder (builder_state.h): each edge's sums at the
// window's start and last, found through a flat index, and the window's graph of their deltas.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "model/builder_state.h"
#include "util/counters.h"

namespace chokepoint::model::builder_internal {

EdgeSums& Builder::edge_sums(const WakeEdge& e) {
  if ((edges_.size() + 1) * 2 > edge_slots_.size()) {
    index_edges(std::max<std::size_t>(1024, edge_slots_.size() * 2));
  }
  const EdgeKey key(e);
  const std::size_t mask = edge_slots_.size() - 1;
  for (std::size_t i = EdgeKeyHash{}(key)&mask;; i = (i + 1) & mask) {
    const std::uint32_t slot = edge_slots_[i];
    if (slot == 0) {
      edges_.push_back({key, {}});
      edge_slots_[i] = static_cast<std::uint32_t>(edges_.size());
      return edges_.back().sums;
    }
    if (edges_[slot - 1].key == key) return edges_[slot - 1].sums;
  }
}

void Builder::index_edges(std::size_t slots) {
  edge_slots_.assign(slots, 0);
  const std::size_t mask = slots - 1;
  for (std::size_t n = 0; n < edges_.size(); ++n) {
    std::size_t i = EdgeKeyHash{}(edges_[n].key) & mask;
    while (edge_slots_[i] != 0) i = (i + 1) & mask;
    edge_slots_[i] = static_cast<std::uint32_t>(n + 1);
  }
}
// Whether the window has a wait-for graph (it comes with the exact mode's eBPF programs).
Source wait_graph_source(const ExactState& last, std::size_t edges, std::int64_t handed_ns) {
  if (!last.on) {
    return {"wait-for graph", false, "",
            "without it (the exact mode's eBPF did not run) a thread waiting for another "
            "thread's hand-off (a reply semaphore, a join) is classed by what it waits in, "
            "lock for a semaphore; run as root with BTF (--mode exact or auto)"};
  }
  std::string detail = fmt::format(
      "eBPF on sched_waking: who woke each target thread out of which wait (futex "
      "word or fd), with the blocked time each wakeup ended ({} edges); hand-offs to "
      "one thread are followed to that thread's own state",
      edges);
  if (handed_ns > 0) {
    detail += fmt::format(
        ", and the time threads waited for them idle ({:.2f} thread-s) is divided as the threads "
        "that ended them spent theirs",
        static_cast<double>(handed_ns) / 1e9);
  }
  return {"wait-for graph", true, std::move(detail), ""};
}

void Builder::order_edges() {
  const std::size_t known = edge_order_.size();
  if (known == edges_.size()) return;
  const auto by_key = [this](std::uint32_t a, std::uint32_t b) {
    return edges_[a].key.tie() < edges_[b].key.tie();
  };
  for (std::size_t i = known; i < edges_.size(); ++i) {
    edge_order_.push_back(static_cast<std::uint32_t>(i));
  }
  const auto mid = edge_order_.begin() + static_cast<std::ptrdiff_t>(known);
  std::sort(mid, edge_order_.end(), by_key);
  std::inplace_merge(edge_order_.begin(), mid, edge_order_.end(), by_key);
}

WaitGraph Builder::window_graph() {
  // In the key's order, as the analysis has always summed them (a key is one entry of edges_).
  order_edges();
  WaitGraph g;
  for (const std::uint32_t i : edge_order_) {
    const auto& [key, sums] = edges_[i];
    const std::uint64_t ns = util::saturating_delta(sums.base_ns, sums.last_ns);
    const std::uint64_t count = util::saturating_delta(sums.base_count, sums.last_count);
    if (ns == 0 && count == 0) continue;
    WakeEdge e;
    std::tie(e.waker_pid, e.waker_tid, e.waker_kind, e.wakee_pid, e.wakee_tid, e.syscall_nr,
             e.object) = key.tie();
    e.ns = ns;
    e.count = count;
    g.edges.push_back(e);
  }
  return g;
}

}  // namespace chokepoint::model::builder_internal
