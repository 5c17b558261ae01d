// Over 600 lines: one Handler per scenario (cpu, lock, disk, log, leak, paging, upstream,
// bandwidth...), each 30 to 100 lines, sharing the helpers at the top (the store, the answer cache,
// appending to a file) and make_handler, which picks one; a scenario is read here start to end.
#include "lab/scenarios.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lab/connections.h"
#include "lab/cpu_work.h"
#include "lab/group_commit.h"
#include "lab/http.h"
#include "lab/http_client.h"
#include "lab/pipeline.h"
#include "lab/services.h"
#include "lab/worker_pool.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::lab {
namespace {

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A memo table for --cache on: key -> body. Bounded so random keys cannot grow it forever.
class Memo {
 public:
  std::optional<std::string> find(const std::string& key) {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& key, const std::string& body) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (map_.size() >= kMaxEntries) map_.clear();
    map_.emplace(key, body);
  }

 private:
  static constexpr std::size_t kMaxEntries = 100'000;
  std::shared_mutex mu_;
  std::unordered_map<std::string, std::string> map_;
};

// Where cpu and upstream keep answers (--cache): nowhere, the in-process Memo, or a cache server
// (lab/services.h), under "chokepoint-lab:<scenario>:<key hash>" (memcached keys are at most 250
// bytes with no spaces; a query string may be longer).
class AnswerCache {
 public:
  AnswerCache(CacheMode mode, std::unique_ptr<RemoteCache> remote, const std::string& scenario)
      : mode_(mode), remote_(std::move(remote)), prefix_("chokepoint-lab:" + scenario + ":") {}
  bool enabled() const { return mode_ != CacheMode::kOff; }
  // A cache server is a network round trip: the epoll model hands the request to its pool.
  bool remote() const { return remote_ != nullptr; }
  std::optional<std::string> find(const std::string& key) {
    if (remote_) return remote_->get(server_key(key));
    if (mode_ == CacheMode::kOn) return memo_.find(key);
    return std::nullopt;
  }
  void put(const std::string& key, const std::string& body) {
    if (remote_) {
      remote_->put(server_key(key), body);
    } else if (mode_ == CacheMode::kOn) {
      memo_.put(key, body);
    }
  }
  // Read-through: the kept answer for `key`, else compute()'s, kept when it is a 200.
  template <typename Compute>
  Response through(const std::string& key, Compute&& compute) {
    if (auto hit = find(key)) {
      Response r;
      r.body = std::move(*hit);
      return r;
    }
    Response r = std::forward<Compute>(compute)();
    if (r.status == 200) put(key, r.body);
    return r;
  }

 private:
  std::string server_key(const std::string& key) const { return prefix_ + hex64(key_hash(key)); }
  CacheMode mode_;
  std::unique_ptr<RemoteCache> remote_;
  std::string prefix_;
  Memo memo_;
};

util::Result<util::ScopedFd> open_append(const std::string& path, int extra_flags = 0) {
  util::ScopedFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | extra_flags, 0644));
  if (!fd.valid()) {
    return util::errno_error("cannot open " + path, "check that --data-dir is writable");
  }
  return fd;
}

