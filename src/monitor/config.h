#pragma once
// chokepoint agent's config file, TOML (toml11, Debian's libtoml11-dev). Every key is optional;
// flags given on the command line win over the file. Unknown keys are errors (a typo must not be
// ignored silently).
//
//   listen = "127.0.0.1:9464"
//   window = "10s"
//   interval = "1s"
//   record_dir = "/var/lib/chokepoint"
//   keep = "1h"
//   statsd = "127.0.0.1:8125"
//   targets = ["host", "service:nginx", "name:postgres", "cgroup:/sys/fs/cgroup/app"]

#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::monitor {

struct AgentConfig {
  std::optional<std::string> listen;
  std::optional<std::string> window;
  std::optional<std::string> interval;
  std::optional<std::string> record_dir;
  std::optional<std::string> keep;
  std::optional<std::string> statsd;
  std::vector<std::string> targets;
};

// Reads and checks the file (at most 1 MiB). Errors: unreadable, not TOML, an unknown key, a
// value of the wrong type; with the line where toml11 says, and a hint.
util::Result<AgentConfig> read_agent_config(const std::string& path);

}  // namespace chokepoint::monitor
