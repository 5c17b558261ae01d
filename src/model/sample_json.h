#pragma once
// The JSON form of the samples that diagnose's report and the recordings' sample documents both
// write with the same fields: one owner for each field's name. render/diagnosis_report.cpp puts
// them in the --json report; store/sample_documents.cpp in a recording (which adds what only a
// recording needs, such as the shared memory's page size). An unknown (nullopt) value is null.

#include <nlohmann/json.hpp>

#include "model/rlimits.h"
#include "model/shm.h"

namespace chokepoint::model {

// System V segments and /dev/shm against the kernel's limits (model/shm.h), without
// page_size_bytes.
nlohmann::json shm_json(const ShmSample& shm);

// One object per process: its nproc, memlock, stack and core limits against its use
// (model/rlimits.h).
nlohmann::json rlimit_processes_json(const RlimitSample& rlimits);

}  // namespace chokepoint::model