// write(2) until done; a short write to a regular file only happens on ENOSPC-like conditions.
bool write_fully(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

Response error_response(int status, std::string message) {
  Response r;
  r.status = status;
  r.body = std::move(message) + "\n";
  return r;
}

// ---------------------------------------------------------------------------------------------
class OkHandler : public Handler {
 public:
  Response handle(std::string_view) override {
    Response r;
    r.body = kOkBody;
    return r;
  }
};

// ---------------------------------------------------------------------------------------------
// cpu and serial: the same calibrated work; serial runs it on a small executor (see server.cpp).
class CpuHandler : public Handler {
 public:
  CpuHandler(const Options& o, std::string prefix, std::unique_ptr<RemoteCache> remote)
      : work_(CpuWork::calibrate(o.work_us)),
        cache_(o.cache, std::move(remote), prefix),
        prefix_(std::move(prefix)),
        executor_threads_(o.scenario == Scenario::kSerial ? std::optional<int>(o.serial_workers)
                                                          : std::nullopt) {}

  Response handle(std::string_view query) override {
    std::string key(query);
    return cache_.through(key, [&] {
      CpuResult c = run_cpu_work(work_, key_hash(key));
      Response r;
      r.body =
          prefix_ + " key=" + key + " hash=" + hex64(c.hash) + " sum=" + hex64(c.checksum) + "\n";
      return r;
    });
  }
  bool blocking() const override { return executor_threads_.has_value() || cache_.remote(); }
  std::optional<int> executor_threads() const override { return executor_threads_; }

 private:
  CpuWork work_;
  AnswerCache cache_;
  std::string prefix_;
  std::optional<int> executor_threads_;
};

// ---------------------------------------------------------------------------------------------
// lock: a store whose update holds a mutex across CPU work.
class LabStore {
 public:
  LabStore(const Options& o)
      : work_(CpuWork::calibrate(o.work_us)),
        rwlock_(o.lock_type == LockType::kRwlock),
        shards_(o.lock_mode == LockMode::kSharded ? static_cast<std::size_t>(o.lock_shards) : 1) {}

  // Updates `key`'s entry; returns its new count and the shard it lives in. The CPU work runs
  // inside the critical section on purpose: with one shard, every worker queues on one lock.
  // With --lock-type rwlock the shard's lock is a writer-preferring pthread_rwlock_t: the entry
  // is first looked up under the read side (a reader, which queues behind writers), then updated
  // under the write side (a writer). Writer preference hands the lock from writer to writer; the
  // default (reader preference, as std::shared_mutex gets it) wakes every queued reader at each
  // write unlock, and that herd of wake-ups turns a lock bottleneck into run-queue time.
  __attribute__((noinline)) std::pair<std::uint64_t, std::size_t> update(const std::string& key) {
    std::uint64_t h = key_hash(key);
    std::size_t index = h % shards_.size();
    Shard& shard = shards_[index];
    if (rwlock_) {
      std::uint64_t seen = 0;
      pthread_rwlock_rdlock(&shard.rw);
      auto it = shard.entries.find(key);
      if (it != shard.entries.end()) seen = it->second.count;
      pthread_rwlock_unlock(&shard.rw);
      pthread_rwlock_wrlock(&shard.rw);
      CpuResult c = run_cpu_work(work_, h ^ seen);
      auto count = apply(shard, key, c);
      pthread_rwlock_unlock(&shard.rw);
      return {count, index};
    }
    std::lock_guard<std::mutex> lock(shard.mu);
    CpuResult c = run_cpu_work(work_, h);
    return {apply(shard, key, c), index};
  }

 private:
  struct Entry {
    std::uint64_t count = 0;
    std::uint64_t last_hash = 0;
  };
  struct Shard {
    Shard() {
      pthread_rwlockattr_t attr;
      pthread_rwlockattr_init(&attr);
      pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
      pthread_rwlock_init(&rw, &attr);
      pthread_rwlockattr_destroy(&attr);
    }
    ~Shard() { pthread_rwlock_destroy(&rw); }
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;
    std::mutex mu;                                   // --lock-type mutex
    pthread_rwlock_t rw{};                           // --lock-type rwlock
    std::unordered_map<std::string, Entry> entries;  // guarded by mu or rw
  };
  // Called with the shard's lock held exclusively.
  static std::uint64_t apply(Shard& shard, const std::string& key, const CpuResult& c) {
    Entry& e = shard.entries[key];
    e.count += 1;
    e.last_hash = c.hash ^ c.checksum;
    return e.count;
  }
  CpuWork work_;
  bool rwlock_;
  std::vector<Shard> shards_;
};

class LockHandler : public Handler {
 public:
  explicit LockHandler(const Options& o) : store_(o) {}
  Response handle(std::string_view query) override {
    std::string key(query);
    auto [count, shard] = store_.update(key);
    Response r;
    r.body = "lock key=" + key + " shard=" + std::to_string(shard) +
             " count=" + std::to_string(count) + "\n";
    return r;
  }

 private:
  LabStore store_;
};

// ---------------------------------------------------------------------------------------------
// disk: one durable record per request.

// Appends `record` and waits until it is on disk: the per-request commit.
__attribute__((noinline)) bool lab_commit_record(int fd, const std::string& record) {
  if (!write_fully(fd, record.data(), record.size())) return false;
  return ::fdatasync(fd) == 0;
}

// Writes a whole group of records and makes them durable with one fdatasync.
__attribute__((noinline)) bool lab_commit_batch(int fd, const std::string& records) {
  if (!write_fully(fd, records.data(), records.size())) return false;
  return ::fdatasync(fd) == 0;
}

// Appends without waiting for the disk; the background flusher makes it durable later.
__attribute__((noinline)) bool lab_commit_record_async(int fd, const std::string& record) {
  return write_fully(fd, record.data(), record.size());
}

// fsync: one write(2) to a file opened O_DSYNC: the write returns once the data (and the
// metadata needed to read it back) is on stable storage, so the sync happens inside write(2),
// where the kernel spends part of it on the CPU (ext4's journal work) and the rest blocked.
// One write(2) per record: a short write would be a partial commit, so it is an error (and the
// body differs from lab_commit_record_async's, so the linker cannot fold the two and the stacks
// name this one).
__attribute__((noinline)) bool lab_write_dsync(int fd, const std::string& record) {
  ssize_t n = 0;
  do {
    n = ::write(fd, record.data(), record.size());
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(record.size());
}

// disk, and fsync with an O_DSYNC file (`dsync`): per-request commits, group commit, or async.
class DiskHandler : public Handler {
 public:
  DiskHandler(const Options& o, util::ScopedFd fd, bool dsync)
      : mode_(o.commit),
        record_bytes_(static_cast<std::size_t>(o.record_bytes)),
        fd_(std::move(fd)),
        dsync_(dsync),
        name_(scenario_name(o.scenario)) {
    if (mode_ == CommitMode::kBatch) {
      group_ = std::make_unique<GroupCommit>("lab-committer",
                                             [this](const std::vector<std::string>& records) {
                                               batch_.clear();
                                               for (const std::string& r : records) batch_ += r;
                                               return dsync_ ? lab_write_dsync(fd_.get(), batch_)
                                                             : lab_commit_batch(fd_.get(), batch_);
                                             });
    } else if (mode_ == CommitMode::kAsync) {
      flusher_ = std::thread([this] { flusher_loop(); });
    }
  }
  ~DiskHandler() override {
    group_.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    ::fdatasync(fd_.get());
  }

  Response handle(std::string_view query) override {
    std::uint64_t seq = next_seq_.fetch_add(1) + 1;
    std::string record = make_record(seq, query);
    bool ok = false;
    switch (mode_) {
      case CommitMode::kPerRequest:
        ok = dsync_ ? lab_write_dsync(fd_.get(), record) : lab_commit_record(fd_.get(), record);
        break;
      case CommitMode::kBatch:
        ok = group_->submit(std::move(record));
        break;
      case CommitMode::kAsync:
        ok = lab_commit_record_async(fd_.get(), record);
        break;
    }
    if (!ok) return error_response(500, "disk commit failed: " + std::string(std::strerror(errno)));
    Response r;
    r.body = std::string(name_) + " committed seq=" + std::to_string(seq) + "\n";
    return r;
  }
  bool blocking() const override { return mode_ != CommitMode::kAsync; }

 private:
  std::string make_record(std::uint64_t seq, std::string_view key) const {
    std::string rec(record_bytes_, '.');
    char head[128];
    int n = std::snprintf(head, sizeof(head), "seq=%012llu t=%lld key=%.48s ",
                          static_cast<unsigned long long>(seq),
                          static_cast<long long>(util::realtime_ns()), std::string(key).c_str());
    rec.replace(0, std::min<std::size_t>(static_cast<std::size_t>(n), record_bytes_ - 1), head,
                std::min<std::size_t>(static_cast<std::size_t>(n), record_bytes_ - 1));
    rec.back() = '\n';
    return rec;
  }

  // --commit async: durability every ~100 ms, off the request path.
  void flusher_loop() {
    set_thread_name("lab-flusher");
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      stop_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
      lock.unlock();
      ::fdatasync(fd_.get());
      lock.lock();
    }
  }

  CommitMode mode_;
  std::size_t record_bytes_;
  util::ScopedFd fd_;
  bool dsync_;        // fd_ is O_DSYNC: a write is the commit (fsync scenario)
  const char* name_;  // "disk" or "fsync", for the answer
  std::atomic<std::uint64_t> next_seq_{0};
  std::string batch_;                   // --commit batch: the group's bytes (committer thread only)
  std::unique_ptr<GroupCommit> group_;  // --commit batch
  std::mutex mu_;                       // --commit async: the flusher's stop
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread flusher_;    // --commit async
};

// ---------------------------------------------------------------------------------------------
// log: a trivial request whose access-log line is written and fsynced under a log mutex.

std::string format_log_line(std::string_view query) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char when[40];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &utc);
  char line[512];
  int n = std::snprintf(line, sizeof(line), "%s.%06ldZ tid=%d GET /?%.200s 200 3\n", when,
                        ts.tv_nsec / 1000, static_cast<int>(gettid()), std::string(query).c_str());
  return std::string(line, static_cast<std::size_t>(std::min<int>(n, sizeof(line) - 1)));
}

