#include "monitor/tier_window.h"

namespace chokepoint::monitor {

TierWindows diagnose_tiers(const model::Samples& samples, const std::vector<int>& roots,
                           const std::vector<model::ServiceObservation>& services,
                           const model::Window& window) {
  TierWindows w;
  const model::TierMap tier_of = model::assign_tiers(samples, roots);
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const model::Samples part = model::tier_samples(samples, tier_of, i, roots[i]);
    model::Observation obs = model::build_observation(part.info, part.ticks, window);
    model::apply_service_waits(obs.threads, services);
    analysis::TierDiagnosis t;
    t.root_pid = roots[i];
    t.pids = obs.target.pids;
    for (const auto& p : obs.processes) {
      if (p.pid == roots[i]) t.name = p.name;
    }
    t.diagnosis = analysis::diagnose(obs);
    w.tiers.push_back(std::move(t));
    w.observations.push_back(std::move(obs));
  }
  w.links = model::link_tiers(samples, tier_of);
  w.limiting = analysis::limiting_tier(w.tiers, w.links);
  return w;
}

}  // namespace chokepoint::monitor
