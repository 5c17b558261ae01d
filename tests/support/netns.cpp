#include "support/netns.h"

#include <unistd.h>

#include <atomic>
#include <chrono>

#include "support/lab_process.h"

namespace chokepoint::test_support {

std::string sbin_tool(const std::string& tool) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = dir + tool;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return tool;
}

util::Result<void> run_tool(const std::string& tool, const std::vector<std::string>& args) {
  auto r = run_to_exit(args, sbin_tool(tool), std::chrono::seconds(10));
  if (!r) return r.error();
  if (r->exit_code != 0) {
    std::string cmd = tool;
    for (const auto& a : args) cmd += " " + a;
    return util::Error{cmd + " failed: " + r->stderr_text, "", 0};
  }
  return {};
}

std::string netns_unavailable() {
  if (geteuid() != 0) return "creating a network namespace needs root";
  if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 &&
      access("/usr/bin/ip", X_OK) != 0 && access("/bin/ip", X_OK) != 0) {
    return "iproute2's ip is missing (scripts/setup installs it)";
  }
  return "";
}

util::Result<TestNetns> TestNetns::create() {
  if (geteuid() != 0) return util::Error{"creating a network namespace needs root", "", EPERM};
  // Unique per process and per call, so parallel tests never share names or subnets.
  static std::atomic<int> counter{0};
  int k = counter.fetch_add(1);
  int subnet = static_cast<int>((getpid() * 7 + k) % 250) + 1;
  TestNetns n;
  std::string id = std::to_string(getpid()) + "x" + std::to_string(k);
  n.name_ = "cptest" + id;
  n.host_if_ = "cph" + id;
  n.ns_if_ = "cpn" + id;
  if (n.host_if_.size() > 15) {  // IFNAMSIZ
    n.host_if_ = n.host_if_.substr(0, 15);
    n.ns_if_ = n.ns_if_.substr(0, 15);
  }
  n.host_ip_ = "10.200." + std::to_string(subnet) + ".1";
  n.ns_ip_ = "10.200." + std::to_string(subnet) + ".2";
  if (auto r = run_tool("ip", {"netns", "add", n.name_}); !r) return r.error();
  // From here the destructor cleans up whatever was made.
  const std::vector<std::vector<std::string>> steps = {
      {"link", "add", n.host_if_, "type", "veth", "peer", "name", n.ns_if_},
      {"link", "set", n.ns_if_, "netns", n.name_},
      {"addr", "add", n.host_ip_ + "/30", "dev", n.host_if_},
      {"link", "set", n.host_if_, "up"},
      {"-n", n.name_, "addr", "add", n.ns_ip_ + "/30", "dev", n.ns_if_},
      {"-n", n.name_, "link", "set", n.ns_if_, "up"},
      {"-n", n.name_, "link", "set", "lo", "up"},
  };
  for (const auto& step : steps) {
    if (auto r = run_tool("ip", step); !r) return r.error();
  }
  return n;
}

TestNetns::TestNetns(TestNetns&& other) noexcept
    : name_(std::move(other.name_)),
      host_ip_(std::move(other.host_ip_)),
      ns_ip_(std::move(other.ns_ip_)),
      host_if_(std::move(other.host_if_)),
      ns_if_(std::move(other.ns_if_)) {
  other.name_.clear();
}

TestNetns::~TestNetns() {
  if (name_.empty()) return;
  (void)run_tool("ip", {"netns", "del", name_});
  // The root side usually goes with its peer; remove it explicitly in case it did not.
  (void)run_tool("ip", {"link", "del", host_if_});
}

util::Result<void> TestNetns::shape_egress(const std::string& rate) {
  return run_tool("tc", {"-n", name_, "qdisc", "add", "dev", ns_if_, "root", "tbf", "rate", rate,
                         "burst", "32kbit", "latency", "50ms"});
}

std::vector<std::string> TestNetns::exec_args(const std::string& binary,
                                              const std::vector<std::string>& args) const {
  std::vector<std::string> out = {"netns", "exec", name_, binary};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

}  // namespace chokepoint::test_support
