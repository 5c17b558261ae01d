// The Prometheus text writer (render/prometheus_text.h) and the agent's exposition.
#include <gtest/gtest.h>

#include <algorithm>

#include "monitor/agent.h"
#include "monitor/statsd.h"
#include "render/prometheus_text.h"

namespace chokepoint::monitor {
namespace {

TEST(PrometheusText, LabelValuesEscapeTheFormatsThreeCharacters) {
  EXPECT_EQ(render::prometheus_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(render::prometheus_label_value("tab\tok ünï"), "tab\tok ünï");
  // Invalid UTF-8 becomes U+FFFD: the format requires UTF-8.
  EXPECT_EQ(render::prometheus_label_value("x\xff"), "x\xef\xbf\xbd");
}

TEST(PrometheusText, NumbersAndNames) {
  EXPECT_EQ(render::prometheus_number(0.25), "0.25");
  EXPECT_EQ(render::prometheus_number(1e21), "1e+21");
  EXPECT_EQ(render::prometheus_number(3), "3");
  EXPECT_EQ(render::prometheus_number(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(render::prometheus_number(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_TRUE(render::valid_metric_name("chokepoint_verdict"));
  EXPECT_FALSE(render::valid_metric_name("9x"));
  EXPECT_FALSE(render::valid_label_name("__name__"));
  EXPECT_FALSE(render::valid_label_name("a:b"));
}

TEST(PrometheusText, Writer) {
  render::ExpositionWriter w;
  w.family("x_total", "counter", "Help with \\ and\nnewline");
  w.sample("x_total", {{"target", "a\"b"}, {"state", "disk"}}, 1.5);
  w.sample("x_total", {}, 2);
  EXPECT_EQ(w.text(),
            "# HELP x_total Help with \\\\ and\\nnewline\n# TYPE x_total counter\n"
            "x_total{target=\"a\\\"b\",state=\"disk\"} 1.5\nx_total 2\n");
}

TEST(AgentExposition, OneVerdictSeriesPerTargetAndNoThreadNames) {
  TargetState t;
  t.label = "name:evil\"}\nchokepoint_verdict{target=\"x\"} 1";
  t.up = true;
  t.has_window = true;
  t.windows_ok = 3;
  t.thread_seconds[static_cast<std::size_t>(model::Resource::kDisk)] = 12.5;
  t.diagnosis.verdict = analysis::Verdict::kDisk;
  analysis::Bottleneck b;
  b.resource = analysis::Verdict::kDisk;
  b.kind = analysis::BottleneckKind::kFsync;
  b.share = 0.8;
  t.diagnosis.bottlenecks.push_back(b);
  TargetState down;
  down.label = "service:gone";
  down.windows_failed = 2;
  const std::string text = agent_exposition({t, down}, AgentSelfStats{1.5, 4096, 1e9});
  // The hostile label stays inside its quotes: every line is a comment or NAME{...} VALUE.
  std::size_t verdict_lines = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t nl = text.find('\n', at);
    ASSERT_NE(nl, std::string::npos);
    const std::string line = text.substr(at, nl - at);
    if (line.rfind("chokepoint_verdict{", 0) == 0) ++verdict_lines;
    at = nl + 1;
  }
  EXPECT_EQ(verdict_lines, 1u);
  EXPECT_NE(text.find("chokepoint_verdict{target=\"name:evil\\\"}\\nchokepoint_verdict{target="
                      "\\\"x\\\"} 1\",resource=\"disk\",kind=\"fsync\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("chokepoint_thread_seconds_total{target=\"service:gone\",state=\"disk\"} 0\n"),
      std::string::npos);
  EXPECT_NE(text.find("chokepoint_target_up{target=\"service:gone\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("chokepoint_windows_total{target=\"service:gone\",outcome=\"failed\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("chokepoint_agent_resident_memory_bytes 4096\n"), std::string::npos);
}

TEST(Statsd, NamesAreSanitisedAndDatagramsBounded) {
  EXPECT_EQ(statsd_name("name:ev\"il}\n{x.y|z"), "name_ev_il___x_y_z");
  EXPECT_EQ(statsd_name(""), "_");
  EXPECT_EQ(statsd_name(std::string(100, 'a')).size(), 64u);
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i)
    lines.push_back("chokepoint.host.thread_seconds.on_cpu:" + std::to_string(i) + "|c");
  lines.push_back(std::string(kMaxDatagramBytes + 1, 'x'));
  lines.push_back(std::string(kMaxDatagramBytes, 'y'));
  std::uint64_t too_long = 0;
  const auto datagrams = pack_datagrams(lines, kMaxDatagramBytes, &too_long);
  EXPECT_EQ(too_long, 1u);
  std::size_t kept = 0;
  for (const auto& d : datagrams) {
    EXPECT_LE(d.size(), kMaxDatagramBytes);
    EXPECT_NE(d.back(), '\n');
    kept += static_cast<std::size_t>(std::count(d.begin(), d.end(), '\n')) + 1;
  }
  EXPECT_EQ(kept, 201u);
  EXPECT_GE(datagrams.size(), 6u);
  TargetState t;
  t.label = "pid:1";
  t.up = true;
  t.diagnosis.verdict = analysis::Verdict::kCpu;
  model::TimeSplit split;
  split[model::Resource::kOnCpu] = 1'500'000'000;
  const auto out = statsd_lines(t, split);
  EXPECT_NE(std::find(out.begin(), out.end(), "chokepoint.pid_1.thread_seconds.on_cpu:1.5|c"),
            out.end());
  EXPECT_NE(std::find(out.begin(), out.end(), "chokepoint.pid_1.share.on_cpu:1|g"), out.end());
  EXPECT_NE(std::find(out.begin(), out.end(), "chokepoint.pid_1.verdict.cpu:1|g"), out.end());
}

}  // namespace
}  // namespace chokepoint::monitor
