#include "store/recording_schema.h"

#include <fmt/format.h>

namespace chokepoint::store {

std::string schema_sql() {
  return fmt::format(
      "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE tick(id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, lock_credit_ns INTEGER "
      "NOT NULL, runnable INTEGER, flags INTEGER NOT NULL);"
      "CREATE TABLE keyframe(tick INTEGER PRIMARY KEY);"
      "CREATE TABLE text(id INTEGER PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE thread(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, tid INTEGER NOT NULL, "
      "start_time_ticks INTEGER NOT NULL, comm INTEGER NOT NULL, process_name INTEGER NOT NULL);"
      // Schema 3: ppid, the parent's pid at the first read (NULL: not read).
      "CREATE TABLE process(pid INTEGER PRIMARY KEY, name INTEGER NOT NULL, ppid INTEGER);"
      "CREATE TABLE pid_seen(tick INTEGER NOT NULL, pid INTEGER NOT NULL);"
      "CREATE TABLE thread_base(tick INTEGER NOT NULL, thread INTEGER NOT NULL, run_ns INTEGER, "
      "run_delay_ns INTEGER, utime_ns INTEGER, stime_ns INTEGER, majflt INTEGER, blkio_ns "
      "INTEGER, {0});"
      "CREATE INDEX thread_base_tick ON thread_base(tick);"
      // Schema 2: the thread rows of a tick in one packed blob (store/thread_pack.h), with
      // their count and summed run and run-delay deltas for SQL. Schema 1 had one
      // thread_sample row per thread instead.
      "CREATE TABLE thread_pack(tick INTEGER PRIMARY KEY, threads INTEGER NOT NULL, run_ns "
      "INTEGER NOT NULL, run_delay_ns INTEGER NOT NULL, data BLOB NOT NULL);"
      "CREATE TABLE thread_end(tick INTEGER NOT NULL, thread INTEGER NOT NULL, last_poll_ns "
      "INTEGER NOT NULL);"
      // Added without a schema change, as exact_sample: a thread's name from this tick on
      // (`thread.comm` is its first); a recording without it reads as one whose threads kept
      // their names, and an older reader ignores it.
      "CREATE TABLE thread_name(tick INTEGER NOT NULL, thread INTEGER NOT NULL, comm INTEGER NOT "
      "NULL);"
      "CREATE TABLE process_sample(tick INTEGER NOT NULL, pid INTEGER NOT NULL, read_bytes "
      "INTEGER, write_bytes INTEGER, syscw INTEGER, rss_bytes INTEGER, anon_bytes INTEGER, "
      "delay_cpu_ns INTEGER, delay_blkio_ns INTEGER, delay_swapin_ns INTEGER, delay_reclaim_ns "
      "INTEGER, delay_thrashing_ns INTEGER, delay_compact_ns INTEGER, open_fds INTEGER, "
      "fd_soft_limit INTEGER);"
      "CREATE TABLE socket_sample(tick INTEGER NOT NULL, pid INTEGER NOT NULL, inode INTEGER, "
      "state INTEGER, server_side INTEGER, local_addr INTEGER, local_port INTEGER, remote_addr "
      "INTEGER, remote_port INTEGER, recv_queue_bytes INTEGER, send_queue_bytes INTEGER, "
      "notsent_bytes INTEGER, rtt_us INTEGER, bytes_acked INTEGER, sndbuf_limited_us INTEGER, "
      "rwnd_limited_us INTEGER, {1}, {2});"
      "CREATE TABLE system_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL);"
      "CREATE TABLE collector_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL);"
      // Added without a schema change: a recording without it is read as one without the exact
      // mode, and an older reader ignores it. Schema 2 keeps the sums packed in `waits`
      // (store/thread_pack.h), not in the document; schema 3 the wait-for edges in `edges`.
      "CREATE TABLE exact_sample(tick INTEGER NOT NULL, sample TEXT NOT NULL, waits BLOB, edges "
      "BLOB);",
      kWaitColumns, kSocketColumns6, kSocketColumns7);
}

}  // namespace chokepoint::store
