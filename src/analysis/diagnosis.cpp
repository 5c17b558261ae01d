#include "analysis/diagnosis.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "analysis/rules/rule.h"

namespace chokepoint::analysis {
namespace {

using model::Resource;

// Shares closer than this are a tie, broken by the hierarchy.
constexpr double kTieShare = 0.05;

std::string headroom_text(const rules::Context& ctx) {
  const auto& sys = ctx.obs.system;
  double allowed = sys.cpus_allowed > 0 ? sys.cpus_allowed : std::max(1, sys.cpus_online);
  double cores = ctx.load(Resource::kOnCpu) + ctx.load(Resource::kCpuWait);
  double waits = ctx.load(Resource::kDisk) + ctx.load(Resource::kNetwork) +
                 ctx.load(Resource::kLock) + ctx.load(Resource::kMemory);
  return fmt::format(
      "the target used {:.2f} of {:.4g} cores ({} CPU headroom); {:.2f} threads on average waited "
      "on disk, network, locks or memory; system CPU {}, memory available {}",
      cores, allowed, rules::percent(std::max(0.0, 1.0 - cores / allowed)), waits,
      rules::percent(sys.cpu_utilization),
      rules::bytes(static_cast<double>(sys.mem_available_bytes)));
}

// 0: a leak that runs out of memory within the hour; 1: a time bottleneck (or dropped connection
// attempts); 2: any other leak.
int urgency_class(const Bottleneck& b) {
  if (share_basis(b.kind) != ShareBasis::kFreeMemoryPerHour) return 1;
  return b.share >= 1.0 ? 0 : 2;
}

bool before(const Bottleneck& a, const Bottleneck& b) {
  if (a.significant != b.significant) return a.significant;
  if (urgency_class(a) != urgency_class(b)) return urgency_class(a) < urgency_class(b);
  if (std::abs(a.share - b.share) > kTieShare) return a.share > b.share;
  return hierarchy_rank(a.resource) < hierarchy_rank(b.resource);
}

}  // namespace

std::string share_text(BottleneckKind kind, double share) {
  switch (share_basis(kind)) {
    case ShareBasis::kBusyTime:
      return rules::percent(share) + " of busy time";
    case ShareBasis::kConnectionAttempts:
      return rules::percent(share) + " of connection attempts dropped";
    case ShareBasis::kFreeMemoryPerHour:
      break;
  }
  if (share >= 1.0) return "eats all the free memory within the hour";
  return "eats " + rules::percent(share) + " of the free memory per hour";
}

std::string share_text(const Bottleneck& b) {
  if (share_basis(b.kind) == ShareBasis::kFreeMemoryPerHour && b.limit_in_s) {
    return "free memory runs out in " + rules::duration(*b.limit_in_s);
  }
  return share_text(b.kind, b.share);
}

Diagnosis diagnose(const model::Observation& obs) {
  rules::Context ctx{obs, model::total_split(obs.threads), obs.duration_ns / 1e9, 0, {}, {}, {}};
  for (const auto& t : obs.threads) ctx.waited_for += t.waited_for;
  ctx.busy_ns = static_cast<double>(ctx.split.busy_ns());
  if (obs.wait_graph) {
    ctx.handoffs = model::lock_handoffs(*obs.wait_graph, obs.threads);
    ctx.idle_handoffs = model::idle_handoffs(*obs.wait_graph, obs.threads);
  }

  Diagnosis d;
  d.split = ctx.split;
  using RuleFn = rules::RuleResult (*)(const rules::Context&);
  for (RuleFn rule :
       {rules::network, rules::backlog, rules::disk, rules::memory, rules::leak, rules::lock,
        rules::cpu, rules::limits, rules::close_wait, rules::ephemeral_ports, rules::accept_queue,
        rules::syn_flood, rules::conntrack, rules::shared_memory, rules::rlimits, rules::held}) {
    rules::RuleResult r = rule(ctx);
    if (r.bottleneck) d.bottlenecks.push_back(std::move(*r.bottleneck));
    for (auto& f : r.findings) d.findings.push_back(std::move(f));
  }

  std::stable_sort(d.bottlenecks.begin(), d.bottlenecks.end(), before);
  if (!d.bottlenecks.empty() && d.bottlenecks.front().significant) {
    d.verdict = d.bottlenecks.front().resource;
    // Confidence falls when the runner-up is close.
    if (d.bottlenecks.size() > 1 && d.bottlenecks[1].significant) {
      const auto& [first, second] = std::tie(d.bottlenecks[0], d.bottlenecks[1]);
      if (urgency_class(first) == 1 && urgency_class(second) == 1) {
        double margin = first.share - second.share;
        d.bottlenecks[0].confidence *= std::clamp(0.5 + margin * 2.0, 0.5, 1.0);
      }
    }
  } else {
    d.verdict = Verdict::kNone;
    d.headroom = headroom_text(ctx);
    // Idle because it could not run is not headroom: say so first.
    if (const double held = rules::held_share(ctx); held >= 0.5) {
      d.headroom = fmt::format(
                       "the target was held for {} of its thread time (stopped, traced, frozen or "
                       "in vfork: see the findings), so this window shows no load; ",
                       rules::percent(held)) +
                   d.headroom;
    }
  }
  // Bottlenecks that are not significant stay in the list for the JSON (with significant=false),
  // so a reader sees every resource's share; the terminal shows only significant ones.
  return d;
}

}  // namespace chokepoint::analysis
