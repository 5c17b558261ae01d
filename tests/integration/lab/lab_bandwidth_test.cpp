// The bandwidth scenario behind a real shaped link: the lab runs in a network namespace of its
// own, reached over a veth pair whose lab side has a tbf qdisc (20 mbit/s). The client measures
// throughput from the root namespace; it must be near the tbf rate and far below the unshaped
// rate. Needs root and `ip netns`; skips otherwise. Traffic goes only to the addresses this test
// creates (10.200.N.0/30), and the namespace (with both veth ends) is deleted at the end.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "integration/lab/lab_test_util.h"
#include "lab/http_client.h"
#include "support/lab_process.h"
#include "support/netns.h"

namespace chokepoint::lab_test {
namespace {

using test_support::default_lab_binary;
using test_support::LabProcess;

// Downloads the 1 MiB body repeatedly for about `seconds`; returns bytes per second.
double measure_bytes_per_sec(const std::string& host, std::uint16_t port, double seconds) {
  lab::HttpClient client(host, port);
  auto t0 = std::chrono::steady_clock::now();
  double bytes = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    auto r = client.get("/", 10000);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return -1;
    EXPECT_EQ(r->status, 200);
    bytes += static_cast<double>(r->body.size());
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return bytes / elapsed;
}

TEST(LabBandwidth, TbfShapedLinkLimitsThroughput) {
  if (std::string why = test_support::netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto net = test_support::TestNetns::create();
  ASSERT_TRUE(net) << "cannot create a network namespace: " << net.error().message;
  const std::string lab_ip = net->ns_ip();

  // `ip netns exec` execs the lab in place, so the pid we signal is the lab's.
  auto lab = LabProcess::start(
      net->exec_args(default_lab_binary(), {"--scenario", "bandwidth", "--bind", "0.0.0.0",
                                            "--port", "0", "--response-bytes", "1048576"}),
      test_support::sbin_tool("ip"));
  ASSERT_TRUE(lab) << lab.error().message;

  double unshaped = measure_bytes_per_sec(lab_ip, lab->port(), 0.5);
  // Shape the lab's egress (its responses): 20 mbit/s = 2.5 MB/s.
  auto shaped_ok = net->shape_egress("20mbit");
  ASSERT_TRUE(shaped_ok) << shaped_ok.error().message;
  double shaped = measure_bytes_per_sec(lab_ip, lab->port(), 2.5);
  constexpr double kRate = 20e6 / 8;
  RecordProperty("unshaped_bytes_per_sec", std::to_string(static_cast<long long>(unshaped)));
  RecordProperty("shaped_bytes_per_sec", std::to_string(static_cast<long long>(shaped)));
  EXPECT_GT(shaped, 0.75 * kRate) << "shaped " << shaped << " B/s";
  EXPECT_LT(shaped, 1.10 * kRate) << "shaped " << shaped << " B/s";
  EXPECT_GT(unshaped, 4 * shaped) << "unshaped " << unshaped << " B/s";
  auto code = lab->stop();
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace chokepoint::lab_test
