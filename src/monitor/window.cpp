#include "monitor/window.h"

#include <cerrno>

#include "collect/sampler/sampler.h"
#include "model/builder.h"

namespace chokepoint::monitor {

util::Result<std::unique_ptr<WindowSeries>> WindowSeries::open(
    const collect::sampler::TargetSpec& spec, const WindowOptions& options) {
  collect::sampler::SamplerOptions opt;
  opt.target = spec;
  opt.duration_ns = options.duration_ns;
  opt.interval_ns = options.interval_ns;
  opt.stop = options.stop;
  opt.rolling = options.rolling;
  opt.split_mode = options.split_mode;
  opt.shared_clock = options.shared_clock;
  auto sampler = collect::sampler::Sampler::create(opt);
  if (!sampler) return sampler.error();
  std::unique_ptr<WindowSeries> s(new WindowSeries());
  s->sampler_ = std::move(*sampler);
  s->sink_ = std::make_unique<model::ObservationSink>();
  return s;
}

WindowSeries::~WindowSeries() = default;

util::Result<DiagnosisWindow> WindowSeries::next(bool keep_samples) {
  DiagnosisWindow w;
  sink_->keep_next(keep_samples ? &w.samples : nullptr);
  auto ran = sampler_->run(*sink_);
  sink_->keep_next(nullptr);
  if (!ran) {
    ended_ = true;
    return ran.error();
  }
  w.observation = sink_->finish();
  ++windows_;
  if (w.observation.target_exited) ended_ = true;
  if (w.observation.threads.empty()) {
    ended_ = true;
    return util::Error{"the target exited before it could be observed",
                       "start the service first, or watch it with -- COMMAND", ESRCH};
  }
  w.diagnosis = analysis::diagnose(w.observation);
  return w;
}

util::Result<DiagnosisWindow> diagnose_window(const collect::sampler::TargetSpec& spec,
                                              const WindowOptions& options) {
  auto series = WindowSeries::open(spec, options);
  if (!series) return series.error();
  return (*series)->next(options.keep_samples);
}

}  // namespace chokepoint::monitor
