#pragma once
// The samples a recording keeps as JSON documents (system_sample.sample,
// collector_sample.sample, exact_sample.sample: docs/recording.md), written and read back.
// Internal to store/. Reading is defensive: a document that is not JSON, or not an object, is
// nullopt; a missing or mistyped field reads as absent or zero, and values are clamped.

#include <optional>
#include <string>

#include "model/samples.h"

namespace chokepoint::store {

std::string system_document(const model::SystemSample& s);
std::string collector_document(const model::CollectorSample& c);
// The exact mode's state only: its sums and wait-for edges are packed beside it (thread_pack.h).
std::string exact_document(const model::ExactSample& x);

std::optional<model::SystemSample> system_from(const std::string& text);
std::optional<model::CollectorSample> collector_from(const std::string& text);
// Recordings of schema 1 kept the sums, and schemas 1 and 2 the edges, in this document: read.
std::optional<model::ExactSample> exact_from(const std::string& text);

}  // namespace chokepoint::store
