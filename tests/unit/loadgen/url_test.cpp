#include "loadgen/url.h"

#include <gtest/gtest.h>

namespace chokepoint::loadgen {
namespace {

TEST(Url, ParsesHostPortAndTarget) {
  auto u = parse_url("http://127.0.0.1:8080/a/b?x=1");
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/a/b?x=1");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");

  auto d = parse_url("HTTP://localhost");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->port, 80);
  EXPECT_EQ(d->target, "/");
  EXPECT_EQ(d->host_header, "localhost");

  auto q = parse_url("http://127.0.0.1:81?x");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->target, "/?x");

  auto v6 = parse_url("http://[::1]:9000/");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_header, "[::1]:9000");
  EXPECT_EQ(v6->authority(), "[::1]:9000");
}

TEST(Url, RejectsMalformedWithHint) {
  for (const char* bad :
       {"", "127.0.0.1:8080", "ftp://127.0.0.1/", "http://", "http://:80/", "http://h:/",
        "http://h:99999/", "http://h:0/", "http://h:8x/", "http://[::1/", "http://[zz]:1/",
        "http://u@h/", "http://h/a b", "http://h/#frag", "http://h\x01/", "http://h%/"}) {
    auto u = parse_url(bad);
    EXPECT_FALSE(u.has_value()) << "accepted: " << bad;
    if (!u.has_value()) {
      EXPECT_FALSE(u.error().hint.empty()) << bad;
    }
  }
  auto tls = parse_url("https://127.0.0.1/");
  ASSERT_FALSE(tls.has_value());
  EXPECT_NE(tls.error().message.find("https"), std::string::npos);
}

TEST(Url, ResolvesNumericWithoutDns) {
  auto u = parse_url("http://127.0.0.1:1234/");
  ASSERT_TRUE(u.has_value());
  auto ep = resolve(*u);
  ASSERT_TRUE(ep.has_value()) << ep.error().message;
  EXPECT_EQ(ep->text, "127.0.0.1:1234");
  EXPECT_EQ(ep->family, AF_INET);
}

}  // namespace
}  // namespace chokepoint::loadgen
