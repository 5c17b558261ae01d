#include "report/page.h"

#include <gtest/gtest.h>

#include "report/timeline.h"

namespace chokepoint::report {
namespace {

TEST(ScriptJson, NoStringCanCloseTheScriptBlockAndTheValueIsTheSame) {
  const std::string hostile =
      "</script><img src=x onerror=alert(1)> <!-- & \xe2\x80\xa8 \xe2\x80\xa9 \"q\"\n\xff";
  const nlohmann::json j = {{"name", hostile}};
  const std::string text = script_json(j);
  EXPECT_EQ(text.find('<'), std::string::npos);
  EXPECT_EQ(text.find('>'), std::string::npos);
  EXPECT_EQ(text.find('&'), std::string::npos);
  EXPECT_EQ(text.find("\xe2\x80\xa8"), std::string::npos);
  EXPECT_EQ(text.find("\xe2\x80\xa9"), std::string::npos);
  const nlohmann::json back = nlohmann::json::parse(text);
  // The invalid byte became U+FFFD; everything else is the same string.
  EXPECT_EQ(
      back["name"].get<std::string>(),
      "</script><img src=x onerror=alert(1)> <!-- & \xe2\x80\xa8 \xe2\x80\xa9 \"q\"\n\xef\xbf\xbd");
}

TEST(ReportHtml, OnePageWithAStrictPolicyAndEveryScriptByNonce) {
  const std::string page = report_html({{"recordings", nlohmann::json::array()}}, "t <b>");
  EXPECT_NE(page.find("<title>t &lt;b&gt;</title>"), std::string::npos);
  const auto csp = page.find("Content-Security-Policy");
  ASSERT_NE(csp, std::string::npos);
  const std::string policy = page.substr(csp, page.find('>', csp) - csp);
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(policy.find("unsafe"), std::string::npos);
  const auto nonce_at = policy.find("'nonce-");
  ASSERT_NE(nonce_at, std::string::npos);
  const std::string nonce =
      policy.substr(nonce_at + 7, policy.find('\'', nonce_at + 7) - nonce_at - 7);
  EXPECT_EQ(nonce.size(), 24u);
  // Every executable script carries the nonce; the data block is JSON, which never runs.
  std::size_t scripts = 0;
  for (auto at = page.find("<script"); at != std::string::npos; at = page.find("<script", at + 1)) {
    const std::string tag = page.substr(at, page.find('>', at) - at);
    if (tag.find("application/json") == std::string::npos) {
      EXPECT_NE(tag.find("nonce=\"" + nonce + "\""), std::string::npos) << tag;
      ++scripts;
    }
  }
  EXPECT_EQ(scripts, 2u);  // uPlot and the page's own
  // Nothing is fetched: no stylesheet links, imports or external scripts.
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  // Another page, another nonce.
  EXPECT_EQ(report_html({}, "t").find(nonce), std::string::npos);
}

// Stacks over time (chokepoint record): each recorded profile is drawn in its own div, numbered
// in the order of the recording's recorded_flamegraphs, its hostile frame names escaped.
TEST(ReportHtml, RecordedFlameGraphsAreDrawnInTheirOrder) {
  profile::Profile on, off;
  on.title = "on";
  on.stacks.push_back({{{"lab (1)", profile::FrameKind::kProcess, "", "", 0, ""},
                        {"<img src=x onerror=alert(1)>", profile::FrameKind::kUser, "", "", 0, ""}},
                       7,
                       7});
  off = on;
  off.off_cpu = true;
  off.weight = profile::Weight::kNanoseconds;
  const std::string page =
      report_html({{"recordings", nlohmann::json::array()}}, "t", {}, {{&on, nullptr, &off}});
  const auto first =
      page.find("class=\"flamegraph recorded\" data-recording=\"0\" data-graph=\"0\"");
  const auto second =
      page.find("class=\"flamegraph recorded\" data-recording=\"0\" data-graph=\"1\"");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);  // the null one takes no number
  EXPECT_LT(first, second);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_NE(page.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
}

TEST(VerdictWindow, TheColumnsOfTheVerdictMergedWhereAdjacent) {
  const nlohmann::json timeline = {{"column_s", 2.0},
                                   {"columns", {0.0, 2.0, 4.0, 6.0, 8.0}},
                                   {"verdicts",
                                    {nullptr,
                                     {{"verdict", "cpu"}, {"kind", "saturated"}},
                                     {{"verdict", "cpu"}, {"kind", "contended"}},
                                     {{"verdict", "disk"}, {"kind", "fsync"}},
                                     {{"verdict", "cpu"}, {"kind", "saturated"}}}}};
  const VerdictWindow any = verdict_window(timeline, "cpu", "");
  EXPECT_EQ(any.columns, 3u);
  EXPECT_EQ(any.of_columns, 5u);
  ASSERT_EQ(any.spans_s.size(), 2u);
  EXPECT_EQ(any.spans_s[0], std::make_pair(2.0, 6.0));
  EXPECT_EQ(any.spans_s[1], std::make_pair(8.0, 10.0));  // the last column: column_s long
  const VerdictWindow saturated = verdict_window(timeline, "cpu", "saturated");
  EXPECT_EQ(saturated.columns, 2u);
  EXPECT_TRUE(verdict_window(nlohmann::json::object(), "cpu", "").spans_s.empty());
}

}  // namespace
}  // namespace chokepoint::report
