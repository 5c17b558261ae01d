#include "app/probe_options.h"

#include <fmt/format.h>

#include "collect/probes/detect.h"
#include "collect/probes/memcached_probe.h"
#include "collect/probes/postgres_probe.h"
#include "collect/probes/proxy_probes.h"
#include "collect/probes/redis_probe.h"
#include "util/fatal.h"

namespace chokepoint::app {

namespace probes = collect::probes;

void add_probe_options(CLI::App* cli, ProbeArgs& args) {
  const char* group = "Service probes (the service's own view, folded into the verdict)";
  cli->add_option("--pg", args.pg,
                  "PostgreSQL: a libpq connection string or URI (found from postmaster.pid when "
                  "the target is a postmaster)")
      ->group(group);
  cli->add_option("--redis", args.redis, "Redis: HOST:PORT or a Unix socket path (repeatable)")
      ->group(group);
  cli->add_option("--memcached", args.memcached, "memcached: HOST:PORT (repeatable)")->group(group);
  cli->add_option("--nginx-status", args.nginx_status,
                  "nginx: the URL of a stub_status location (repeatable)")
      ->group(group);
  cli->add_option("--haproxy-stats", args.haproxy_stats,
                  "HAProxy: its stats socket path or stats page URL (repeatable)")
      ->group(group);
  cli->add_flag("--no-probes", args.no_probes,
                "do not probe the services found among the target's processes")
      ->group(group);
}

Probes make_probes(const ProbeArgs& args, const std::vector<int>& pids) {
  Probes out;
  std::vector<model::ServiceKind> named;
  auto add = [&](util::Result<std::unique_ptr<probes::Probe>> p) {
    if (!p) util::usage_error(p.error().message, p.error().hint);
    named.push_back((*p)->kind());
    out.probes.push_back(std::move(*p));
  };
  if (!args.pg.empty()) add(probes::make_postgres_probe(args.pg));
  for (const auto& a : args.redis) add(probes::make_redis_probe(a));
  for (const auto& a : args.memcached) add(probes::make_memcached_probe(a));
  for (const auto& a : args.nginx_status) add(probes::make_nginx_probe(a));
  for (const auto& a : args.haproxy_stats) add(probes::make_haproxy_probe(a));
  if (!args.no_probes && !pids.empty()) {
    auto found = probes::detect_services(pids, collect::procfs::ProcFs(), named);
    for (auto& p : found.probes) out.probes.push_back(std::move(p));
    out.notes = std::move(found.notes);
  }
  return out;
}

namespace {

// The sources lines for the services that were probed (or found and not probed).
std::vector<model::Source> probe_sources(const std::vector<model::ServiceObservation>& services,
                                         const std::vector<std::string>& notes) {
  std::vector<model::Source> out;
  for (const auto& s : services) {
    const bool ok = s.samples_ok > 0;
    // Named with the endpoint: the JSON's sources are keyed by name, and two Redis are two.
    out.push_back({fmt::format("{} probe {}", model::service_kind_name(s.kind), s.endpoint), ok,
                   fmt::format("{}: {} reads{}", s.how, s.samples_ok,
                               s.samples_failed > 0
                                   ? fmt::format(", {} failed ({})", s.samples_failed, s.error)
                                   : std::string()),
                   ok ? std::string() : (s.hint.empty() ? s.error : s.error + "; " + s.hint)});
  }
  // "nginx: pass --nginx-status ..." -> source "nginx probe".
  for (const auto& n : notes) {
    out.push_back({n.substr(0, n.find_first_of(": ")) + " probe", false, "found, not probed", n});
  }
  return out;
}

}  // namespace

std::vector<analysis::ServiceReport> fold_service_view(
    model::Observation& obs, analysis::Diagnosis& d,
    const std::vector<model::ServiceObservation>& services, const std::vector<std::string>& notes) {
  if (model::apply_service_waits(obs.threads, services) > 0) d = analysis::diagnose(obs);
  auto reports = analysis::assess_services(services);
  analysis::fold_services(d, reports);
  for (auto& src : probe_sources(services, notes)) obs.sources.push_back(std::move(src));
  return reports;
}

}  // namespace chokepoint::app