class LogHandler : public Handler {
 public:
  LogHandler(const Options& o, util::ScopedFd fd) : mode_(o.log), fd_(std::move(fd)) {
    if (mode_ == LogMode::kAsync) writer_ = std::thread([this] { writer_loop(); });
  }
  ~LogHandler() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  Response handle(std::string_view query) override {
    if (mode_ == LogMode::kSync) {
      lab_log_request(format_log_line(query));
    } else if (mode_ == LogMode::kAsync) {
      std::string line = format_log_line(query);
      std::lock_guard<std::mutex> lock(mu_);
      queue_ += line;
    }
    Response r;
    r.body = "log ok\n";
    return r;
  }
  bool blocking() const override { return mode_ == LogMode::kSync; }

  // The synchronous logger: write and fsync under the log mutex, as naive loggers do.
  __attribute__((noinline)) void lab_log_request(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    write_fully(fd_.get(), line.data(), line.size());
    ::fsync(fd_.get());
  }

 private:
  // --log async: lines queue in memory; this thread writes them and fsyncs every ~100 ms.
  void writer_loop() {
    set_thread_name("lab-logwriter");
    std::string batch;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
      batch.swap(queue_);
      queue_.clear();
      bool stop = stopping_;
      lock.unlock();
      if (!batch.empty()) {
        write_fully(fd_.get(), batch.data(), batch.size());
        ::fsync(fd_.get());
      }
      lock.lock();
      if (stop) return;
    }
  }

  LogMode mode_;
  util::ScopedFd fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string queue_;      // guarded by mu_ (async)
  bool stopping_ = false;  // guarded by mu_
  std::thread writer_;
};

