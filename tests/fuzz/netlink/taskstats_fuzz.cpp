// Fuzzes the taskstats reply parser: arbitrary bytes as a netlink message never crash it or make
// it read past the message (ASan), and a parsed reply is self-consistent.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "collect/netlink/taskstats.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto d = chokepoint::collect::netlink::parse_taskstats_message(std::span(data, size));
  if (!d && d.error().message.empty()) std::abort();
  return 0;
}
