#include "store/thread_pack.h"

#include <algorithm>
#include <iterator>

namespace chokepoint::store {
namespace {

constexpr unsigned kHasStat = 1, kHasPrevPoll = 2, kHasWait = 4, kKnownFlags = 7;

void put(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_signed(std::string& out, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put(out, (u << 1) ^ (v < 0 ? ~std::uint64_t{0} : 0));
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
  std::int64_t s() {
    const std::uint64_t z = u();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }

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
  put(out_, (t.has_stat ? kHasStat : 0) | (t.prev_poll_ago_ns ? kHasPrevPoll : 0) |
                (wait ? kHasWait : 0));
  if (t.prev_poll_ago_ns) put_signed(out_, *t.prev_poll_ago_ns);
  // Deltas are zigzagged as signed: a counter that went back (a reused tid) stays short.
  put_signed(out_, static_cast<std::int64_t>(t.run_ns));
  put_signed(out_, static_cast<std::int64_t>(t.run_delay_ns));
  if (t.has_stat) {
    for (std::uint64_t v : {t.utime_ns, t.stime_ns, t.majflt, t.blkio_ns}) {
      put_signed(out_, static_cast<std::int64_t>(v));
    }
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
    if ((flags & kHasWait) != 0 && !t.has_stat) return std::nullopt;
    if ((flags & kHasPrevPoll) != 0) t.prev_poll_ago_ns = c.s();
    t.run_ns = static_cast<std::uint64_t>(c.s());
    t.run_delay_ns = static_cast<std::uint64_t>(c.s());
    if (t.has_stat) {
      t.utime_ns = static_cast<std::uint64_t>(c.s());
      t.stime_ns = static_cast<std::uint64_t>(c.s());
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

std::string pack_wake_edges(const std::vector<model::WakeEdge>& edges) {
  std::string out;
  out.reserve(edges.size() * 16);
  std::int64_t prev[4] = {0, 0, 0, 0};  // waker pid, tid, wakee pid, tid
  for (const auto& e : edges) {
    const std::int64_t ids[4] = {e.waker_pid, e.waker_tid, e.wakee_pid, e.wakee_tid};
    put_signed(out, ids[0] - prev[0]);
    put_signed(out, ids[1] - prev[1]);
    put(out, static_cast<std::uint64_t>(e.waker_kind));
    put_signed(out, ids[2] - prev[2]);
    put_signed(out, ids[3] - prev[3]);
    std::copy(std::begin(ids), std::end(ids), std::begin(prev));
    put_signed(out, e.syscall_nr);
    put(out, e.object);
    put(out, e.ns);
    put(out, e.count);
  }
  return out;
}

std::optional<std::vector<model::WakeEdge>> unpack_wake_edges(std::string_view blob) {
  std::vector<model::WakeEdge> edges;
  Cursor c(blob);
  std::int64_t ids[4] = {0, 0, 0, 0};  // waker pid, tid, wakee pid, tid
  // Wrapping sums: a hostile difference cannot overflow, and the result is clamped.
  const auto next_id = [&c](std::int64_t& v) {
    v = static_cast<std::int64_t>(static_cast<std::uint64_t>(v) +
                                  static_cast<std::uint64_t>(c.s()));
    return static_cast<int>(std::clamp<std::int64_t>(v, 0, 1 << 30));
  };
  while (c.ok() && !c.done()) {
    model::WakeEdge e;
    e.waker_pid = next_id(ids[0]);
    e.waker_tid = next_id(ids[1]);
    e.waker_kind = static_cast<model::WakerKind>(
        std::min<std::uint64_t>(c.u(), static_cast<std::uint64_t>(model::kWakerKindCount) - 1));
    e.wakee_pid = next_id(ids[2]);
    e.wakee_tid = next_id(ids[3]);
    e.syscall_nr = static_cast<long>(std::clamp<std::int64_t>(c.s(), -1, 1 << 16));
    e.object = c.u();
    e.ns = c.u();
    e.count = c.u();
    if (!c.ok()) return std::nullopt;
    edges.push_back(e);
  }
  if (!c.ok()) return std::nullopt;
  return edges;
}

}  // namespace chokepoint::store
