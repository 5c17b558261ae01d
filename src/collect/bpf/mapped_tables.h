#pragma once
// Cumulative tables a BPF program keeps in mmapable arrays (stateacct.bpf.c's sums and wait-for
// edges: a hash maps each key to an entry of {key, value} in the array), read in place by user
// space at every tick: no system call, no copy, and only the entries whose value grew are
// looked at further. Included only where BPF is built (needs libbpf).
//
// Thread-safety: one thread uses a table.

#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "util/result.h"

namespace chokepoint::collect::bpf {

// A BPF_F_MMAPABLE array map mapped into this process: its entries read, and zeroed, in place.
// Only the pages of the entries handed out so far are mapped (reach()): a mapping of the map is
// resident as a whole (the kernel maps every page of it at mmap), and the threads array alone is
// 10 MB at 32,768 slots, where a target's few threads use a page or two.
class MappedArray {
 public:
  MappedArray() = default;
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  ~MappedArray() {
    if (base_ != nullptr) munmap(base_, reserved_bytes_);
  }
  // Reserves the address range of the whole array (no page of it mapped or resident) and maps its
  // first pages, so a kernel that cannot map BPF arrays says so here.
  util::Result<void> map(bpf_map* m) {
    page_bytes_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    // The kernel rounds each entry up to 8 bytes; the shared structs are multiples of 8 already.
    value_bytes_ = bpf_map__value_size(m);
    max_entries_ = bpf_map__max_entries(m);
    reserved_bytes_ = round_to_page(max_entries_ * value_bytes_);
    fd_ = bpf_map__fd(m);
    const std::string name = bpf_map__name(m);
    void* p = mmap(nullptr, reserved_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
      return util::errno_error("cannot reserve address space for the BPF array " + name,
                               "the exact mode needs " + std::to_string(reserved_bytes_ >> 20) +
                                   " MiB of address space; check ulimit -v");
    }
    base_ = p;
    if (grow(1) == 0) {
      return util::errno_error("cannot map the BPF array " + name,
                               "the exact mode needs mmapable BPF arrays (Linux 5.5+)");
    }
    return {};
  }
  // Maps the pages that hold entries [0, count) if they are not yet (the kernel hands its entries
  // out from 0 up), and returns how many entries are mapped: `count` or more, fewer only when a
  // mapping failed (the entries beyond are then read once a later call maps them).
  std::size_t reach(std::size_t count) {
    return count <= mapped_entries() ? mapped_entries() : grow(count);
  }
  // Entry i. REQUIRES: i < reach()'s last answer.
  template <typename T>
  T* at(std::size_t i) const {
    static_assert(sizeof(T) % 8 == 0);
    return static_cast<T*>(base_) + i;
  }
  // Bytes of the map mapped (and resident) in this process.
  std::size_t mapped_bytes() const { return mapped_bytes_; }

 private:
  std::size_t round_to_page(std::size_t bytes) const {
    return (bytes + page_bytes_ - 1) / page_bytes_ * page_bytes_;
  }
  std::size_t mapped_entries() const {
    return value_bytes_ == 0 ? 0 : std::min(mapped_bytes_ / value_bytes_, max_entries_);
  }
  // Maps more of the array, over the reserved range: at least entries [0, count), and at least
  // twice what was mapped (16 pages to start), so a growing table maps a few times in all.
  std::size_t grow(std::size_t count) {
    const std::size_t need = round_to_page(std::min(count, max_entries_) * value_bytes_);
    const std::size_t want =
        std::min(reserved_bytes_, std::max({need, 2 * mapped_bytes_, 16 * page_bytes_}));
    if (want <= mapped_bytes_) return mapped_entries();
    void* at = static_cast<char*>(base_) + mapped_bytes_;
    void* p = mmap(at, want - mapped_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_,
                   static_cast<off_t>(mapped_bytes_));
    if (p != MAP_FAILED) mapped_bytes_ = want;
    return mapped_entries();
  }

