// The generator's threads: the schedule (closed and open loop), the epoll loop and each
// connection's state machine, shared by both transports (http1.h, h2_session.h).
// Over 600 lines: one Worker class whose parts (dispatch, connect, write, read, deadlines, stop)
// share each thread's connections and schedule, plus the options check and the merge of the
// threads' results that run_load needs.
#include "loadgen/load.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "loadgen/h2_session.h"
#include "loadgen/http1.h"
#include "loadgen/response_parser.h"
#include "loadgen/trace_ids.h"
#include "util/clock.h"
#include "util/scoped_fd.h"

namespace chokepoint::loadgen {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kStatus4xx:
      return "4xx";
    case Outcome::kStatus5xx:
      return "5xx";
    case Outcome::kConnect:
      return "connect";
    case Outcome::kWrite:
      return "write";
    case Outcome::kRead:
      return "read";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kParse:
      return "parse";
  }
  return "?";
}

namespace {

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
// How often deadlines and connect back-offs are checked: the precision of --timeout.
constexpr std::int64_t kScanIntervalNs = 10 * util::kNsPerMs;
constexpr std::int64_t kMinBackoffNs = 1 * util::kNsPerMs;
constexpr std::int64_t kMaxBackoffNs = 100 * util::kNsPerMs;
constexpr std::size_t kReadBufferBytes = std::size_t{64} * 1024;
// File descriptors the process needs besides one per connection (stdio, epoll per thread, libs).
constexpr rlim_t kSpareFds = 64;

// xoshiro256** (Blackman and Vigna): fast, good enough for trace ids and URL choice.
class Rng {
 public:
  Rng() {
    if (getrandom(s_, sizeof s_, 0) != static_cast<ssize_t>(sizeof s_)) {
      std::uint64_t x = static_cast<std::uint64_t>(util::monotonic_ns()) ^
                        (static_cast<std::uint64_t>(gettid()) << 32);
      for (auto& v : s_) v = splitmix(x);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t s_[4]{};
};

// A request as each transport sends it, prepared once per URL.
struct PreparedRequest {
  Http1Request http1;
  H2Fields h2_fields;  // --h2 only
};

std::vector<PreparedRequest> prepare(const LoadOptions& o) {
  std::vector<PreparedRequest> out;
  for (const auto& r : o.requests) {
    PreparedRequest p;
    p.http1 = prepare_http1(o, r);
    if (o.h2) p.h2_fields = prepare_h2_fields(o, r);
    out.push_back(std::move(p));
  }
  return out;
}

struct Conn {
  enum class St { kClosed, kConnecting, kOpen };
  util::ScopedFd fd;
  St st = St::kClosed;
  std::uint32_t events = 0;  // what epoll watches now
  ResponseParser parser;
  std::string out;
  std::size_t out_off = 0;
  // The request in flight, if any.
  bool has_req = false;
  bool measured = false;
  std::int64_t intended_ns = 0;
  std::int64_t taken_ns = 0;
  std::int64_t deadline_ns = 0;
  TraceIds trace;
  std::size_t url = 0;
  // HTTP/2 (--h2): the session and its one stream in flight (deleted by close_conn).
  std::unique_ptr<H2Session> h2;
  // Connect back-off after a failed connect, so a refused port is no busy loop.
  std::int64_t backoff_ns = 0;
  std::int64_t backoff_until_ns = 0;
  bool in_backoff = false;
};

struct ThreadPlan {
  int connections = 0;
  double rate_per_s = 0;      // 0: closed loop
  std::uint64_t quota = 0;    // measured requests; 0 = unlimited
  std::int64_t phase_ns = 0;  // offset of this thread's schedule
};

class Worker {
 public:
  Worker(const LoadOptions& o, const Endpoint& ep, const std::vector<PreparedRequest>& reqs,
         const std::vector<double>& cumulative_weights, ThreadPlan plan, std::int64_t t0_ns,
         IntervalMerger& intervals, int index)
      : o_(o),
        ep_(ep),
        reqs_(reqs),
        cumw_(cumulative_weights),
        plan_(plan),
        conns_(plan.connections),
        buf_(kReadBufferBytes),
        intervals_(intervals, index) {
    t0_ns_ = t0_ns + plan.phase_ns;
    measure_start_ns_ = t0_ns + o.warmup_ns;
    issue_end_ns_ = o.duration_ns > 0 ? measure_start_ns_ + o.duration_ns : kNever;
    interval_ns_ = plan.rate_per_s > 0 ? 1e9 / plan.rate_per_s : 0;
    res_.requests_per_url.assign(reqs.size(), 0);
  }

  ~Worker() {
    for (auto& c : conns_) close_conn(c);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  util::Result<void> run();
  // Hands the last second's histograms to the merger; the thread records nothing after this.
  void finish_intervals() { intervals_.finish(); }
  LoadResult& result() { return res_; }
  std::int64_t last_outcome_ns() const { return last_outcome_ns_; }
  // This thread's longest spell without a response, start_ns in monotonic ns.
  const ResponseGap& longest_gap() const { return longest_gap_; }
  std::int64_t stop_ns() const { return stop_ns_; }

 private:
  std::int64_t intended(std::uint64_t k) const {
    return t0_ns_ + static_cast<std::int64_t>(static_cast<double>(k) * interval_ns_);
  }
  void dispatch(std::int64_t now);
  void start_request(int ci, std::int64_t intended_ns, std::int64_t now, bool measured);
  void open_connection(int ci, std::int64_t now);
  void try_write(int ci, std::int64_t now);
  void on_event(int ci, std::uint32_t ev, std::int64_t now);
  void on_readable(int ci, std::int64_t now);
  void complete(int ci, std::int64_t now, int status, bool reuse);
  void fail(int ci, Outcome outcome, std::int64_t now, const std::string& why);
  void record(Conn& c, Outcome outcome, std::int64_t now, int status);
  void close_conn(Conn& c) {
    c.h2.reset();
    c.fd.reset();
    c.st = Conn::St::kClosed;
    c.events = 0;
  }
  void set_events(int ci, std::uint32_t events);
  void scan(std::int64_t now);
  // HTTP/2 helpers.
  bool h2_submit(int ci, const PreparedRequest& r, std::int64_t now);
  bool h2_pump(int ci, std::int64_t now);
  void h2_on_bytes(int ci, const char* data, std::size_t len, std::int64_t now);
  std::optional<H2Client> h2_client_;  // --h2: the callbacks every session of this thread shares
  void begin_stop(std::int64_t now);
  // The spell without a response: after a request is taken (inflight_ raised), after an
  // outcome (inflight_ lowered; `response`: a complete response, which starts a new spell).
  void after_take(std::int64_t now);
  void after_outcome(std::int64_t now, bool response);
  // The timeline's second of `now` (0 before the measured window began).
  std::size_t second_of(std::int64_t now) const {
    return static_cast<std::size_t>(std::max<std::int64_t>(0, now - measure_start_ns_) /
                                    util::kNsPerSec);
  }

  const LoadOptions& o_;
  const Endpoint& ep_;
  const std::vector<PreparedRequest>& reqs_;
  const std::vector<double>& cumw_;
  ThreadPlan plan_;
  std::vector<Conn> conns_;
  std::vector<int> free_;  // connections ready for a request (open and idle, or closed)
  std::vector<char> buf_;
  util::ScopedFd epoll_;
  Rng rng_;
  LoadResult res_;
  IntervalRecorder intervals_;  // this thread's histograms of the current second

  std::int64_t t0_ns_ = 0;
  std::int64_t measure_start_ns_ = 0;
  std::int64_t issue_end_ns_ = kNever;
  double interval_ns_ = 0;
  std::uint64_t next_k_ = 0;
  std::uint64_t measured_issued_ = 0;
  int inflight_ = 0;
  bool stopping_ = false;
  std::int64_t stop_ns_ = 0;
  std::int64_t grace_end_ns_ = kNever;
  std::int64_t last_outcome_ns_ = 0;
  // The current spell without a response (while inflight_ > 0) and the longest one so far.
  std::int64_t quiet_since_ns_ = 0;
  int quiet_peak_ = 0;
  std::int64_t quiet_loop_gap_ns_ = 0;
  ResponseGap longest_gap_;
};

void Worker::after_take(std::int64_t now) {
  if (inflight_ == 1) {
    quiet_since_ns_ = now;
    quiet_peak_ = 0;
    quiet_loop_gap_ns_ = 0;
  }
  quiet_peak_ = std::max(quiet_peak_, inflight_);
}

void Worker::after_outcome(std::int64_t now, bool response) {
  if (!response && inflight_ > 0) return;  // a failure is no answer: the spell goes on
  const std::int64_t spell_ns = now - quiet_since_ns_;
  if (now > measure_start_ns_ && spell_ns > longest_gap_.duration_ns) {
    longest_gap_ = {quiet_since_ns_, spell_ns, quiet_peak_, quiet_loop_gap_ns_};
  }
  quiet_since_ns_ = now;
  quiet_peak_ = inflight_;
  quiet_loop_gap_ns_ = 0;
}

void Worker::set_events(int ci, std::uint32_t events) {
  Conn& c = conns_[ci];
  if (c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = static_cast<std::uint32_t>(ci);
  epoll_ctl(epoll_.get(), c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd.get(), &ev);
  c.events = events;
}

void Worker::record(Conn& c, Outcome outcome, std::int64_t now, int status) {
  last_outcome_ns_ = std::max(last_outcome_ns_, now);
  if (!c.measured) {
    ++res_.warmup_requests;
    return;
  }
  ++res_.outcomes[static_cast<int>(outcome)];
  ++res_.requests;
  ++res_.requests_per_url[c.url];
  const std::int64_t latency_us = (now - c.intended_ns) / util::kNsPerUs;
  const std::int64_t service_us = (now - c.taken_ns) / util::kNsPerUs;
  const bool response = status > 0;
  if (response) {
    res_.latency.record_us(latency_us);
    res_.service.record_us(service_us);
    ++res_.status_classes[status >= 100 && status < 600 ? status / 100 : 0];
  }
  // The second's histograms go to the merger when the thread's clock leaves it; an outcome never
  // lands in a second before one already handed over.
  intervals_.move_to(second_of(now));
  const std::size_t second = intervals_.current();
  if (response) intervals_.record_us(latency_us, service_us);
  if (res_.timeline.size() <= second) res_.timeline.resize(second + 1);
  TimelineBucket& b = res_.timeline[second];
  ++b.requests;
  if (outcome != Outcome::kOk) ++b.errors;
  if (response) {
    b.latency_sum_us += static_cast<double>(latency_us);
    ++b.latency_count;
    b.latency_max_us = std::max(b.latency_max_us, latency_us);
  }
  // Keep the slowest few: a min-heap on latency, so the fastest of them is replaced first.
  auto cmp = [](const SlowRequest& a, const SlowRequest& b) { return a.latency_us > b.latency_us; };
  auto& slow = res_.slowest;
  if (static_cast<int>(slow.size()) < o_.slowest_kept || latency_us > slow.front().latency_us) {
    SlowRequest s;
    s.trace_id.reserve(32);
    append_hex(s.trace_id, c.trace.hi);
    append_hex(s.trace_id, c.trace.lo);
    s.latency_us = latency_us;
    s.service_us = service_us;
    s.outcome = outcome;
    s.status = status;
    s.url_index = c.url;
    if (static_cast<int>(slow.size()) >= o_.slowest_kept) {
      std::pop_heap(slow.begin(), slow.end(), cmp);
      slow.pop_back();
    }
    slow.push_back(std::move(s));
    std::push_heap(slow.begin(), slow.end(), cmp);
  }
}

void Worker::complete(int ci, std::int64_t now, int status, bool reuse) {
  Conn& c = conns_[ci];
  Outcome o = Outcome::kOk;
  if (status >= 500) {
    o = Outcome::kStatus5xx;
  } else if (status >= 400) {
    o = Outcome::kStatus4xx;
  }
  record(c, o, now, status);
  c.has_req = false;
  c.backoff_ns = 0;
  --inflight_;
  after_outcome(now, true);
  if (!reuse) close_conn(c);
  free_.push_back(ci);
}

void Worker::fail(int ci, Outcome outcome, std::int64_t now, const std::string& why) {
  Conn& c = conns_[ci];
  if (c.measured && res_.first_error.empty()) {
    res_.first_error = fmt::format("{}: {}", outcome_name(outcome), why);
  }
  record(c, outcome, now, 0);
  c.has_req = false;
  --inflight_;
  after_outcome(now, false);
  close_conn(c);
  if (outcome == Outcome::kConnect) {
    c.backoff_ns = std::clamp(c.backoff_ns * 2, kMinBackoffNs, kMaxBackoffNs);
    c.backoff_until_ns = now + c.backoff_ns;
    c.in_backoff = true;
  } else {
    free_.push_back(ci);
  }
}

void Worker::open_connection(int ci, std::int64_t now) {
  Conn& c = conns_[ci];
  int fd = ::socket(ep_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(ci, Outcome::kConnect, now, fmt::format("socket: {}", std::strerror(errno)));
    return;
  }
  c.fd.reset(fd);
  c.events = 0;
  int one = 1;
  // Requests are small and latency-bound: do not let Nagle hold them back (tcp(7)).
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ++res_.connects;
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&ep_.addr), ep_.addr_len);
  if (rc != 0 && errno != EINPROGRESS) {
    fail(ci, Outcome::kConnect, now, fmt::format("connect {}: {}", ep_.text, std::strerror(errno)));
    return;
  }
  if (rc == 0) {
    c.st = Conn::St::kOpen;
    set_events(ci, EPOLLIN);
    try_write(ci, now);
  } else {
    c.st = Conn::St::kConnecting;
    set_events(ci, EPOLLIN | EPOLLOUT);
  }
}

void Worker::try_write(int ci, std::int64_t now) {
  Conn& c = conns_[ci];
  while (c.out_off < c.out.size()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<std::size_t>(n);
      res_.bytes_written += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(ci, EPOLLIN | EPOLLOUT);
      return;
    }
    if (!c.has_req) {  // an HTTP/2 control frame on an idle connection: just drop it
      close_conn(c);
      return;
    }
    fail(ci, Outcome::kWrite, now, fmt::format("send: {}", std::strerror(errno)));
    return;
  }
  c.out.clear();
  c.out_off = 0;
  set_events(ci, EPOLLIN);
}

void Worker::start_request(int ci, std::int64_t intended_ns, std::int64_t now, bool measured) {
  Conn& c = conns_[ci];
  std::size_t url = 0;
  if (cumw_.size() > 1) {
    const double x = rng_.uniform() * cumw_.back();
    url = static_cast<std::size_t>(std::upper_bound(cumw_.begin(), cumw_.end(), x) - cumw_.begin());
    url = std::min(url, cumw_.size() - 1);
  }
  const PreparedRequest& r = reqs_[url];
  c.trace.hi = rng_.next();
  c.trace.lo = rng_.next() | 1;    // an all-zero trace id is invalid (W3C Trace Context 3.2.2.3)
  c.trace.span = rng_.next() | 1;  // parent (span) id, also never all zero
  if (!o_.h2) {
    write_http1(r.http1, c.trace, c.out);
    c.out_off = 0;
    c.parser.reset(r.http1.head);
  }
  c.has_req = true;
  c.measured = measured;
  c.intended_ns = intended_ns;
  c.taken_ns = now;
  c.deadline_ns = now + o_.timeout_ns;
  c.url = url;
  ++inflight_;
  after_take(now);
  if (measured) {
    ++measured_issued_;
    const std::int64_t delay = now - intended_ns;
    if (interval_ns_ > 0 && delay > o_.late_threshold_ns) ++res_.late_sends;
    res_.max_send_delay_us = std::max(res_.max_send_delay_us, delay / util::kNsPerUs);
  }
  if (o_.h2 && !h2_submit(ci, r, now)) return;
  if (c.st == Conn::St::kClosed) {
    open_connection(ci, now);
  } else {
    try_write(ci, now);
  }
}

bool Worker::h2_pump(int ci, std::int64_t now) {
  Conn& c = conns_[ci];
  const int rv = c.h2->drain(c.out);
  if (rv == 0) return true;
  if (c.has_req) {
    fail(ci, Outcome::kParse, now, fmt::format("HTTP/2: {}", H2Session::error_text(rv)));
  } else {
    close_conn(c);
  }
  return false;
}

bool Worker::h2_submit(int ci, const PreparedRequest& r, std::int64_t now) {
  Conn& c = conns_[ci];
  if (c.h2 == nullptr) {
    c.h2 = h2_client_->open();
    if (c.h2 == nullptr) {
      fail(ci, Outcome::kConnect, now, "nghttp2_session_client_new failed");
      return false;
    }
    c.out.clear();
    c.out_off = 0;
  }
  std::string traceparent = "00-";
  append_hex(traceparent, c.trace.hi);
  append_hex(traceparent, c.trace.lo);
  traceparent.push_back('-');
  append_hex(traceparent, c.trace.span);
  traceparent += "-01";
  const std::int32_t id = c.h2->submit(r.h2_fields, traceparent, o_.body);
  if (id < 0) {
    fail(ci, Outcome::kWrite, now, fmt::format("HTTP/2: {}", H2Session::error_text(id)));
    return false;
  }
  return h2_pump(ci, now);
}

void Worker::h2_on_bytes(int ci, const char* data, std::size_t len, std::int64_t now) {
  Conn& c = conns_[ci];
  if (c.h2 == nullptr) {
    close_conn(c);
    return;
  }
  const ssize_t rv = c.h2->receive(data, len);
  if (rv < 0) {
    if (c.has_req) {
      fail(ci, Outcome::kParse, now,
           fmt::format("HTTP/2: {}", H2Session::error_text(static_cast<int>(rv))));
    } else {
      close_conn(c);
    }
    return;
  }
  // Answer what the peer asked for (SETTINGS ack, PING, WINDOW_UPDATE).
  if (!h2_pump(ci, now)) return;
  if (c.out_off < c.out.size()) {
    try_write(ci, now);
    if (!c.fd.valid()) return;
  }
  if (c.has_req && c.h2->stream_closed()) {
    if (c.h2->stream_error() != 0 || c.h2->status() == 0) {
      // PROTOCOL_ERROR: the response broke HTTP/2's rules; other codes: the peer reset the stream.
      const Outcome o = c.h2->stream_protocol_error() || c.h2->stream_error() == 0 ? Outcome::kParse
                                                                                   : Outcome::kRead;
      fail(ci, o, now, fmt::format("HTTP/2 stream closed: {}", c.h2->stream_error_text()));
      return;
    }
    // After GOAWAY the session wants no more reads: open a new connection next time.
    complete(ci, now, c.h2->status(), c.h2->wants_read());
  } else if (!c.has_req && !c.h2->wants_read() && !c.h2->wants_write()) {
    close_conn(c);
  }
}

void Worker::dispatch(std::int64_t now) {
  while (!free_.empty() && !stopping_) {
    std::int64_t when = now;
    if (interval_ns_ > 0) {
      when = intended(next_k_);
      if (when > now) return;
      if (when >= issue_end_ns_) return;
    }
    const bool measured = when >= measure_start_ns_;
    if (measured && plan_.quota > 0 && measured_issued_ >= plan_.quota) return;
    const int ci = free_.back();
    free_.pop_back();
    ++next_k_;
    start_request(ci, when, now, measured);
  }
}

void Worker::on_readable(int ci, std::int64_t now) {
  Conn& c = conns_[ci];
  const ssize_t n = ::recv(c.fd.get(), buf_.data(), buf_.size(), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    if (c.has_req) {
      fail(ci, Outcome::kRead, now, fmt::format("recv: {}", std::strerror(errno)));
    } else {
      close_conn(c);  // an idle connection went bad; it is in free_ and reconnects when used
    }
    return;
  }
  if (n == 0) {
    if (!c.has_req) {
      close_conn(c);  // the server closed an idle keep-alive connection
      return;
    }
    if (o_.h2) {
      fail(ci, Outcome::kRead, now, "connection closed before the HTTP/2 response was complete");
      return;
    }
    const auto st = c.parser.finish();
    if (st == ResponseParser::State::kComplete) {
      complete(ci, now, c.parser.status(), false);
    } else if (st == ResponseParser::State::kParseError) {
      fail(ci, Outcome::kParse, now, c.parser.error());
    } else {
      fail(ci, Outcome::kRead, now, c.parser.error());
    }
    return;
  }
  res_.bytes_read += static_cast<std::uint64_t>(n);
  if (o_.h2) {
    h2_on_bytes(ci, buf_.data(), static_cast<std::size_t>(n), now);
    return;
  }
  if (!c.has_req) {
    close_conn(c);  // bytes nobody asked for: the connection is out of step, drop it
    return;
  }
  std::size_t consumed = 0;
  const auto st = c.parser.feed(buf_.data(), static_cast<std::size_t>(n), &consumed);
  if (st == ResponseParser::State::kComplete) {
    // Reuse only when the server allows it and sent nothing beyond this response.
    complete(ci, now, c.parser.status(),
             c.parser.keep_alive() && consumed == static_cast<std::size_t>(n));
  } else if (st == ResponseParser::State::kParseError) {
    fail(ci, Outcome::kParse, now, c.parser.error());
  }
}

void Worker::on_event(int ci, std::uint32_t ev, std::int64_t now) {
  Conn& c = conns_[ci];
  if (!c.fd.valid()) return;
  if (c.st == Conn::St::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(ci, Outcome::kConnect, now, fmt::format("connect {}: {}", ep_.text, std::strerror(err)));
      return;
    }
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    c.st = Conn::St::kOpen;
    c.backoff_ns = 0;
    try_write(ci, now);
    return;
  }
  if ((ev & EPOLLOUT) && c.has_req && c.out_off < c.out.size()) {
    try_write(ci, now);
    if (!c.fd.valid()) return;
  }
  if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(ci, now);
}

void Worker::scan(std::int64_t now) {
  for (int ci = 0; ci < static_cast<int>(conns_.size()); ++ci) {
    Conn& c = conns_[ci];
    if (c.has_req && now >= c.deadline_ns) {
      fail(ci, Outcome::kTimeout, now,
           fmt::format("no complete response within {} ms", o_.timeout_ns / util::kNsPerMs));
    } else if (c.in_backoff && now >= c.backoff_until_ns) {
      c.in_backoff = false;
      free_.push_back(ci);
    }
  }
}

void Worker::begin_stop(std::int64_t now) {
  stopping_ = true;
  stop_ns_ = now;
  grace_end_ns_ = now + std::min(o_.timeout_ns, o_.max_grace_ns);
  // Open loop: every measured send the schedule wanted before the stop but that never left.
  if (interval_ns_ > 0) {
    const std::int64_t bound = std::min(now, issue_end_ns_);
    const bool quota_done = plan_.quota > 0 && measured_issued_ >= plan_.quota;
    for (std::uint64_t k = next_k_; !quota_done && intended(k) < bound; ++k) {
      if (intended(k) >= measure_start_ns_) ++res_.dropped_sends;
    }
  }
}

util::Result<void> Worker::run() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return util::errno_error("epoll_create1");
  if (o_.h2) {
    auto client = H2Client::create();
    if (!client) return client.error();
    h2_client_.emplace(std::move(*client));
  }
  for (int i = static_cast<int>(conns_.size()) - 1; i >= 0; --i) free_.push_back(i);
  std::vector<epoll_event> events(std::max<std::size_t>(16, conns_.size()));
  std::int64_t next_scan_ns = 0;
  // Wait for the common start so that threads begin their schedules together.
  while (util::monotonic_ns() < t0_ns_ - plan_.phase_ns) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (;;) {
    std::int64_t now = util::monotonic_ns();
    if (!stopping_) {
      // Send what is due first, so a stop (interrupt, quota) does not count as dropped the sends
      // that were due this very moment.
      dispatch(now);
      const bool quota_done = plan_.quota > 0 && measured_issued_ >= plan_.quota;
      const bool asked = o_.stop != nullptr && o_.stop->load(std::memory_order_relaxed);
      if (now >= issue_end_ns_ || quota_done || asked) begin_stop(now);
    }
    if (now >= next_scan_ns) {
      scan(now);
      // A thread with nothing ending must not hold back the merge of the seconds it has left.
      if (now >= measure_start_ns_) intervals_.move_to(second_of(now));
      next_scan_ns = now + kScanIntervalNs;
    }
    if (stopping_) {
      if (inflight_ == 0) break;
      if (now >= grace_end_ns_) {
        for (int ci = 0; ci < static_cast<int>(conns_.size()); ++ci) {
          if (conns_[ci].has_req) {
            fail(ci, Outcome::kTimeout, now, "still in flight when the run's grace period ended");
          }
        }
        break;
      }
    }
    // Sleep until the next thing due: a scheduled send, a deadline scan, or the end.
    std::int64_t wake = next_scan_ns;
    if (!stopping_) {
      wake = std::min(wake, issue_end_ns_);
      if (interval_ns_ > 0 && !free_.empty()) wake = std::min(wake, intended(next_k_));
    } else {
      wake = std::min(wake, grace_end_ns_);
    }
    if (interval_ns_ == 0 && !stopping_ && !free_.empty()) wake = now;
    const std::int64_t wait_ns = std::max<std::int64_t>(0, wake - now);
    timespec ts{static_cast<time_t>(wait_ns / util::kNsPerSec),
                static_cast<long>(wait_ns % util::kNsPerSec)};
    // epoll_pwait2 (Linux 5.11) takes a timespec: sub-millisecond wakeups keep the open-loop
    // schedule exact at high rates.
    const int n =
        epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()), &ts, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return util::errno_error("epoll_pwait2");
    }
    const std::int64_t iteration_start_ns = now;
    now = util::monotonic_ns();
    // How long this thread did not run past the wait it asked for (descheduled, or slow in the
    // iteration): a spell without responses that is mostly this is the generator's own stall.
    if (inflight_ > 0) {
      quiet_loop_gap_ns_ = std::max(quiet_loop_gap_ns_, now - iteration_start_ns - wait_ns);
    }
    for (int i = 0; i < n; ++i)
      on_event(static_cast<int>(events[i].data.u32), events[i].events, now);
  }
  return {};
}

