#pragma once
// The recording's tables (schema 7, docs/recording.md) as the writer creates them, and what the
// writer and the reader share about them: the WAIT columns, the tables rotation deletes from, and
// the tick flags. Internal to store/ (recording_writer.cpp, recording_reader.cpp).

#include <cstdint>
#include <string>

namespace chokepoint::store {

// Wait columns, shared by thread_base and thread_sample.
inline constexpr const char* kWaitColumns =
    "state INTEGER, site INTEGER, syscall_nr INTEGER, a0 INTEGER, a1 INTEGER, a2 INTEGER, "
    "a3 INTEGER, a4 INTEGER, a5 INTEGER, fd_role INTEGER, fd_detail INTEGER, net_wait INTEGER, "
    "futex_caller INTEGER";

// Schema 6: each connection's RTT variance and retransmits (tcp_info's rttvar and
// total_retrans), for the report's per-connection RTT. Older files have neither column and read
// as 0.
inline constexpr const char* kSocketColumns6 = "rttvar_us INTEGER, total_retrans INTEGER";
// Schema 7: each connection's segments sent and not yet acknowledged (tcp_info's unacked), for
// top's peers. Older files have no column and read as 0.
inline constexpr const char* kSocketColumns7 = "unacked INTEGER";

// The CREATE statements of every table but the stack tables (store/stack_slices.h) and the
// probe tables (store/probe_series.h).
std::string schema_sql();

// Tables a thread-or-process row keyed by tick lives in (rotation deletes from each).
inline constexpr const char* kTickTables[] = {"pid_seen",      "thread_base",   "thread_pack",
                                              "thread_end",    "thread_name",   "process_sample",
                                              "socket_sample", "system_sample", "collector_sample",
                                              "exact_sample",  "probe_sample"};

// tick.flags.
inline constexpr std::int64_t kFlagClosing = 1, kFlagExited = 2;

}  // namespace chokepoint::store
