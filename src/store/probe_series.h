#pragma once
// The service probes' polls over time in a recording (schema 5): each poll of each probe
// (model::ServicePoll: what Redis, PostgreSQL, memcached, nginx or HAProxy said about itself at
// that moment, or why it could not be read), so that any window of a recording has the
// services' own evidence for that window. Two tables (docs/recording.md):
//
//   probe(id INTEGER PRIMARY KEY, kind TEXT, endpoint TEXT, how TEXT)
//                         one per probe of the run; id is model::ServicePoll::probe
//   probe_sample(tick, probe, at_ns, ok, data)
//                         one per poll: the tick it was written with (the first at or after the
//                         poll), the poll's own time (CLOCK_MONOTONIC ns), ok 1 when it read the
//                         service, and data: a JSON document (poll_document) in schema 4's blob
//                         envelope (store/blob_codec.h: zstd where that is smaller)
//
// Rotation deletes the polls with the ticks they were written with. A recording made before
// schema 5 has neither table: it reads as one with no probe series.
//
// Thread-safety: as RecordingWriter and RecordingReader, one thread each.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/service.h"
#include "store/blob_codec.h"
#include "util/result.h"

namespace chokepoint::store {

// A recording is a hostile file: at most this many probes, and entries per map of a poll, are
// read back (what a probe reads is far below: Redis's INFO gives some hundred names).
inline constexpr std::size_t kMaxProbeEntries = 4096;

// The CREATE TABLE statements of the two tables.
std::string probe_schema_sql();

// A poll as its JSON document, without what the columns hold (time, probe, ok): a good poll's
// non-empty "counters", "gauges" (name: number), "settings" (name: text), "backends" (pid as
// text: state), "slow" (lines, newest first) and "new_counters_were_zero" (true, or absent); a
// failed poll's "error" and "hint". Bytes from the service that are not UTF-8 are replaced.
std::string poll_document(const model::ServicePoll& poll);

// Reads back what poll_document wrote into `poll` (its reading, or error and hint, as poll.ok
// says). False when the text is not a JSON object; a field of the wrong type is left out, a
// number that is not finite too, and each map holds at most kMaxProbeEntries.
bool poll_from(std::string_view text, model::ServicePoll& poll);

// The writer's side: the probe rows, then the polls; the caller holds the transaction. Return
// an SQLite code (SQLITE_OK).
class ProbeTableWriter {
 public:
  int write_probes(sqlite3* db, const std::vector<model::ServiceProbe>& probes);
  int write_polls(sqlite3* db, std::int64_t tick_id, const std::vector<model::ServicePoll>& polls);
  // Bytes of the documents before and after the envelope, for the measurement in benchmarks.md.
  std::uint64_t document_bytes() const { return document_bytes_; }
  std::uint64_t stored_bytes() const { return stored_bytes_; }

 private:
  BlobEncoder blobs_;
  std::uint64_t document_bytes_ = 0, stored_bytes_ = 0;
};

// The probes of a recording, by id order; none before schema 5. Errors: the table is damaged (an
// unknown kind, ids that are not 0, 1, 2, ... in order).
util::Result<std::vector<model::ServiceProbe>> read_probes(sqlite3* db, const std::string& path);

// The polls made in [from_ns, to_ns], in time order; none before schema 5. Errors: a row that
// does not decode, or that names a probe not in `probe_count` (with a hint).
util::Result<std::vector<model::ServicePoll>> read_probe_polls(sqlite3* db, const std::string& path,
                                                               std::size_t probe_count,
                                                               std::int64_t from_ns,
                                                               std::int64_t to_ns);

}  // namespace chokepoint::store
