#include "monitor/window.h"

#include <cerrno>

#include "collect/sampler/sampler.h"
#include "model/builder.h"

namespace chokepoint::monitor {

util::Result<DiagnosisWindow> diagnose_window(const collect::sampler::TargetSpec& spec,
                                              const WindowOptions& options) {
  collect::sampler::SamplerOptions opt;
  opt.target = spec;
  opt.duration_ns = options.duration_ns;
  opt.interval_ns = options.interval_ns;
  opt.stop = options.stop;
  auto sampler = collect::sampler::Sampler::create(opt);
  if (!sampler) return sampler.error();
  DiagnosisWindow w;
  model::ObservationSink sink(options.keep_samples ? &w.samples : nullptr);
  if (auto ran = (*sampler)->run(sink); !ran) return ran.error();
  w.observation = sink.finish();
  if (w.observation.threads.empty()) {
    return util::Error{"the target exited before it could be observed",
                       "start the service first, or watch it with -- COMMAND", ESRCH};
  }
  w.diagnosis = analysis::diagnose(w.observation);
  return w;
}

}  // namespace chokepoint::monitor
