// Fuzzes the proc connector's datagram parser: arbitrary bytes as one datagram never crash it or
// make it read past the datagram (ASan), and every event it yields is one it could have meant: a
// known kind, positive pids, a NUL-terminated name.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "collect/netlink/proc_connector.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using chokepoint::collect::netlink::ProcEvent;
  std::vector<ProcEvent> events;
  chokepoint::collect::netlink::parse_proc_events(std::span(data, size), events);
  for (const auto& e : events) {
    if (e.pid <= 0 || e.tgid <= 0) std::abort();
    if (e.kind != ProcEvent::Kind::kFork && e.kind != ProcEvent::Kind::kExec &&
        e.kind != ProcEvent::Kind::kComm && e.kind != ProcEvent::Kind::kExit) {
      std::abort();
    }
    if (e.comm.back() != '\0') std::abort();
  }
  return 0;
}