// The threads' longest spells without a response merged: the longest one, with the requests
// outstanding in every thread whose own longest spell overlaps it; its start made relative to
// the measured window's start.
ResponseGap longest_response_gap(const std::vector<std::unique_ptr<Worker>>& workers,
                                 std::int64_t measure_start_ns) {
  ResponseGap longest;
  for (const auto& w : workers) {
    if (w->longest_gap().duration_ns > longest.duration_ns) longest = w->longest_gap();
  }
  if (longest.duration_ns == 0) return {};
  const std::int64_t end_ns = longest.start_ns + longest.duration_ns;
  int outstanding = 0;
  for (const auto& w : workers) {
    const ResponseGap& g = w->longest_gap();
    if (g.duration_ns > 0 && g.start_ns < end_ns && g.start_ns + g.duration_ns > longest.start_ns) {
      outstanding += g.outstanding;
    }
  }
  longest.outstanding = outstanding;
  longest.start_ns = std::max<std::int64_t>(0, longest.start_ns - measure_start_ns);
  return longest;
}

}  // namespace

util::Result<void> check_load_options(const LoadOptions& o) {
  if (o.requests.empty()) return util::Error{"no URL given", "give at least one http:// URL"};
  for (const auto& r : o.requests) {
    if (r.url.authority() != o.requests[0].url.authority()) {
      return util::Error{fmt::format("all URLs must reach the same server: {} and {} differ",
                                     o.requests[0].url.authority(), r.url.authority()),
                         "run one chokepoint load per server"};
    }
    if (!(r.weight > 0) || !std::isfinite(r.weight)) {
      return util::Error{fmt::format("URL weight must be > 0, got {}", r.weight), ""};
    }
  }
  if (o.method.empty() ||
      o.method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_") !=
          std::string::npos) {
    return util::Error{fmt::format("invalid HTTP method '{}'", o.method), "e.g. GET, POST, PUT"};
  }
  for (const auto& h : o.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || h.find_first_of("\r\n") != std::string::npos ||
        h.find_first_of(" \t") < colon) {
      return util::Error{fmt::format("invalid header '{}'", h), "give headers as 'Name: value'"};
    }
    const std::string name = h.substr(0, colon);
    if (strcasecmp(name.c_str(), "host") == 0 || strcasecmp(name.c_str(), "content-length") == 0 ||
        strcasecmp(name.c_str(), "traceparent") == 0 ||
        strcasecmp(name.c_str(), "transfer-encoding") == 0) {
      return util::Error{fmt::format("header '{}' is set by chokepoint load", name),
                         "Host comes from the URL, Content-Length from --body, traceparent is "
                         "generated per request"};
    }
  }
  if (o.threads < 1) return util::Error{"--threads must be >= 1", ""};
  if (o.connections < 1) return util::Error{"--connections must be >= 1", ""};
  if (o.rate_per_s < 0 || !std::isfinite(o.rate_per_s)) {
    return util::Error{"--rate must be a positive number or 'max'", ""};
  }
  if (o.duration_ns <= 0 && o.max_requests == 0) {
    return util::Error{"the run has no end", "give --duration or --requests"};
  }
  if (o.timeout_ns <= 0) return util::Error{"--timeout must be > 0", ""};
  if (o.warmup_ns < 0) return util::Error{"--warmup must be >= 0", ""};

  // One descriptor per connection plus a few: check now, not as EMFILE mid-run (getrlimit(2)).
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return util::errno_error("getrlimit(RLIMIT_NOFILE)");
  const rlim_t need =
      static_cast<rlim_t>(o.connections) + static_cast<rlim_t>(o.threads) + kSpareFds;
  if (lim.rlim_cur < need) {
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
      return util::Error{
          fmt::format("--connections {} needs about {} file descriptors, but RLIMIT_NOFILE allows "
                      "at most {}",
                      o.connections, need, lim.rlim_max),
          fmt::format(
              "use fewer connections (at most {}), or raise the limit: 'ulimit -n {}' "
              "(above the hard limit needs root or /etc/security/limits.conf)",
              lim.rlim_max > kSpareFds + o.threads ? lim.rlim_max - kSpareFds - o.threads : 0,
              need)};
    }
    rlimit raised = lim;
    raised.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return util::errno_error("setrlimit(RLIMIT_NOFILE)",
                               fmt::format("run 'ulimit -n {}' first", need));
    }
  }
  return {};
}