// ---------------------------------------------------------------------------------------------
// leak: every request retains a touched block; --bounded keeps only an LRU of them.
class LeakHandler : public Handler {
 public:
  explicit LeakHandler(const Options& o)
      : bounded_(o.bounded),
        block_bytes_(static_cast<std::size_t>(o.leak_bytes)),
        cap_bytes_(static_cast<std::size_t>(o.leak_cap_bytes)),
        lru_entries_(static_cast<std::size_t>(o.leak_lru_entries)) {}

  Response handle(std::string_view query) override {
    std::unique_ptr<char[]> block = lab_leak_allocate(block_bytes_);
    std::string key(query);
    std::lock_guard<std::mutex> lock(mu_);
    if (bounded_) {
      auto it = index_.find(key);
      if (it != index_.end()) {
        retained_bytes_ -= block_bytes_;
        lru_.erase(it->second);
        index_.erase(it);
      }
      lru_.push_front({key, std::move(block)});
      index_[key] = lru_.begin();
      retained_bytes_ += block_bytes_;
      while (lru_.size() > lru_entries_) {
        index_.erase(lru_.back().key);
        lru_.pop_back();
        retained_bytes_ -= block_bytes_;
      }
    } else if (retained_bytes_ + block_bytes_ <= cap_bytes_) {
      leaked_.push_back(std::move(block));
      retained_bytes_ += block_bytes_;
    } else if (!warned_) {
      warned_ = true;
      std::fprintf(stderr,
                   "chokepoint-lab: leak reached --leak-cap-bytes=%zu; no longer retaining\n",
                   cap_bytes_);
    }
    Response r;
    r.body = "leak retained_bytes=" + std::to_string(retained_bytes_) + "\n";
    return r;
  }

  // Allocates and touches every page, so the block counts in RSS at once.
  __attribute__((noinline)) static std::unique_ptr<char[]> lab_leak_allocate(std::size_t bytes) {
    std::unique_ptr<char[]> block(new char[bytes]);
    for (std::size_t i = 0; i < bytes; i += 64) block[i] = static_cast<char>(i);
    return block;
  }