  void* base_ = nullptr;
  std::size_t reserved_bytes_ = 0, mapped_bytes_ = 0, page_bytes_ = 4096, value_bytes_ = 0,
              max_entries_ = 0;
  int fd_ = -1;
};

inline std::uint64_t load_acquire(const __u64& v) {
  return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

// Hash of a tuple of integers (the user-space keys of sums and edges).
struct TupleHash {
  template <typename... T>
  std::size_t operator()(const std::tuple<T...>& t) const {
    std::size_t h = 0;
    std::apply(
        [&h](const auto&... v) {
          ((h = (h ^ std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(v))) *
                0x9e3779b97f4a7c15ULL),
           ...);
        },
        t);
    return h;
  }
};

// Cumulative sums (StateSum or WakeEdgeSum) under a user-space key, each the total of the kernel's
// entries mapped to it (a futex word waited on two ways is two kernel entries, one sum here) plus,
// for the state sums, a part recomputed at every read (the blocks in progress in the thread slots),
// and which sums changed since the last read.
template <typename Sum, typename Key>
class SumTable {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  // The sum of `key`, made from `proto` (with ns and count 0) when new.
  std::uint32_t find_or_add(const Key& key, const Sum& proto) {
    auto [it, added] = index_.try_emplace(key, kNone);
    if (!added) return it->second;
    std::uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<std::uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& e = entries_[id];
    e = Entry{};
    e.key = key;
    e.sum = proto;
    e.sum.ns = 0;
    e.sum.count = 0;
    e.live = true;
    it->second = id;
    return id;
  }
  Sum& at(std::uint32_t id) { return entries_[id].sum; }
  // A kernel entry of the sum grew by (ns, count).
  void add(std::uint32_t id, std::uint64_t ns, std::uint64_t count) {
    Entry& e = entries_[id];
    e.sum.ns += ns;
    e.sum.count += count;
    mark(id);
  }
  // The part recomputed at every read: cleared by begin_extras(), then added to.
  void begin_extras() {
    for (std::uint32_t id : extra_ids_) {
      Entry& e = entries_[id];
      e.extra_ns = e.extra_count = 0;
      e.has_extra = false;
      mark(id);
    }
    extra_ids_.clear();
  }
  void add_extra(std::uint32_t id, std::uint64_t ns, std::uint64_t count) {
    Entry& e = entries_[id];
    e.extra_ns += ns;
    e.extra_count += count;
    if (!e.has_extra) {
      e.has_extra = true;
      extra_ids_.push_back(id);
    }
    mark(id);
  }
  // Calls f(sum) with the total of every sum whose total changed since the last call that f
  // took (returned true for).
  template <typename F>
  void changed(F&& f) {
    for (std::uint32_t id : dirty_) {
      Entry& e = entries_[id];
      if (!e.dirty) continue;  // listed twice (its id was handed out again)
      e.dirty = false;
      if (!e.live) continue;
      Sum total = e.sum;
      total.ns += e.extra_ns;
      total.count += e.extra_count;
      if (total.ns == e.last_ns && total.count == e.last_count) continue;
      if (!f(total)) continue;
      e.last_ns = total.ns;
      e.last_count = total.count;
    }
    dirty_.clear();
  }
  // Drops every sum `gone` says yes to; their ids are handed out again.
  template <typename Pred>
  void erase_if(Pred&& gone) {
    for (std::uint32_t id = 0; id < entries_.size(); ++id) {
      Entry& e = entries_[id];
      if (!e.live || !gone(e.sum)) continue;
      e.live = false;
      index_.erase(e.key);
      free_.push_back(id);
    }
  }

 private:
  struct Entry {
    Key key{};
    Sum sum{};
    std::uint64_t extra_ns = 0, extra_count = 0;
    std::uint64_t last_ns = 0, last_count = 0;
    bool has_extra = false;
    bool dirty = false;
    bool live = false;
  };
  void mark(std::uint32_t id) {
    Entry& e = entries_[id];
    if (e.dirty) return;
    e.dirty = true;
    dirty_.push_back(id);
  }
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> free_, dirty_, extra_ids_;
  std::unordered_map<Key, std::uint32_t, TupleHash> index_;
};

// What user space knows of one kernel entry (sum_recs, edge_recs): the value last read, and the
// sum it went to (kNone: not known yet; kPending: its key is deleted, the entry is given back to
// the kernel at the next read).
struct RecordState {
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::uint32_t kPending = UINT32_MAX - 1;
  std::uint64_t ns = 0;
  std::uint64_t count = 0;
  std::uint32_t sum = kNone;
  std::uint16_t idle_reads = 0;  // reads in a row that found its value unchanged (saturates)
};

// A kernel table (sums or edges): the hash of keys, the mmapped entries and the free list, with
// user space's state of each entry.
template <typename Rec>
struct KernelTable {
  bpf_map* index = nullptr;
  bpf_map* free_list = nullptr;
  MappedArray recs;
  std::vector<RecordState> state;
  std::vector<std::uint32_t> pending;

