// The status parsers on replies captured from the real servers (tests/fixtures/probes/: Redis
// 7.0 INFO everything, nginx 1.22 stub_status, HAProxy 2.6 show stat) and on broken ones.
#include "collect/probes/stats_text.h"

#include <gtest/gtest.h>

#include "support/files.h"

namespace chokepoint::collect::probes {
namespace {

std::string fixture(const std::string& name) {
  return test_support::read_file(std::string(CHOKEPOINT_FIXTURES_DIR) + "/probes/" + name);
}

TEST(RedisInfo, ReadsFieldsAndCommandStatsOfARealReply) {
  const std::string text = fixture("redis7_info.txt");
  ASSERT_FALSE(text.empty());
  const RedisInfo info = parse_redis_info(text);
  EXPECT_EQ(info.text("redis_version").value_or(""), "7.0.15");
  EXPECT_EQ(info.text("maxmemory_policy").value_or(""), "noeviction");
  EXPECT_EQ(info.count("keyspace_hits"), 1u);
  EXPECT_EQ(info.count("keyspace_misses"), 1u);
  EXPECT_EQ(info.count("maxmemory"), 0u);
  ASSERT_TRUE(info.number("mem_fragmentation_ratio"));
  ASSERT_TRUE(info.commands.count("get"));
  EXPECT_EQ(info.commands.at("get").calls, 2u);
  EXPECT_EQ(info.commands.at("get").usec, 10u);
  // Section headers are not fields; values keep their text.
  EXPECT_FALSE(info.text("# Server"));
  EXPECT_EQ(info.text("db0").value_or(""), "keys=1,expires=0,avg_ttl=0");
}

TEST(RedisInfo, ToleratesBrokenLinesAndRejectsNonNumbers) {
  const RedisInfo info = parse_redis_info(
      "no colon here\r\n:empty "
      "name\r\nhits:0x10\r\nratio:1e3\r\nneg:-1\r\nok:12\ncmdstat_x:junk\n");
  EXPECT_FALSE(info.count("hits"));
  EXPECT_FALSE(info.number("ratio"));
  EXPECT_FALSE(info.count("neg"));
  EXPECT_EQ(info.count("ok"), 12u);
  ASSERT_TRUE(info.commands.count("x"));
  EXPECT_EQ(info.commands.at("x").calls, 0u);
  EXPECT_EQ(parse_redis_info("").fields.size(), 0u);
}

TEST(RedisInfo, KeepsAtMostTheCap) {
  std::string many;
  for (std::size_t i = 0; i < kMaxFields + 100; ++i) many += "f" + std::to_string(i) + ":1\n";
  EXPECT_EQ(parse_redis_info(many).fields.size(), kMaxFields);
}

TEST(NginxStatus, ReadsARealPage) {
  auto s = parse_nginx_status(fixture("nginx_stub_status.txt"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->active, 2u);
  EXPECT_EQ(s->accepts, 2u);
  EXPECT_EQ(s->handled, 2u);
  EXPECT_EQ(s->requests, 2u);
  EXPECT_EQ(s->reading, 0u);
  EXPECT_EQ(s->writing, 1u);
  EXPECT_EQ(s->waiting, 1u);
}

TEST(NginxStatus, APageThatIsNotStubStatusIsAnErrorWithAHint) {
  for (const char* page : {"", "<html>hello</html>", "Active connections: 1\n",
                           "Active connections: x\nserver accepts handled requests\n 1 2 3\n"
                           "Reading: 0 Writing: 1 Waiting: 0\n",
                           "Active connections: 1\nserver accepts handled requests\n 1 2\n"
                           "Reading: 0 Writing: 1 Waiting: 0\n"}) {
    auto s = parse_nginx_status(page);
    ASSERT_FALSE(s) << page;
    EXPECT_NE(s.error().hint.find("stub_status"), std::string::npos);
  }
}

TEST(HaproxyCsv, ReadsARealShowStat) {
  auto rows = parse_haproxy_csv(fixture("haproxy26_show_stat.csv"));
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);  // FRONTEND web, server web1, BACKEND app
  EXPECT_EQ((*rows)[0].proxy, "web");
  EXPECT_TRUE((*rows)[0].is_frontend());
  EXPECT_EQ((*rows)[0].sessions_total, 1u);
  EXPECT_EQ((*rows)[0].requests_total, 1u);
  EXPECT_EQ((*rows)[1].service, "web1");
  EXPECT_EQ((*rows)[1].sessions_limit, 1u);
  EXPECT_EQ((*rows)[1].status, "no check");
  EXPECT_TRUE((*rows)[2].is_backend());
  EXPECT_EQ((*rows)[2].sessions_total, 1u);
}

TEST(HaproxyCsv, ColumnsAreFoundByTheHeaderNotByPosition) {
  auto rows = parse_haproxy_csv("# svname,pxname\nweb1,app\n");
  ASSERT_FALSE(rows);  // pxname must come first, as HAProxy writes it
  rows = parse_haproxy_csv("# pxname,svname,qcur,extra\napp,BACKEND,7\napp,s1,x,1,2,3\n");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].queue_current, 7u);
  EXPECT_EQ((*rows)[1].queue_current, 0u);  // "x" is not a count
}

TEST(HaproxyCsv, NoHeaderIsAnErrorWithAHint) {
  for (const char* csv : {"", "web,FRONTEND,0\n", "Unknown command\n"}) {
    auto rows = parse_haproxy_csv(csv);
    ASSERT_FALSE(rows) << csv;
    EXPECT_NE(rows.error().hint.find("stats socket"), std::string::npos);
  }
}

TEST(ParseCount, DecimalDigitsOnly) {
  EXPECT_EQ(parse_count("0"), 0u);
  EXPECT_EQ(parse_count("18446744073709551615"), 18446744073709551615u);
  for (const char* bad : {"", "-1", "0x10", "1e3", " 1", "1 ", "18446744073709551616", "+1"}) {
    EXPECT_FALSE(parse_count(bad)) << bad;
  }
}

}  // namespace
}  // namespace chokepoint::collect::probes
