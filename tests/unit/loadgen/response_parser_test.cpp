#include "loadgen/response_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace chokepoint::loadgen {
namespace {

using State = ResponseParser::State;

State feed_all(ResponseParser& p, const std::string& s, std::size_t* consumed = nullptr) {
  std::size_t c = 0;
  const State st = p.feed(s.data(), s.size(), &c);
  if (consumed) *consumed = c;
  return st;
}

TEST(ResponseParser, ContentLengthResponse) {
  ResponseParser p;
  p.reset(false);
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  std::size_t consumed = 0;
  EXPECT_EQ(feed_all(p, r, &consumed), State::kComplete);
  EXPECT_EQ(consumed, r.size());
  EXPECT_EQ(p.status(), 200);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(p.body_bytes(), 5u);
}

TEST(ResponseParser, ByteByByteChunked) {
  ResponseParser p;
  p.reset(false);
  const std::string r =
      "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  State st = State::kIncomplete;
  for (char c : r) {
    std::size_t used = 0;
    st = p.feed(&c, 1, &used);
    if (st != State::kIncomplete) break;
  }
  EXPECT_EQ(st, State::kComplete);
  EXPECT_EQ(p.status(), 503);
  EXPECT_EQ(p.body_bytes(), 5u);
}

TEST(ResponseParser, HeadHasNoBody) {
  ResponseParser p;
  p.reset(true);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), State::kComplete);
}

TEST(ResponseParser, InterimResponseIsSkipped) {
  ResponseParser p;
  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
            State::kComplete);
  EXPECT_EQ(p.status(), 204);
}

TEST(ResponseParser, ConnectionCloseAndBodyUntilEof) {
  ResponseParser p;
  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome body"),
            State::kIncomplete);
  EXPECT_EQ(p.finish(), State::kComplete);
  EXPECT_FALSE(p.keep_alive());
}

TEST(ResponseParser, Errors) {
  ResponseParser p;
  p.reset(false);
  EXPECT_EQ(feed_all(p, "garbage\r\n\r\n"), State::kParseError);
  EXPECT_FALSE(p.error().empty());

  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            State::kParseError);

  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), State::kIncomplete);
  EXPECT_EQ(p.finish(), State::kEarlyEof);

  p.reset(false);
  EXPECT_EQ(p.finish(), State::kEarlyEof);
  EXPECT_FALSE(p.started());

  // Endless headers hit http-parser's 80 KiB header limit.
  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\n"), State::kIncomplete);
  State st = State::kIncomplete;
  const std::string h = "X-Filler: " + std::string(1000, 'a') + "\r\n";
  for (int i = 0; i < 200 && st == State::kIncomplete; ++i) st = feed_all(p, h);
  EXPECT_EQ(st, State::kParseError);
}

// Regression: http-parser takes "HTTP/1.1 20" as status 20; found by loadgen_response_fuzz.
TEST(ResponseParser, TwoDigitStatusIsAParseError) {
  ResponseParser p;
  p.reset(false);
  EXPECT_EQ(feed_all(p, "HTTP/1.1 20\r\n\r\n0 OK\r\nContent-Length: 10\r\n\r\nabc"),
            State::kParseError);
  EXPECT_NE(p.error().find("status"), std::string::npos) << p.error();
}

TEST(ResponseParser, TrailingBytesAreNotConsumed) {
  ResponseParser p;
  p.reset(false);
  std::size_t consumed = 0;
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
  EXPECT_EQ(feed_all(p, r, &consumed), State::kComplete);
  EXPECT_EQ(consumed, r.size() - 5);
}

}  // namespace
}  // namespace chokepoint::loadgen
