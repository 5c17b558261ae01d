#include "store/thread_pack.h"

#include <algorithm>
#include <array>
#include <tuple>

namespace chokepoint::store {
namespace {

// Bits 3 and 4 (schema 4): utime and stime split the run time exactly (utime + stime == run_ns,
// modular, as the sampler's split of schedstat's run time gives them), so only one follows: bit 3
// utime (stime is run_ns - utime), bit 4 stime (utime is run_ns - stime).
constexpr unsigned kHasStat = 1, kHasPrevPoll = 2, kHasWait = 4, kUtimeOfRun = 8, kStimeOfRun = 16,
                   kKnownFlags = 31;

void put(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ (v < 0 ? ~std::uint64_t{0} : 0);
}

std::int64_t unzigzag(std::uint64_t z) {
  return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
}

void put_signed(std::string& out, std::int64_t v) {
  put(out, zigzag(v));
}

// Reads varints from a blob; once one is malformed every later read fails too.
class Cursor {
 public:
  explicit Cursor(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ >= b_.size(); }
  std::uint64_t u() {
    std::uint64_t v = 0;
    for (int shift = 0; ok_; shift += 7) {
      // The tenth byte may only carry the top bit of 64.
      if (pos_ >= b_.size() || shift > 63) break;
      const auto byte = static_cast<unsigned char>(b_[pos_++]);
      if (shift == 63 && (byte & 0x7e) != 0) break;
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  std::int64_t s() { return unzigzag(u()); }

 private:
  std::string_view b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

void ThreadPacker::add(const PackedThread& t) {
  put_signed(out_, static_cast<std::int64_t>(static_cast<std::uint64_t>(t.thread) -
                                             static_cast<std::uint64_t>(prev_thread_)));
  prev_thread_ = t.thread;
  const bool wait = t.has_stat && t.wait.has_value();
  unsigned split = 0;  // which of utime and stime is written when they split run_ns
  if (t.has_stat && t.utime_ns + t.stime_ns == t.run_ns) {
    split = zigzag(static_cast<std::int64_t>(t.utime_ns)) <=
                    zigzag(static_cast<std::int64_t>(t.stime_ns))
                ? kUtimeOfRun
                : kStimeOfRun;
  }
  put(out_, (t.has_stat ? kHasStat : 0) | (t.prev_poll_ago_ns ? kHasPrevPoll : 0) |
                (wait ? kHasWait : 0) | split);
  if (t.prev_poll_ago_ns) put_signed(out_, *t.prev_poll_ago_ns);
  // Deltas are zigzagged as signed: a counter that went back (a reused tid) stays short.
  put_signed(out_, static_cast<std::int64_t>(t.run_ns));
  put_signed(out_, static_cast<std::int64_t>(t.run_delay_ns));
  if (t.has_stat) {
    if (split != kStimeOfRun) put_signed(out_, static_cast<std::int64_t>(t.utime_ns));
    if (split != kUtimeOfRun) put_signed(out_, static_cast<std::int64_t>(t.stime_ns));
    for (std::uint64_t v : {t.majflt, t.blkio_ns}) put_signed(out_, static_cast<std::int64_t>(v));
  }
  if (wait) {
    const WaitRow& w = *t.wait;
    put_signed(out_, w.state);
    put_signed(out_, w.site);
    if (w.site == kSiteInSyscall) {
      put_signed(out_, w.syscall_nr);
      for (std::uint64_t a : w.args) put(out_, a);
    }
    put_signed(out_, w.fd_role);
    put_signed(out_, w.fd_detail);
    put_signed(out_, w.net_wait);
    put_signed(out_, w.futex_caller);
  }
  ++count_;
}

void ThreadPacker::clear() {
  out_.clear();
  prev_thread_ = 0;
  count_ = 0;
}

std::optional<std::vector<PackedThread>> unpack_threads(std::string_view blob) {
  std::vector<PackedThread> rows;
  rows.reserve(blob.size() / 12);  // a guess: a busy thread's row takes 12 to 18 bytes
  Cursor c(blob);
  std::int64_t prev_thread = 0;
  while (c.ok() && !c.done()) {
    PackedThread t;
    t.thread = static_cast<std::int64_t>(static_cast<std::uint64_t>(prev_thread) +
                                         static_cast<std::uint64_t>(c.s()));
    prev_thread = t.thread;
    const std::uint64_t flags = c.u();
    if ((flags & ~std::uint64_t{kKnownFlags}) != 0) return std::nullopt;
    t.has_stat = (flags & kHasStat) != 0;
    const std::uint64_t split = flags & (kUtimeOfRun | kStimeOfRun);
    if ((flags & kHasWait) != 0 && !t.has_stat) return std::nullopt;
    if (split != 0 && (!t.has_stat || split == (kUtimeOfRun | kStimeOfRun))) return std::nullopt;
    if ((flags & kHasPrevPoll) != 0) t.prev_poll_ago_ns = c.s();
    t.run_ns = static_cast<std::uint64_t>(c.s());
    t.run_delay_ns = static_cast<std::uint64_t>(c.s());
    if (t.has_stat) {
      if (split == kStimeOfRun) {
        t.stime_ns = static_cast<std::uint64_t>(c.s());
        t.utime_ns = t.run_ns - t.stime_ns;  // modular
      } else {
        t.utime_ns = static_cast<std::uint64_t>(c.s());
        t.stime_ns =
            split == kUtimeOfRun ? t.run_ns - t.utime_ns : static_cast<std::uint64_t>(c.s());
      }
      t.majflt = static_cast<std::uint64_t>(c.s());
      t.blkio_ns = static_cast<std::uint64_t>(c.s());
    }
    if ((flags & kHasWait) != 0) {
      WaitRow w;
      w.state = c.s();
      w.site = c.s();
      if (w.site == kSiteInSyscall) {
        w.syscall_nr = c.s();
        for (auto& a : w.args) a = c.u();
      }
      w.fd_role = c.s();
      w.fd_detail = c.s();
      w.net_wait = c.s();
      w.futex_caller = c.s();
      t.wait = w;
    }
    if (!c.ok()) return std::nullopt;
    rows.push_back(t);
  }
  if (!c.ok()) return std::nullopt;
  return rows;
}

std::string pack_exact_waits(const std::vector<model::ExactWait>& waits) {
  std::string out;
  out.reserve(waits.size() * 14);
  std::int64_t pid = 0, tid = 0;
  for (const auto& w : waits) {
    put_signed(out, std::int64_t{w.pid} - pid);
    put_signed(out, std::int64_t{w.tid} - tid);
    pid = w.pid;
    tid = w.tid;
    put(out, static_cast<std::uint64_t>(w.kind));
    put_signed(out, w.syscall_nr);
    put(out, w.object);
    put(out, w.ns);
    put(out, w.count);
    put(out, w.start_time_ticks);
  }
  return out;
}

std::optional<std::vector<model::ExactWait>> unpack_exact_waits(std::string_view blob) {
  std::vector<model::ExactWait> waits;
  Cursor c(blob);
  std::int64_t pid = 0, tid = 0;
  while (c.ok() && !c.done()) {
    // Wrapping sums: a hostile difference cannot overflow, and the result is clamped.
    pid = static_cast<std::int64_t>(static_cast<std::uint64_t>(pid) +
                                    static_cast<std::uint64_t>(c.s()));
    tid = static_cast<std::int64_t>(static_cast<std::uint64_t>(tid) +
                                    static_cast<std::uint64_t>(c.s()));
    model::ExactWait w;
    w.pid = static_cast<int>(std::clamp<std::int64_t>(pid, 0, 1 << 30));
    w.tid = static_cast<int>(std::clamp<std::int64_t>(tid, 0, 1 << 30));
    w.kind = static_cast<model::ExactKind>(
        std::min<std::uint64_t>(c.u(), static_cast<std::uint64_t>(model::kExactKindCount) - 1));
    w.syscall_nr = static_cast<long>(std::clamp<std::int64_t>(c.s(), -1, 1 << 16));
    w.object = c.u();
    w.ns = c.u();
    w.count = c.u();
    w.start_time_ticks = c.u();
    if (!c.ok()) return std::nullopt;
    waits.push_back(w);
  }
  if (!c.ok()) return std::nullopt;
  return waits;
}

namespace {

// A key's ids as they were last written: each new key's pids and tids are differences from them.
struct KeyIds {
  std::int64_t v[4] = {0, 0, 0, 0};
  void put_id(std::string& out, int i, std::int64_t id) {
    put_signed(out, id - v[i]);
    v[i] = id;
  }
  // Wrapping sums: a hostile difference cannot overflow, and the result is clamped.
  int read_id(Cursor& c, int i) {
    v[i] = static_cast<std::int64_t>(static_cast<std::uint64_t>(v[i]) +
                                     static_cast<std::uint64_t>(c.s()));
    return static_cast<int>(std::clamp<std::int64_t>(v[i], 0, 1 << 30));
  }
};

long read_syscall_nr(Cursor& c) {
  return static_cast<long>(std::clamp<std::int64_t>(c.s(), -1, 1 << 16));
}

template <typename Enum, std::size_t kCount>
Enum read_enum(Cursor& c) {
  return static_cast<Enum>(std::min<std::uint64_t>(c.u(), kCount - 1));
}

void put_key(std::string& out, const model::ExactWait& w, KeyIds& ids) {
  ids.put_id(out, 0, w.pid);
  ids.put_id(out, 1, w.tid);
  put(out, static_cast<std::uint64_t>(w.kind));
  put_signed(out, w.syscall_nr);
  put(out, w.object);
  put(out, w.start_time_ticks);
}

void read_key(Cursor& c, model::ExactWait& w, KeyIds& ids) {
  w.pid = ids.read_id(c, 0);
  w.tid = ids.read_id(c, 1);
  w.kind = read_enum<model::ExactKind, model::kExactKindCount>(c);
  w.syscall_nr = read_syscall_nr(c);
  w.object = c.u();
  w.start_time_ticks = c.u();
}

void put_key(std::string& out, const model::WakeEdge& e, KeyIds& ids) {
  ids.put_id(out, 0, e.waker_pid);
  ids.put_id(out, 1, e.waker_tid);
  put(out, static_cast<std::uint64_t>(e.waker_kind));
  ids.put_id(out, 2, e.wakee_pid);
  ids.put_id(out, 3, e.wakee_tid);
  put_signed(out, e.syscall_nr);
  put(out, e.object);
}

void read_key(Cursor& c, model::WakeEdge& e, KeyIds& ids) {
  e.waker_pid = ids.read_id(c, 0);
  e.waker_tid = ids.read_id(c, 1);
  e.waker_kind = read_enum<model::WakerKind, model::kWakerKindCount>(c);
  e.wakee_pid = ids.read_id(c, 2);
  e.wakee_tid = ids.read_id(c, 3);
  e.syscall_nr = read_syscall_nr(c);
  e.object = c.u();
}

auto sort_key(const model::ExactWait& w) {
  return std::tuple{w.pid,        w.tid,   w.start_time_ticks, static_cast<int>(w.kind),
                    w.syscall_nr, w.object};
}

auto sort_key(const model::WakeEdge& e) {
  return std::tuple{e.waker_pid, e.waker_tid, static_cast<int>(e.waker_kind),
                    e.wakee_pid, e.wakee_tid, e.syscall_nr,
                    e.object};
}

std::uint64_t bits(long v) {
  return static_cast<std::uint64_t>(v);
}

// The fields of a row's key as bits: DeltaPacker's entries are found by them.
std::array<std::uint64_t, 7> key_of(const model::ExactWait& w) {
  return {bits(w.pid),
          bits(w.tid),
          w.start_time_ticks,
          static_cast<std::uint64_t>(w.kind),
          bits(w.syscall_nr),
          w.object,
          0};
}

std::array<std::uint64_t, 7> key_of(const model::WakeEdge& e) {
  return {bits(e.waker_pid), bits(e.waker_tid), static_cast<std::uint64_t>(e.waker_kind),
          bits(e.wakee_pid), bits(e.wakee_tid), bits(e.syscall_nr),
          e.object};
}

// A slot of DeltaPacker's table: each field folded in with a multiply by an odd constant (2^64
// / golden ratio), then murmur3's finalizer, so that the low bits (the slot) depend on every field.
std::size_t slot_hash(const std::array<std::uint64_t, 7>& key) {
  std::uint64_t h = 0;
  for (std::uint64_t v : key) h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return static_cast<std::size_t>(h);
}

}  // namespace

template <typename Row>
typename DeltaPacker<Row>::Entry& DeltaPacker<Row>::entry(const Row& r) {
  if (2 * (entries_.size() + 1) > slots_.size()) {
    index(std::max<std::size_t>(64, 2 * slots_.size()));
  }
  const auto key = key_of(r);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = slot_hash(key) & mask;; i = (i + 1) & mask) {
    const std::uint32_t slot = slots_[i];
    if (slot == 0) {
      slots_[i] = static_cast<std::uint32_t>(entries_.size() + 1);
      return entries_.emplace_back(Entry{r, 0, 0});  // epoch 0: not met since any restart
    }
    Entry& e = entries_[slot - 1];
    if (key_of(e.row) == key) return e;
  }
}

template <typename Row>
void DeltaPacker<Row>::index(std::size_t capacity) {
  slots_.assign(capacity, 0);
  const std::size_t mask = capacity - 1;
  for (std::size_t n = 0; n < entries_.size(); ++n) {
    std::size_t i = slot_hash(key_of(entries_[n].row)) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = static_cast<std::uint32_t>(n + 1);
  }
}

template <typename Row>
void DeltaPacker<Row>::sort_for_packing(std::vector<Row>& rows) {
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return sort_key(a) < sort_key(b); });
}

template <typename Row>
const std::string& DeltaPacker<Row>::pack(const std::vector<Row>& rows, bool restart) {
  if (restart || must_restart_) {
    ++epoch_;  // every entry kept is now not met
    next_id_ = 0;
    restart = true;
    must_restart_ = false;
  }
  out_.clear();
  put(out_, restart ? 1 : 0);
  KeyIds new_ids;
  std::int64_t prev = -1;
  for (const auto& r : rows) {
    Entry& e = entry(r);
    if (e.epoch != epoch_) {
      e.epoch = epoch_;
      e.id = next_id_++;
      put(out_, 0);
      put_key(out_, r, new_ids);
      put(out_, r.ns);
      put(out_, r.count);
    } else {
      put(out_, 1 + zigzag(e.id - (prev + 1)));
      // Modular differences, zigzagged as signed, as the thread rows' counters.
      put_signed(out_, static_cast<std::int64_t>(r.ns - e.row.ns));
      put_signed(out_, static_cast<std::int64_t>(r.count - e.row.count));
    }
    e.row = r;
    prev = e.id;
  }
  return out_;
}

template <typename Row>
const std::string& DeltaPacker<Row>::pack_all(const std::vector<Row>& changed) {
  for (const auto& r : changed) entry(r).row = r;
  std::vector<Row> all;
  all.reserve(entries_.size());
  for (const auto& e : entries_) all.push_back(e.row);
  sort_for_packing(all);
  return pack(all, true);
}

template <typename Row>
void DeltaPacker<Row>::forget() {
  must_restart_ = true;
}

template <typename Row>
std::optional<std::vector<Row>> DeltaUnpacker<Row>::unpack(std::string_view blob) {
  Cursor c(blob);
  const std::uint64_t flags = c.u();
  if (!c.ok() || (flags & ~std::uint64_t{1}) != 0) return std::nullopt;
  if ((flags & 1) != 0) met_.clear();
  std::vector<Row> rows;
  rows.reserve(blob.size() / 4);  // a guess: an entry takes 3 bytes or more, most 5 or more
  KeyIds new_ids;
  std::int64_t prev = -1;
  while (c.ok() && !c.done()) {
    const std::uint64_t h = c.u();
    if (h == 0) {
      Row r;
      read_key(c, r, new_ids);
      r.ns = c.u();
      r.count = c.u();
      if (!c.ok()) return std::nullopt;
      prev = static_cast<std::int64_t>(met_.size());
      met_.push_back(r);
      rows.push_back(r);
      continue;
    }
    const std::int64_t step = unzigzag(h - 1);
    const auto ns = static_cast<std::uint64_t>(c.s());
    const auto count = static_cast<std::uint64_t>(c.s());
    // An id among the entries met (|step| < 2^63: no overflow).
    if (!c.ok() || step < -(prev + 1) ||
        step >= static_cast<std::int64_t>(met_.size()) - (prev + 1)) {
      return std::nullopt;
    }
    prev += 1 + step;
    Row& r = met_[static_cast<std::size_t>(prev)];
    r.ns += ns;  // modular
    r.count += count;
    rows.push_back(r);
  }
  if (!c.ok()) return std::nullopt;
  return rows;
}

template class DeltaPacker<model::ExactWait>;
template class DeltaPacker<model::WakeEdge>;
template class DeltaUnpacker<model::ExactWait>;
template class DeltaUnpacker<model::WakeEdge>;

}  // namespace chokepoint::store