 private:
  struct Entry {
    std::string key;
    std::unique_ptr<char[]> block;
  };
  bool bounded_;
  std::size_t block_bytes_;
  std::size_t cap_bytes_;
  std::size_t lru_entries_;
  std::mutex mu_;
  std::vector<std::unique_ptr<char[]>> leaked_;                        // guarded by mu_
  std::list<Entry> lru_;                                               // guarded by mu_
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // guarded by mu_
  std::size_t retained_bytes_ = 0;                                     // guarded by mu_
  bool warned_ = false;                                                // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// paging: random 4 KiB reads through mmap over a file larger than the cgroup memory limit.
constexpr std::size_t kPageBytes = 4096;

// Writes `bytes` of real (non-zero, non-sparse) data, dropping each written chunk from the page
// cache at once (sync_file_range(2) then POSIX_FADV_DONTNEED) so creating a file 4x the memory
// limit never pushes the cgroup into reclaim and the first reads really go to the disk.
util::Result<void> write_paging_file(const std::string& path, std::size_t bytes) {
  util::ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return util::errno_error("cannot create " + path, "check --data-dir");
  struct stat st {};
  if (fstat(fd.get(), &st) == 0 && static_cast<std::size_t>(st.st_size) == bytes &&
      st.st_blocks * 512 >= static_cast<blkcnt_t>(bytes)) {
    posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    return {};  // reuse a complete file from an earlier run in the same --data-dir
  }
  if (ftruncate(fd.get(), 0) != 0) return util::errno_error("ftruncate " + path);
  if (int err = posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes)); err != 0) {
    return util::errno_error("posix_fallocate " + path, err,
                             "free disk space or lower "
                             "--working-set-bytes");
  }
  constexpr std::size_t kChunk = 4 << 20;
  std::vector<std::uint64_t> buf(kChunk / sizeof(std::uint64_t));
  std::uint64_t x = 0x2545F4914F6CDD1DULL;
  for (std::size_t off = 0; off < bytes; off += kChunk) {
    for (auto& w : buf) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    std::size_t n = std::min(kChunk, bytes - off);
    ssize_t w = pwrite(fd.get(), buf.data(), n, static_cast<off_t>(off));
    if (w != static_cast<ssize_t>(n)) return util::errno_error("write " + path);
    sync_file_range(
        fd.get(), static_cast<off_t>(off), static_cast<off_t>(n),
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(fd.get(), static_cast<off_t>(off), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
  }
  fdatasync(fd.get());
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  return {};
}

// Touches `reads` random pages of the mapping within `span_bytes`; each miss is a major fault.
__attribute__((noinline)) std::uint64_t lab_paging_read(const unsigned char* base,
                                                        std::size_t span_bytes, int reads,
                                                        std::uint64_t& rng) {
  std::size_t pages = span_bytes / kPageBytes;
  std::uint64_t sum = 0;
  for (int i = 0; i < reads; ++i) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    std::size_t page = static_cast<std::size_t>(rng % pages);
    std::uint64_t v;
    std::memcpy(&v, base + page * kPageBytes + (rng >> 52) % (kPageBytes - 8), sizeof(v));
    sum += v;
  }
  return sum;
}

class PagingHandler : public Handler {
 public:
  static util::Result<std::unique_ptr<Handler>> create(const Options& o, const std::string& dir) {
    auto file_bytes = static_cast<std::size_t>(o.working_set_bytes) / kPageBytes * kPageBytes;
    std::string path = dir + "/paging.dat";
    auto written = write_paging_file(path, file_bytes);
    if (!written) return written.error();
    util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return util::errno_error("open " + path);
    void* base = mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) return util::errno_error("mmap " + path);
    // No read-around: each fault reads its own page, so majflt counts the random reads.
    madvise(base, file_bytes, MADV_RANDOM);
    std::size_t span = file_bytes;
    if (o.bounded) {
      // A quarter of the memory limit: resident after the first touch, with room for the rest.
      span = std::min(file_bytes,
                      static_cast<std::size_t>(o.memory_limit_bytes) / 4 / kPageBytes * kPageBytes);
    }
    return std::unique_ptr<Handler>(
        new PagingHandler(static_cast<unsigned char*>(base), file_bytes, span, o.page_reads));
  }
  ~PagingHandler() override { munmap(base_, map_bytes_); }

  Response handle(std::string_view query) override {
    thread_local std::uint64_t rng = 0;
    if (rng == 0) rng = key_hash(std::to_string(gettid())) | 1;
    rng ^= key_hash(query.data(), query.size());
    if (rng == 0) rng = 1;
    std::uint64_t sum = lab_paging_read(base_, span_bytes_, reads_, rng);
    Response r;
    r.body = "paging reads=" + std::to_string(reads_) +
             " span_bytes=" + std::to_string(span_bytes_) + " sum=" + hex64(sum) + "\n";
    return r;
  }

 private:
  PagingHandler(unsigned char* base, std::size_t map_bytes, std::size_t span, int reads)
      : base_(base), map_bytes_(map_bytes), span_bytes_(span), reads_(reads) {}
  unsigned char* base_;
  std::size_t map_bytes_;
  std::size_t span_bytes_;
  int reads_;
};

