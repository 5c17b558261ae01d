// Targets as words (monitor/target.h) and --listen addresses (monitor/metrics_server.h).
#include "monitor/target.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "monitor/metrics_server.h"

namespace chokepoint::monitor {
namespace {

using Kind = collect::sampler::TargetSpec::Kind;

TEST(Target, ParsesEveryKind) {
  EXPECT_EQ(parse_target("host")->spec.kind, Kind::kHost);
  auto pid = parse_target("pid:1234");
  ASSERT_TRUE(pid);
  EXPECT_EQ(pid->spec.kind, Kind::kPid);
  EXPECT_EQ(pid->spec.pid, 1234);
  auto name = parse_target("name:a b:c");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->spec.name, "a b:c");
  EXPECT_EQ(parse_target("cgroup:/sys/fs/cgroup/x")->spec.cgroup_path, "/sys/fs/cgroup/x");
  EXPECT_EQ(parse_target("service:nginx")->service, "nginx.service");
  EXPECT_EQ(parse_target("service:app.scope")->service, "app.scope");
}

TEST(Target, RejectsBadOnes) {
  for (const char* bad :
       {"", "hosts", "pid:", "pid:0", "pid:-1", "pid:12x", "pid:99999999999",
        "cgroup:relative/path", "service:../x", "service:a/b", "proc:1", "name:"}) {
    auto t = parse_target(bad);
    EXPECT_FALSE(t) << bad;
    if (!t) {
      EXPECT_FALSE(t.error().hint.empty());
    }
  }
}

TEST(Target, ServiceResolvesToItsCgroupWhereverSystemdKeepsIt) {
  const std::string root = ::testing::TempDir() + "/cgroot";
  std::filesystem::remove_all(root);
  auto t = parse_target("service:web");
  ASSERT_TRUE(t);
  auto none = resolve(*t, root);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("not running"), std::string::npos);
  // The hybrid layout (v1 controllers, v2 in unified/), as on this machine.
  std::filesystem::create_directories(root + "/unified/system.slice/web.service");
  std::ofstream(root + "/unified/system.slice/web.service/cgroup.procs") << "1\n";
  auto found = resolve(*t, root);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->cgroup_path, root + "/unified/system.slice/web.service");
  std::filesystem::remove_all(root);
}

TEST(Listen, ParsesHostAndPort) {
  auto a = parse_listen("127.0.0.1:9464");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  EXPECT_EQ(parse_listen("0.0.0.0:0")->port, 0);
  for (const char* bad : {"", "9464", ":9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:80x", "[::1]:9464"}) {
    EXPECT_FALSE(parse_listen(bad)) << bad;
  }
}

}  // namespace
}  // namespace chokepoint::monitor
