#include "monitor/config.h"

#include <fmt/format.h>

#include <cerrno>
#include <exception>
#include <fstream>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr const char* kHint =
    "the file is TOML with the keys listen, window, interval, record_dir, keep, statsd (strings) "
    "and targets (a list of strings); see docs/agent.md";

}  // namespace

util::Result<AgentConfig> read_agent_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::errno_error("cannot read " + path, "pass --config a readable TOML file");
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return util::Error{path + " is larger than 1 MiB", "an agent config is a few lines", EFBIG};
  }
  AgentConfig c;
  try {
    std::istringstream stream(text);
    const toml::value root = toml::parse(stream, path);
    const std::set<std::string> strings = {"listen",     "window", "interval",
                                           "record_dir", "keep",   "statsd"};
    for (const auto& [key, value] : root.as_table()) {
      if (key == "targets") {
        for (const auto& t : value.as_array()) c.targets.push_back(t.as_string().str);
      } else if (strings.count(key) != 0) {
        const std::string v = value.as_string().str;
        if (key == "listen") c.listen = v;
        if (key == "window") c.window = v;
        if (key == "interval") c.interval = v;
        if (key == "record_dir") c.record_dir = v;
        if (key == "keep") c.keep = v;
        if (key == "statsd") c.statsd = v;
      } else {
        return util::Error{fmt::format("{}: unknown key '{}'", util::terminal_text(path),
                                       util::terminal_text(key)),
                           kHint, EINVAL};
      }
    }
  } catch (const std::exception& e) {
    return util::Error{fmt::format("{} is not a valid agent config: {}", path, e.what()), kHint,
                       EINVAL};
  }
  return c;
}

}  // namespace chokepoint::monitor