// ---------------------------------------------------------------------------------------------
// upstream: K calls per request to a slow upstream.
struct UpstreamConfig {
  std::string host;
  std::uint16_t port = 0;
  int calls = 3;
  bool batch = false;
  bool concurrent = false;
  std::int64_t timeout_ms = 5000;
};

// Makes the request's upstream calls over this thread's kept-alive connections: K sequential
// calls by default, one batched call, or K calls in flight at once on K connections.
__attribute__((noinline)) util::Result<int> lab_call_upstream(const UpstreamConfig& cfg,
                                                              const std::string& key) {
  thread_local std::vector<std::unique_ptr<HttpClient>> clients;
  std::size_t needed = cfg.concurrent ? static_cast<std::size_t>(cfg.calls) : 1;
  while (clients.size() < needed)
    clients.push_back(std::make_unique<HttpClient>(cfg.host, cfg.port));
  int answers = 0;
  auto check = [&](const util::Result<HttpResponse>& r) -> std::optional<util::Error> {
    if (!r) return r.error();
    if (r->status != 200)
      return util::Error{"upstream answered " + std::to_string(r->status), "", 0};
    ++answers;
    return std::nullopt;
  };
  if (cfg.batch) {
    auto r = clients[0]->get("/?batch=" + std::to_string(cfg.calls) + "&k=" + key, cfg.timeout_ms);
    if (auto e = check(r)) return *e;
    return cfg.calls;
  }
  if (cfg.concurrent) {
    for (int i = 0; i < cfg.calls; ++i) {
      // A connection the upstream closed while idle fails here or at read: reconnect and resend.
      auto sent = clients[i]->send_get("/?k=" + key + "&i=" + std::to_string(i), cfg.timeout_ms);
      if (!sent) {
        clients[i]->close();
        sent = clients[i]->send_get("/?k=" + key + "&i=" + std::to_string(i), cfg.timeout_ms);
        if (!sent) return sent.error();
      }
    }
    std::optional<util::Error> first_error;
    for (int i = 0; i < cfg.calls; ++i) {
      auto r = clients[i]->read_response(cfg.timeout_ms);
      if (auto e = check(r); e && !first_error) first_error = e;
    }
    if (first_error) return *first_error;
    return answers;
  }
  for (int i = 0; i < cfg.calls; ++i) {
    auto r = clients[0]->get("/?k=" + key + "&i=" + std::to_string(i), cfg.timeout_ms);
    if (auto e = check(r)) return *e;
  }
  return answers;
}

class UpstreamHandler : public Handler {
 public:
  UpstreamHandler(const Options& o, std::unique_ptr<RemoteCache> remote)
      : cache_(o.cache, std::move(remote), "upstream") {
    cfg_.host = o.upstream_host;
    cfg_.port = o.upstream_port;
    cfg_.calls = o.upstream_calls;
    cfg_.batch = o.upstream_batch;
    cfg_.concurrent = o.upstream_concurrent;
    cfg_.timeout_ms = o.upstream_timeout_ms;
    mode_ = cfg_.batch ? "batch" : cfg_.concurrent ? "concurrent" : "sequential";
  }
  Response handle(std::string_view query) override {
    std::string key(query);
    return cache_.through(key, [&] {
      auto answers = lab_call_upstream(cfg_, key);
      if (!answers) return error_response(502, "upstream call failed: " + answers.error().message);
      Response r;
      r.body = "upstream mode=" + mode_ + " calls=" + std::to_string(cfg_.calls) +
               " answers=" + std::to_string(*answers) + "\n";
      return r;
    });
  }
  bool blocking() const override { return true; }

 private:
  UpstreamConfig cfg_;
  AnswerCache cache_;
  std::string mode_;
};

