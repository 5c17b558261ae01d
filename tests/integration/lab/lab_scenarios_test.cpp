// Every scenario in both concurrency models: starts the real chokepoint-lab on port 0, sends a
// bounded number of requests, checks status and body, then checks a clean SIGTERM shutdown
// (exit 0 within about a second, temp data dir removed).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "integration/lab/lab_test_util.h"
#include "support/http.h"
#include "support/lab_process.h"

namespace chokepoint::lab_test {
namespace {

using test_support::http_get;
using test_support::http_get_keepalive;
using test_support::LabProcess;

struct Case {
  std::string name;
  std::vector<std::string> args;
  std::string body_prefix;
  bool needs_root = false;
  bool needs_upstream = false;
  std::size_t body_size = 0;  // when non-zero, the exact body size expected
  bool epoll_only = false;    // one event loop by design (proxy): --model threads is refused
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"none", {"--scenario", "none"}, "ok\n"},
      {"cpu", {"--scenario", "cpu", "--work-us", "200"}, "cpu key=k=1 hash="},
      {"cpu_cache", {"--scenario", "cpu", "--work-us", "200", "--cache", "on"}, "cpu key=k=1 "},
      {"serial", {"--scenario", "serial", "--work-us", "200"}, "serial key=k=1 hash="},
      {"serial_fixed",
       {"--scenario", "serial", "--work-us", "200", "--serial-workers", "4"},
       "serial key=k=1 "},
      {"lock", {"--scenario", "lock", "--work-us", "100"}, "lock key=k=1 shard=0 count="},
      {"lock_sharded",
       {"--scenario", "lock", "--work-us", "100", "--lock", "sharded"},
       "lock key=k=1 shard="},
      {"lock_rwlock",
       {"--scenario", "lock", "--work-us", "100", "--lock-type", "rwlock"},
       "lock key=k=1 shard=0 count="},
      {"lock_rwlock_sharded",
       {"--scenario", "lock", "--work-us", "100", "--lock-type", "rwlock", "--lock", "sharded"},
       "lock key=k=1 shard="},
      {"disk", {"--scenario", "disk"}, "disk committed seq="},
      {"disk_batch", {"--scenario", "disk", "--commit", "batch"}, "disk committed seq="},
      {"disk_async", {"--scenario", "disk", "--commit", "async"}, "disk committed seq="},
      {"fsync", {"--scenario", "fsync"}, "fsync committed seq="},
      {"pipeline", {"--scenario", "pipeline", "--work-us", "200"}, "pipeline key=k=1 hash="},
      {"pipeline_semaphore",
       {"--scenario", "pipeline", "--work-us", "200", "--handoff", "semaphore"},
       "pipeline key=k=1 hash="},
      {"pipeline_workers",
       {"--scenario", "pipeline", "--work-us", "200", "--pipeline-workers", "3"},
       "pipeline key=k=1 hash="},
      {"fsync_batch", {"--scenario", "fsync", "--commit", "batch"}, "fsync committed seq="},
      {"fsync_async", {"--scenario", "fsync", "--commit", "async"}, "fsync committed seq="},
      {"log", {"--scenario", "log"}, "log ok\n"},
      {"log_async", {"--scenario", "log", "--log", "async"}, "log ok\n"},
      {"log_off", {"--scenario", "log", "--log", "off"}, "log ok\n"},
      {"leak", {"--scenario", "leak"}, "leak retained_bytes="},
      {"leak_bounded", {"--scenario", "leak", "--bounded"}, "leak retained_bytes="},
      {"paging",
       {"--scenario", "paging", "--memory-limit", "16777216"},
       "paging reads=8 span_bytes=67108864 ",
       true},
      {"paging_bounded",
       {"--scenario", "paging", "--memory-limit", "16777216", "--bounded"},
       "paging reads=8 span_bytes=4194304 ",
       true},
      {"upstream",
       {"--scenario", "upstream"},
       "upstream mode=sequential calls=3 answers=3\n",
       false,
       true},
      {"upstream_batch",
       {"--scenario", "upstream", "--upstream-batch"},
       "upstream mode=batch calls=3 answers=3\n",
       false,
       true},
      {"upstream_concurrent",
       {"--scenario", "upstream", "--upstream-concurrent"},
       "upstream mode=concurrent calls=3 answers=3\n",
       false,
       true},
      {"upstream_cache",
       {"--scenario", "upstream", "--cache", "on"},
       "upstream mode=sequential calls=3 answers=3\n",
       false,
       true},
      {"proxy", {"--scenario", "proxy"}, "upstream delay_ms=2 batch=1\n", false, true, 0, true},
      {"proxy_cache",
       {"--scenario", "proxy", "--cache", "on"},
       "upstream delay_ms=2 batch=1\n",
       false,
       true,
       0,
       true},
      {"bandwidth",
       {"--scenario", "bandwidth", "--response-bytes", "100000"},
       "abcdefghijklmnopqrstuvwxyz",
       false,
       false,
       100000},
      {"backlog", {"--scenario", "backlog", "--accept-delay-ms", "5"}, "ok\n"},
  };
  return all;
}

