#include "report/page.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace chokepoint::report
