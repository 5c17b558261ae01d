#pragma once
// chokepoint-lab's command line: every flag, its default, and the per-scenario defaults.
//
// parse_options() never exits the process: it returns the options, a usage error (exit code 2) or
// a request for help text, so main() owns every exit path.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::lab {

enum class Scenario {
  kNone,
  kCpu,
  kSerial,
  kLock,
  kDisk,
  kLog,
  kLeak,
  kPaging,
  kUpstream,
  kBandwidth,
  kBacklog,
  kDbHotRow,
  kDbMissingIndex,
  kDbCommit,
  kConnLeak,
  kConnStorm,
  kProxy,
  kFsync,
  kPipeline,
};
enum class Model { kThreads, kEpoll };
enum class Role { kLab, kUpstream };
enum class LockMode { kGlobal, kSharded };
enum class LockType { kMutex, kRwlock };
enum class CommitMode { kPerRequest, kBatch, kAsync };
enum class LogMode { kSync, kAsync, kOff };
// pipeline: what the requester waits for its reply on.
enum class HandoffMode { kSemaphore, kCondvar, kJoin };
// pipeline: what a stage thread does per job: CPU work, or a durable write (write + fdatasync).
enum class StageWork { kCpu, kFsync };
// cpu, upstream: where answers are kept. kOn is an in-process memo; the others a real server.
enum class CacheMode { kOff, kOn, kRedis, kMemcached };

const char* scenario_name(Scenario s);
const char* model_name(Model m);
const char* cache_name(CacheMode c);
// db-hot-row, db-missing-index, db-commit: the scenarios that need --db.
bool is_db_scenario(Scenario s);
// Every scenario name, in declaration order (for help text and tests).
std::vector<std::string> scenario_names();

struct Options {
  Role role = Role::kLab;
  Scenario scenario = Scenario::kNone;
  Model model = Model::kEpoll;
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;      // 0: the kernel picks a free port
  int workers = 0;             // threads: work pool size; epoll: event loops (see README)
  bool workers_given = false;  // --workers was on the command line
  int blocking_workers = 32;   // pool for blocking steps (fsync, upstream calls)
  int backlog = 4096;          // listen(2) backlog
  std::string data_dir;        // empty: a fresh mkdtemp directory, removed on exit

  // cpu, serial, lock: CPU work per request, in microseconds (calibrated to iteration counts).
  std::int64_t work_us = 1000;
  CacheMode cache = CacheMode::kOff;  // cpu, upstream: memoize per query key (lab/services.h)
  std::string cache_server;           // --cache redis|memcached: HOST:PORT
  int serial_workers = 1;             // serial: threads of the executor that runs the work
  int pipeline_workers = 1;           // pipeline: stage threads that run the work
  HandoffMode handoff = HandoffMode::kCondvar;  // pipeline: how the reply is handed back
  StageWork stage_work = StageWork::kCpu;       // pipeline: what the stage does per job
  LockMode lock_mode = LockMode::kGlobal;
  LockType lock_type =
      LockType::kMutex;  // lock: std::mutex, or std::shared_mutex (a pthread rwlock)
  int lock_shards = 16;
  CommitMode commit = CommitMode::kPerRequest;
  std::int64_t record_bytes = 256;  // disk: bytes appended per request
  LogMode log = LogMode::kSync;
  bool bounded = false;                          // leak, paging: the fix
  std::int64_t leak_bytes = 64 * 1024;           // leak: retained per request
  std::int64_t leak_cap_bytes = 1LL << 30;       // leak: safety valve for shared machines
  std::int64_t leak_lru_entries = 64;            // leak --bounded: LRU capacity
  std::int64_t memory_limit_bytes = 64LL << 20;  // paging: cgroup memory limit
  std::int64_t working_set_bytes = 0;            // paging: file size; 0: 4x memory limit
  int page_reads = 8;                            // paging: random 4 KiB reads per request
  std::string upstream;                          // upstream: HOST:PORT of the upstream role
  int upstream_calls = 3;
  bool upstream_batch = false;
  bool upstream_concurrent = false;
  int upstream_pool = 4;  // proxy: kept-alive connections to the upstream
  std::int64_t upstream_timeout_ms = 5000;
  std::int64_t delay_ms = 10;               // --role upstream: answer delay
  std::int64_t response_bytes = 1LL << 20;  // bandwidth: body size
  std::int64_t accept_delay_ms = 0;         // backlog: sleep between accept() calls
  bool close_on_eof = false;                // conn-leak: the fix (close what clients closed)
  bool keep_alive = false;                  // conn-storm: the fix (reuse upstream connections)

  std::string db;             // db-*: a libpq connection string (lab/services.h)
  bool db_index = false;      // db-missing-index: the fix
  int db_work_rows = 20'000;  // db-hot-row: rows summed inside the transaction, holding the row

  // Filled by parse_options from the cache server flag.
  std::string cache_host;
  std::uint16_t cache_port = 0;
  // Filled by parse_options from the upstream flag.
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
};

struct ParsedOptions {
  Options options;
  std::optional<std::string> help_text;  // set when --help was asked: print it and exit 0
};

// Parses argv. Errors carry message and hint; the caller exits with code 2.
util::Result<ParsedOptions> parse_options(int argc, char** argv);

}  // namespace chokepoint::lab
