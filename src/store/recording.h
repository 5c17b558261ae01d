#pragma once
// Recordings: the raw samples of model/samples.h in one SQLite file (schema in
// docs/recording.md), written tick by tick and read back for replay.
//
// Durability: WAL mode with synchronous=NORMAL, one transaction per tick. A crash of the writer
// (SIGKILL) loses nothing committed; a power loss may lose the last ticks, never the file.
// Compactness: a thread that did not run since its last record costs no row; counters are stored
// as deltas from the thread's previous row, against an absolute base row (thread_base) written when
// the thread is first seen and at every keyframe (every keyframe_every_ns, all live threads).
// Rotation (max_bytes, keep_for_ns) deletes whole keyframe spans, oldest first, never the newest.
//
// Thread-safety: a RecordingWriter or RecordingReader is used by one thread. Readers may open a
// file while a writer writes it (WAL): neither disturbs the other.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/samples.h"
#include "model/service.h"
#include "store/stack_slices.h"
#include "util/result.h"

namespace chokepoint::store {

// 1: a thread_sample row per thread that ran; 2: one packed thread_pack row per tick; 3: each
// process row keeps its parent's pid (process.ppid), the exact mode's wait-for edges are packed
// in exact_sample.edges, and stacks over time (store/stack_slices.h); 4: the packed blobs
// (thread_pack.data, exact_sample.waits and edges) are compressed (store/blob_codec.h), and a
// thread row gives one of utime and stime when they split its run time; 5: the service probes'
// polls over time (store/probe_series.h); 6: each connection's RTT variance and retransmits
// (socket_sample.rttvar_us, total_retrans); 7: each connection's unacknowledged segments
// (socket_sample.unacked, top's peers). All seven are read.
inline constexpr int kSchemaVersion = 7;
// PRAGMA application_id: "CHKP".
inline constexpr std::int32_t kApplicationId = 0x43484b50;

// What the recording says about where and how it was made.
struct RecordingMeta {
  int schema_version = 0;
  std::string chokepoint_version;
  std::string kernel;  // uname -r and -v
  std::string machine;
  int cpus = 0;
  std::int64_t created_unix_ns = 0;
  // CLOCK_MONOTONIC when it was created: at_ns - created_monotonic_ns + created_unix_ns is the
  // wall-clock time of a tick.
  std::int64_t created_monotonic_ns = 0;
};

struct WriterOptions {
  std::string chokepoint_version;
  // 0: no limit. Past it, the oldest keyframe spans are deleted (the file's pages are reused, so
  // it stops growing at about this size; it does not shrink).
  std::uint64_t max_bytes = 0;
  std::int64_t keep_for_ns = 0;  // 0: keep everything
  std::int64_t keyframe_every_ns = 60'000'000'000;
  // Called when writing fails (the tick is lost: a full disk) and when it works again. Writing
  // is retried at every tick; the recording goes on with a keyframe.
  std::function<void(const util::Error&)> on_write_error;
  std::function<void()> on_write_resumed;
};

class RecordingWriter : public model::SampleSink {
 public:
  // Creates the file (replacing an earlier recording at the same path; anything else there is an
  // error). Errors: cannot create or write it, with hints.
  static util::Result<std::unique_ptr<RecordingWriter>> create(const std::string& path,
                                                               WriterOptions options);
  ~RecordingWriter() override;
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  void begin(const model::RecordingInfo& info) override;
  void add(model::Tick tick) override;
  // Keeps a document beside the samples (a JSON text: what a diagnosis found after its window,
  // such as its stack evidence). Replaces an earlier note of the same key.
  util::Result<void> add_note(const std::string& key, const std::string& text);
  // Keeps one slice of stacks (store/stack_slices.h), in a transaction of its own. Errors: the
  // file could not be written (the slice is lost; with hints).
  util::Result<void> add_stack_slice(const StackSlice& slice);

  // Schema 5: the probes whose polls add_probe_polls keeps (their ids are their indexes), written
  // once before the first poll. Errors: the file could not be written (with hints).
  util::Result<void> set_probes(const std::vector<model::ServiceProbe>& probes);
  // Keeps polls of those probes, in a transaction of their own, with the newest tick written
  // (the first at or after them when called after each tick). Errors: the file could not be
  // written (the polls are lost; with hints).
  util::Result<void> add_probe_polls(const std::vector<model::ServicePoll>& polls);
  // The probe documents' bytes before and after the blob envelope (zstd where smaller).
  std::pair<std::uint64_t, std::uint64_t> probe_document_bytes() const;

  // Whether the last tick was written; the error when not.
  bool failing() const;
  std::uint64_t ticks_written() const;
  std::uint64_t ticks_lost() const;
  // Thread rows written (base and sample), for the cost per thread-sample.
  std::uint64_t thread_rows_written() const;

 private:
  struct Impl;
  explicit RecordingWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class RecordingReader {
 public:
  // Opens a recording read-only, in SQLite's defensive mode with trusted_schema off. Errors: not
  // a file, not SQLite, not a chokepoint recording, a schema this version cannot read, corrupt.
  static util::Result<RecordingReader> open(const std::string& path);
  ~RecordingReader();
  RecordingReader(RecordingReader&&) noexcept;
  RecordingReader& operator=(RecordingReader&&) noexcept;

  const model::RecordingInfo& info() const;
  const RecordingMeta& meta() const;
  // The stack slices of `kind` that overlap [from_ns, to_ns], oldest first (none before schema 3).
  // Errors: the stack tables are damaged.
  util::Result<std::vector<StackSlice>> stack_slices(StackKind kind, std::int64_t from_ns,
                                                     std::int64_t to_ns) const;
  // Schema 5: the service probes whose polls the recording keeps, in their ids' order (none
  // before schema 5, or when nothing was probed).
  const std::vector<model::ServiceProbe>& probes() const;
  // Their polls made in [from_ns, to_ns], in time order. Errors: a damaged row (with a hint).
  util::Result<std::vector<model::ServicePoll>> probe_polls(std::int64_t from_ns,
                                                            std::int64_t to_ns) const;
  // A note the writer kept (add_note), nullopt when there is none.
  std::optional<std::string> note(const std::string& key) const;
  // The first and last tick's time, nullopt for a recording with no ticks.
  std::optional<std::pair<std::int64_t, std::int64_t>> time_range() const;

  // Calls `each` with every tick in time order, up to (and including) the first tick after
  // to_ns; stops early when it returns false. Errors: the file is corrupt or truncated.
  util::Result<void> read_ticks(std::int64_t to_ns, const std::function<bool(model::Tick&&)>& each);

 private:
  struct Impl;
  explicit RecordingReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads a whole recording (small ones: tests, diagnose --record).
util::Result<model::Samples> read_all(const std::string& path);

}  // namespace chokepoint::store