util::Result<LoadResult> run_load(const LoadOptions& o) {
  if (auto ok = check_load_options(o); !ok) return ok.error();
  auto ep = resolve(o.requests[0].url);
  if (!ep) return ep.error();

  const std::vector<PreparedRequest> reqs = prepare(o);
  std::vector<double> cumw;
  double total_w = 0;
  for (const auto& r : o.requests) cumw.push_back(total_w += r.weight);

  const int threads = std::min(o.threads, o.connections);
  std::vector<ThreadPlan> plans(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    ThreadPlan& p = plans[static_cast<std::size_t>(i)];
    p.connections = o.connections / threads + (i < o.connections % threads ? 1 : 0);
    // Rate and request quota follow each thread's share of the connections.
    p.rate_per_s = o.rate_per_s * p.connections / o.connections;
    if (o.max_requests > 0) {
      p.quota =
          o.max_requests / static_cast<std::uint64_t>(threads) +
          (static_cast<std::uint64_t>(i) < o.max_requests % static_cast<std::uint64_t>(threads)
               ? 1
               : 0);
    }
    if (p.rate_per_s > 0) {
      p.phase_ns = static_cast<std::int64_t>(1e9 / p.rate_per_s * i / threads);
    }
  }
  // A thread whose quota is 0 would never stop on quota: give the requests to fewer threads.
  if (o.max_requests > 0 && o.max_requests < static_cast<std::uint64_t>(threads)) {
    plans.resize(static_cast<std::size_t>(o.max_requests));
  }

  const std::int64_t now_ns = util::monotonic_ns();
  const std::int64_t unix_minus_monotonic_ns = util::realtime_ns() - now_ns;
  const std::int64_t t0 = now_ns + 20 * util::kNsPerMs;
  IntervalMerger intervals(static_cast<int>(plans.size()));
  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(plans.size());
  for (const auto& p : plans) {
    workers.push_back(std::make_unique<Worker>(o, *ep, reqs, cumw, p, t0, intervals,
                                               static_cast<int>(workers.size())));
  }
  std::vector<util::Result<void>> status(workers.size());
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    pool.emplace_back([&, i] {
      status[i] = workers[i]->run();
      // A finished thread no longer holds back the others' seconds (a thread that met its
      // --requests quota early, or failed).
      workers[i]->finish_intervals();
    });
  }
  for (auto& t : pool) t.join();
  for (const auto& s : status) {
    if (!s) return s.error();
  }

  LoadResult total;
  total.threads = static_cast<int>(workers.size());
  total.connections = o.connections;
  total.rate_per_s = o.rate_per_s;
  total.requests_per_url.assign(reqs.size(), 0);
  std::int64_t end_ns = 0;
  for (auto& w : workers) {
    LoadResult& r = w->result();
    total.latency.merge(r.latency);
    total.service.merge(r.service);
    for (int k = 0; k < kOutcomeCount; ++k) total.outcomes[k] += r.outcomes[k];
    for (std::size_t k = 0; k < total.status_classes.size(); ++k)
      total.status_classes[k] += r.status_classes[k];
    for (std::size_t k = 0; k < reqs.size(); ++k)
      total.requests_per_url[k] += r.requests_per_url[k];
    total.requests += r.requests;
    total.warmup_requests += r.warmup_requests;
    total.late_sends += r.late_sends;
    total.dropped_sends += r.dropped_sends;
    total.max_send_delay_us = std::max(total.max_send_delay_us, r.max_send_delay_us);
    total.connects += r.connects;
    total.bytes_read += r.bytes_read;
    total.bytes_written += r.bytes_written;
    if (total.first_error.empty()) total.first_error = r.first_error;
    if (total.timeline.size() < r.timeline.size()) total.timeline.resize(r.timeline.size());
    for (std::size_t s = 0; s < r.timeline.size(); ++s) {
      TimelineBucket& a = total.timeline[s];
      const TimelineBucket& b = r.timeline[s];
      a.requests += b.requests;
      a.errors += b.errors;
      a.latency_sum_us += b.latency_sum_us;
      a.latency_count += b.latency_count;
      a.latency_max_us = std::max(a.latency_max_us, b.latency_max_us);
    }
    for (auto& s : r.slowest) total.slowest.push_back(std::move(s));
    // The window ends at the last measured outcome, or at the planned end if that came later
    // (a run whose sends were all dropped still lasted its duration).
    const std::int64_t planned_end =
        o.duration_ns > 0 ? std::min(w->stop_ns(), t0 + o.warmup_ns + o.duration_ns) : 0;
    end_ns = std::max({end_ns, w->last_outcome_ns(), planned_end});
  }
  total.longest_response_gap = longest_response_gap(workers, t0 + o.warmup_ns);
  const std::vector<IntervalPercentiles> seconds = intervals.finish();
  for (std::size_t s = 0; s < seconds.size() && s < total.timeline.size(); ++s) {
    total.timeline[s].percentiles = seconds[s];
  }
  total.start_unix_ns = t0 + o.warmup_ns + unix_minus_monotonic_ns;
  std::sort(total.slowest.begin(), total.slowest.end(),
            [](const SlowRequest& a, const SlowRequest& b) { return a.latency_us > b.latency_us; });
  if (static_cast<int>(total.slowest.size()) > o.slowest_kept) total.slowest.resize(o.slowest_kept);
  total.duration_s = std::max<double>(0, static_cast<double>(end_ns - (t0 + o.warmup_ns))) / 1e9;
  return total;
}

}  // namespace chokepoint::loadgen
