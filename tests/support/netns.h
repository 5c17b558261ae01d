#pragma once
// A network namespace of the test's own, joined to the root namespace by a veth pair, for tests
// that need a real link (shaped with tbf) between a client and a server. Addresses are
// 10.200.N.1 (root side) and 10.200.N.2 (namespace side), /30, created by the test itself: traffic
// only ever goes to them. Needs root and iproute2: a test skips only when netns_unavailable()
// says why (the feature is absent); where it is present, a create() that fails is a failure.
//
// Ownership: the destructor deletes the namespace, which removes both veth ends. Move-only.

#include <string>
#include <vector>

#include "util/result.h"

namespace chokepoint::test_support {

// Why this machine cannot give a test a network namespace (not root, no `ip`), or "" when it can.
std::string netns_unavailable();

class TestNetns {
 public:
  static util::Result<TestNetns> create();
  TestNetns(TestNetns&& other) noexcept;
  TestNetns& operator=(TestNetns&&) = delete;
  TestNetns(const TestNetns&) = delete;
  ~TestNetns();

  const std::string& name() const { return name_; }
  const std::string& host_ip() const { return host_ip_; }  // root-namespace side
  const std::string& ns_ip() const { return ns_ip_; }      // inside the namespace
  const std::string& ns_interface() const { return ns_if_; }

  // Shapes the namespace side's egress (what a server inside sends) with tbf.
  util::Result<void> shape_egress(const std::string& rate);
  // Arguments that run `binary args...` inside the namespace through `ip netns exec`, which
  // execs in place: the pid of the started process is the binary's.
  std::vector<std::string> exec_args(const std::string& binary,
                                     const std::vector<std::string>& args) const;

 private:
  TestNetns() = default;
  std::string name_, host_ip_, ns_ip_, host_if_, ns_if_;
};

// The path of an iproute2 tool ("ip", "tc") in the sbin directories, or the bare name.
std::string sbin_tool(const std::string& tool);

// Runs tool with args (bounded to 10 s); the error carries its stderr.
util::Result<void> run_tool(const std::string& tool, const std::vector<std::string>& args);

}  // namespace chokepoint::test_support