struct Param {
  std::size_t case_index;
  std::string model;
};

class LabScenarioTest : public ::testing::TestWithParam<Param> {};

void expect_ok(const test_support::HttpResponse& r, const Case& c) {
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.rfind(c.body_prefix, 0), 0u) << "body: " << r.body.substr(0, 200);
  if (c.body_size != 0) {
    EXPECT_EQ(r.body.size(), c.body_size);
  }
}

TEST_P(LabScenarioTest, ServesRequestsAndShutsDownCleanly) {
  const Case& c = cases()[GetParam().case_index];
  const std::string& model = GetParam().model;
  if (c.needs_root && !is_root()) GTEST_SKIP() << c.name << " needs root for its memory cgroup";

  std::optional<LabProcess> upstream;
  std::vector<std::string> args = c.args;
  args.insert(args.end(), {"--port", "0", "--model", model});
  if (c.needs_upstream) {
    auto up = LabProcess::start({"--role", "upstream", "--delay-ms", "2", "--port", "0"});
    ASSERT_TRUE(up) << up.error().message;
    upstream.emplace(std::move(*up));
    args.insert(args.end(), {"--upstream", "127.0.0.1:" + std::to_string(upstream->port())});
  }
  std::time_t started = std::time(nullptr) - 1;  // ctime has one-second resolution on some fs
  auto lab = LabProcess::start(args);
  ASSERT_TRUE(lab) << lab.error().message;
  EXPECT_NE(lab->ready_line().find(" scenario=" + c.args[1] + " model=" + model + " workers="),
            std::string::npos)
      << lab->ready_line();
  EXPECT_NE(lab->ready_line().find(" pid=" + std::to_string(lab->pid())), std::string::npos);
  EXPECT_EQ(temp_data_dirs(lab->pid(), started).size(), 1u);

  auto health = http_get(lab->port(), "/health");
  ASSERT_TRUE(health) << health.error().message;
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  auto kept = http_get_keepalive(lab->port(), "/?k=1", 20);
  ASSERT_TRUE(kept) << kept.error().message;
  ASSERT_EQ(kept->size(), 20u);
  for (const auto& r : *kept) expect_ok(r, c);

  for (int i = 0; i < 5; ++i) {
    auto r = http_get(lab->port(), "/?k=1");
    ASSERT_TRUE(r) << r.error().message;
    expect_ok(*r, c);
    EXPECT_FALSE(r->keep_alive) << "Connection: close must be echoed";
  }

  pid_t pid = lab->pid();
  auto t0 = std::chrono::steady_clock::now();
  auto code = lab->stop();
  auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0) << lab->stderr_text();
  EXPECT_LT(stop_ms, 1500);
  EXPECT_TRUE(temp_data_dirs(pid, started).empty());
}

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (std::size_t i = 0; i < cases().size(); ++i) {
    for (const char* model : {"epoll", "threads"}) {
      if (cases()[i].epoll_only && std::string(model) == "threads") continue;
      out.push_back({i, model});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllScenarios, LabScenarioTest, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return cases()[info.param.case_index].name + "_" + info.param.model;
                         });

}  // namespace
}  // namespace chokepoint::lab_test