// The upstream role: answers after --delay-ms, once per request whatever ?batch=K says.
class UpstreamRoleHandler : public Handler {
 public:
  explicit UpstreamRoleHandler(const Options& o) : delay_ms_(o.delay_ms) {}
  Response handle(std::string_view query) override {
    std::string_view batch = query_param(query, "batch");
    int k = 1;
    if (!batch.empty()) std::from_chars(batch.data(), batch.data() + batch.size(), k);
    Response r;
    r.delay_ns = delay_ms_ * util::kNsPerMs;
    r.body =
        "upstream delay_ms=" + std::to_string(delay_ms_) + " batch=" + std::to_string(k) + "\n";
    return r;
  }

 private:
  std::int64_t delay_ms_;
};

// ---------------------------------------------------------------------------------------------
// bandwidth: a large precomputed body, so the link is the limit.
class BandwidthHandler : public Handler {
 public:
  explicit BandwidthHandler(const Options& o) {
    payload_.resize(static_cast<std::size_t>(o.response_bytes));
    for (std::size_t i = 0; i < payload_.size(); ++i) {
      payload_[i] = (i % 64 == 63) ? '\n' : static_cast<char>('a' + i % 26);
    }
  }
  Response handle(std::string_view) override {
    Response r;
    r.shared_body = &payload_;
    return r;
  }

 private:
  std::string payload_;
};

}  // namespace

util::Result<std::unique_ptr<Handler>> make_handler(const Options& o, const std::string& dir) {
  if (o.role == Role::kUpstream) return std::unique_ptr<Handler>(new UpstreamRoleHandler(o));
  std::unique_ptr<RemoteCache> remote;
  const bool uses_cache = o.scenario == Scenario::kCpu || o.scenario == Scenario::kSerial ||
                          o.scenario == Scenario::kUpstream;
  if (uses_cache && (o.cache == CacheMode::kRedis || o.cache == CacheMode::kMemcached)) {
    auto c = connect_cache(o);
    if (!c) return c.error();
    remote = std::move(*c);
  }
  switch (o.scenario) {
    case Scenario::kNone:
    case Scenario::kBacklog:
      return std::unique_ptr<Handler>(new OkHandler());
    case Scenario::kCpu:
      return std::unique_ptr<Handler>(new CpuHandler(o, "cpu", std::move(remote)));
    case Scenario::kSerial:
      return std::unique_ptr<Handler>(new CpuHandler(o, "serial", std::move(remote)));
    case Scenario::kLock:
      return std::unique_ptr<Handler>(new LockHandler(o));
    case Scenario::kDisk: {
      auto fd = open_append(dir + "/disk.dat");
      if (!fd) return fd.error();
      return std::unique_ptr<Handler>(new DiskHandler(o, std::move(*fd), false));
    }
    case Scenario::kFsync: {
      // --commit async is the fix: buffered writes, synced by the flusher, not by each request.
      const bool dsync = o.commit != CommitMode::kAsync;
      auto fd = open_append(dir + "/dsync.dat", dsync ? O_DSYNC : 0);
      if (!fd) return fd.error();
      return std::unique_ptr<Handler>(new DiskHandler(o, std::move(*fd), dsync));
    }
    case Scenario::kPipeline: {
      util::ScopedFd stage_file;
      if (o.stage_work == StageWork::kFsync) {
        auto fd = open_append(dir + "/stage.dat");
        if (!fd) return fd.error();
        stage_file = std::move(*fd);
      }
      return make_pipeline_handler(o, std::move(stage_file));
    }
    case Scenario::kProxy:
      return util::Error{"the proxy scenario has no handler: lab/proxy.h serves it", "", 0};
    case Scenario::kLog: {
      auto fd = open_append(dir + "/requests.log");
      if (!fd) return fd.error();
      return std::unique_ptr<Handler>(new LogHandler(o, std::move(*fd)));
    }
    case Scenario::kLeak:
      return std::unique_ptr<Handler>(new LeakHandler(o));
    case Scenario::kPaging:
      return PagingHandler::create(o, dir);
    case Scenario::kUpstream:
      return std::unique_ptr<Handler>(new UpstreamHandler(o, std::move(remote)));
    case Scenario::kBandwidth:
      return std::unique_ptr<Handler>(new BandwidthHandler(o));
    case Scenario::kDbHotRow:
    case Scenario::kDbMissingIndex:
    case Scenario::kDbCommit:
      return make_db_handler(o);
    case Scenario::kConnLeak:
    case Scenario::kConnStorm:
      return make_connection_handler(o);
  }
  return util::Error{"unknown scenario", "", 0};
}

}  // namespace chokepoint::lab
