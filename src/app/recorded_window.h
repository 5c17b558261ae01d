#pragma once
// A diagnosis window kept in a recording and brought back: the samples, and what diagnose added
// after the window (the stack evidence for its verdict), so that a replay prints the report the
// live run printed.

#include <optional>
#include <string>

#include "analysis/diagnosis.h"
#include "app/diagnose_stacks.h"
#include "model/observation.h"
#include "model/samples.h"
#include "store/recording.h"

namespace chokepoint::app {

// Adds stacks found after the window to its report: sentences to the primary bottleneck's
// evidence, and the stacks' source. Does nothing for a verdict without stacks.
void add_stacks(const VerdictStacks& stacks, model::Observation& obs, analysis::Diagnosis& d);

// Writes the window's ticks, and the stacks when there are some. Errors: the file could not be
// written (with hints).
util::Result<void> save_window(store::RecordingWriter& writer, const model::Samples& samples,
                               const std::optional<VerdictStacks>& stacks);

// The stacks a diagnose --record kept, nullopt when there are none (or the note is damaged).
std::optional<VerdictStacks> saved_stacks(const store::RecordingReader& reader);

}  // namespace chokepoint::app
