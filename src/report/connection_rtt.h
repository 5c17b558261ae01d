#pragma once
// The target's TCP connections over the report's columns: each connection's round-trip time as
// tcp_info gave it (srtt and its variance, rttvar) and the segments it retransmitted, from the
// socket samples a recording keeps (model::SocketSample; the sampler reads a process's sockets at
// every fd-table read, 1 s for `record`, and every 200 ms while a thread of it waits on the
// network). The page draws the slowest connections by their largest RTT and sums up the rest.
//
// A connection is a socket of the target (pid and inode), established, with a peer: listeners and
// TIME_WAIT sockets are left out. Its value in a column is the sample with the largest srtt there;
// its retransmits in a column are the growth of tcpi_total_retrans since its sample before (0 in
// the first column it was seen in). Recordings before schema 6 have no rttvar and no retransmits:
// those read 0.
//
// Every string in the JSON (addresses) is observed: the page shows it as text.

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/samples.h"

namespace chokepoint::report {

class ConnectionRtt {
 public:
  // shown: how many connections get a series of their own (the slowest by their largest srtt).
  explicit ConnectionRtt(std::size_t shown = 8) : shown_(shown) {}

  // The sockets of one tick, which belongs to column `column` (0, 1, ... in time order).
  void add(const model::Tick& tick, int column);

  // {"source", "connections" (how many were seen), "shown": [{"pid", "local_port", "peer"
  // ("addr:port"), "side" ("client": the peer is a client of ours; "upstream": we connected),
  // "srtt_ms", "rttvar_ms", "retransmits" (a value per column, null where it was not read),
  // "max_srtt_ms", "total_retransmits"}], "rest": null, or {"count", "max_srtt_ms",
  // "median_srtt_ms" (per column over the connections not shown, null where none was read)}}.
  // null when the recording has no connection.
  nlohmann::json finish(int columns) const;

 private:
  struct Point {
    std::uint32_t srtt_us = 0, rttvar_us = 0;
    std::uint32_t retransmits = 0;  // in the column
  };
  struct Connection {
    int pid = 0;
    std::uint16_t local_port = 0;
    std::string peer;
    bool server_side = false;
    std::uint32_t max_srtt_us = 0;
    std::uint64_t total_retransmits = 0;
    std::uint32_t last_total_retrans = 0;
    bool seen = false;
    std::map<int, Point> columns;
  };

  std::size_t shown_;
  std::map<std::pair<int, std::uint64_t>, Connection> connections_;  // by pid and inode
};

}  // namespace chokepoint::report
