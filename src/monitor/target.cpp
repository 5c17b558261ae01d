#include "monitor/target.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <vector>

#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

constexpr const char* kHint =
    "write host, pid:PID, name:NAME, cgroup:/sys/fs/cgroup/PATH or service:UNIT";

}  // namespace

util::Result<WatchTarget> parse_target(std::string_view text) {
  using Kind = collect::sampler::TargetSpec::Kind;
  WatchTarget t;
  t.text = std::string(text);
  if (text == "host") {
    t.spec.kind = Kind::kHost;
    return t;
  }
  const auto colon = text.find(':');
  const std::string shown =
      util::terminal_text(text.substr(0, std::min<std::size_t>(text.size(), 200)));
  if (colon == std::string_view::npos) {
    return util::Error{fmt::format("target '{}' is not a target", shown), kHint, EINVAL};
  }
  const std::string_view kind = text.substr(0, colon);
  const std::string_view value = text.substr(colon + 1);
  if (value.empty()) {
    return util::Error{fmt::format("target '{}' has nothing after the ':'", shown), kHint, EINVAL};
  }
  if (kind == "pid") {
    int pid = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), pid);
    if (ec != std::errc() || end != value.data() + value.size() || pid <= 0) {
      return util::Error{fmt::format("target '{}': the pid is not a positive number", shown),
                         "write pid:1234", EINVAL};
    }
    t.spec.kind = Kind::kPid;
    t.spec.pid = pid;
  } else if (kind == "name") {
    t.spec.kind = Kind::kName;
    t.spec.name = std::string(value);
  } else if (kind == "cgroup") {
    if (value.front() != '/') {
      return util::Error{fmt::format("target '{}': the cgroup path is not absolute", shown),
                         "write cgroup:/sys/fs/cgroup/system.slice/nginx.service", EINVAL};
    }
    t.spec.kind = Kind::kCgroup;
    t.spec.cgroup_path = std::string(value);
  } else if (kind == "service") {
    if (value.find('/') != std::string_view::npos || value == "." || value == "..") {
      return util::Error{fmt::format("target '{}': a unit name has no '/'", shown),
                         "write service:nginx or service:nginx.service", EINVAL};
    }
    t.service = std::string(value);
    if (t.service.find('.') == std::string::npos) t.service += ".service";
    t.spec.kind = Kind::kCgroup;
  } else {
    return util::Error{fmt::format("target '{}': unknown kind '{}'", shown,
                                   util::terminal_text(kind.substr(0, 40))),
                       kHint, EINVAL};
  }
  return t;
}

std::vector<std::string> service_cgroup_candidates(const std::string& unit,
                                                   const std::string& cgroup_root) {
  return {cgroup_root + "/system.slice/" + unit, cgroup_root + "/unified/system.slice/" + unit,
          cgroup_root + "/systemd/system.slice/" + unit};
}

util::Result<collect::sampler::TargetSpec> resolve(const WatchTarget& target,
                                                   const std::string& cgroup_root) {
  if (target.service.empty()) return target.spec;
  for (const auto& dir : service_cgroup_candidates(target.service, cgroup_root)) {
    if (!collect::sampler::cgroup_procs_file(dir).empty()) {
      collect::sampler::TargetSpec spec = target.spec;
      spec.cgroup_path = dir;
      return spec;
    }
  }
  return util::Error{
      fmt::format("service {} has no cgroup under {}/system.slice (it is not running)",
                  util::terminal_text(target.service), cgroup_root),
      "start it (systemctl start " + util::terminal_text(target.service) +
          "), or watch its cgroup with cgroup:PATH",
      ESRCH};
}

}  // namespace chokepoint::monitor