  // Gives the entries whose keys forget() deleted (a read ago: no program is still adding to
  // them) back to the kernel, zeroed.
  void release_pending() {
    for (std::uint32_t i : pending) {
      Rec* r = recs.at<Rec>(i);
      std::memset(static_cast<void*>(r), 0, sizeof(Rec));
      state[i] = RecordState{};
      bpf_map__update_elem(free_list, nullptr, 0, &i, sizeof(i), BPF_ANY);
    }
    pending.clear();
  }
  // Entries in use (read with a value, their key not deleted) as the last scan() left them, less
  // those forget() and forget_idle() gave up since.
  std::size_t in_use = 0;

  // Calls f(i, key, d_ns, d_count, state) for each of the first n entries whose value grew, and
  // counts the entries in use. `n` never shrinks (the kernel's count of entries handed out), so
  // every entry of `state` is among the first n.
  template <typename F>
  void scan(std::size_t n, F&& f) {
    n = std::min(n, recs.reach(n));
    if (state.size() < n) state.resize(n);
    in_use = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const Rec* r = recs.at<Rec>(i);
      const std::uint64_t ns = load_acquire(r->value.ns), count = load_acquire(r->value.count);
      RecordState& st = state[i];
      if (st.sum == RecordState::kPending) continue;
      if (ns == st.ns && count == st.count) {
        if (st.idle_reads < UINT16_MAX) ++st.idle_reads;
        in_use += st.sum != RecordState::kNone ? 1 : 0;
        continue;
      }
      // The key was written before the value grew from 0 (stateacct.bpf.c's new_entry).
      f(r->key, ns - st.ns, count - st.count, st);
      st.ns = ns;
      st.count = count;
      st.idle_reads = 0;
      in_use += st.sum != RecordState::kNone ? 1 : 0;
    }
  }
  // When more than `keep_below` entries are in use, deletes the keys of those whose value did not
  // change in the last `min_idle_reads` reads (forget's way: given back at the next read). The
  // kernel's table is only where new wakeups and blocks are counted until the next read; every
  // total lives on in user space's SumTable, and a key met again takes a new entry whose growth
  // is added to the same sum. So a table of keys that come and go (threads waiting on ever new
  // futex words, a pool's many wakers) does not fill and drop events while its live keys fit.
  // Returns how many entries were given up. REQUIRES: scan() ran since the last
  // release_pending() (`in_use` is its count).
  std::size_t forget_idle(std::uint16_t min_idle_reads, std::size_t keep_below) {
    if (in_use <= keep_below) return 0;
    std::size_t given = 0;
    for (std::size_t i = 0; i < state.size(); ++i) {
      RecordState& st = state[i];
      if (st.sum >= RecordState::kPending || st.idle_reads < min_idle_reads) continue;
      retire(i);
      ++given;
    }
    in_use -= given;
    return given;
  }
  // Deletes the keys of the entries in use that `gone` says yes to; they are given back at the
  // next read. Only entries read with a value count: one the kernel gave back itself (it lost a
  // race to add the same key) is in its free list already, and its key belongs to another entry.
  template <typename Pred>
  void forget(Pred&& gone) {
    for (std::size_t i = 0; i < state.size(); ++i) {
      if (state[i].sum >= RecordState::kPending) continue;
      if (!gone(recs.at<Rec>(i)->key)) continue;
      retire(i);
      --in_use;
    }
  }

 private:
  // Deletes entry i's key from the index and poisons the key in the entry (all bits set: no
  // thread, call or object has that key), so a program that kept the entry's index (the wakee's
  // last edge, stateacct.bpf.c's edge_slot) finds another key there and looks its own up again,
  // rather than adding to an entry user space no longer reads. Given back at the next read.
  void retire(std::size_t i) {
    Rec* r = recs.at<Rec>(i);
    const auto key = r->key;
    bpf_map__delete_elem(index, &key, sizeof(key), 0);
    std::memset(static_cast<void*>(&r->key), 0xff, sizeof(r->key));
    state[i].sum = RecordState::kPending;
    pending.push_back(static_cast<std::uint32_t>(i));
  }
};

}  // namespace chokepoint::collect::bpf
