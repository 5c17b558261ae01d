#include "lab/http.h"

#include <gtest/gtest.h>

#include <string>

namespace chokepoint::lab {
namespace {

ParseResult parse(const std::string& s, Request& req) {
  return parse_request(s, req);
}

TEST(LabHttpParser, ParsesSimpleGet) {
  Request req;
  std::string in = "GET /?k=123&x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
  ParseResult r = parse(in, req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/?k=123&x=1");
  EXPECT_EQ(req.path, "/");
  EXPECT_EQ(req.query, "k=123&x=1");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(query_param(req.query, "k"), "123");
  EXPECT_EQ(query_param(req.query, "x"), "1");
  EXPECT_EQ(query_param(req.query, "y"), "");
}

TEST(LabHttpParser, IncompleteUntilBlankLine) {
  Request req;
  std::string full = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(parse(full.substr(0, n), req).status, ParseStatus::kIncomplete) << n;
  }
  EXPECT_EQ(parse(full, req).status, ParseStatus::kComplete);
}

TEST(LabHttpParser, ConnectionHeaderAndVersion) {
  Request req;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", req).status,
            ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", req).status, ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n", req).status,
            ParseStatus::kComplete);
  EXPECT_TRUE(req.keep_alive);
}

TEST(LabHttpParser, BodyIsConsumedWithTheRequest) {
  Request req;
  std::string in = "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /health HTTP/1.1\r\n\r\n";
  ParseResult r = parse(in, req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(req.content_length, 5u);
  EXPECT_EQ(in.substr(r.consumed, 4), "GET ");
  EXPECT_EQ(parse(in.substr(0, r.consumed - 1), req).status, ParseStatus::kIncomplete);
  std::string rest = in.substr(r.consumed);  // req's views point into the parsed buffer
  ParseResult second = parse(rest, req);
  ASSERT_EQ(second.status, ParseStatus::kComplete);
  EXPECT_EQ(req.path, "/health");
}

TEST(LabHttpParser, RejectsGarbage) {
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET http://x/ HTTP/1.1\r\n\r\n",
      "GET / HTTX/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nName : x\r\n\r\n",
      "GET / HTTP/1.1\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\n\n",
  };
  for (const char* b : bad) {
    Request req;
    EXPECT_EQ(parse(b, req).status, ParseStatus::kBad) << b;
  }
  Request req;
  EXPECT_EQ(parse(std::string("G\0T / HTTP/1.1\r\n\r\n", 18), req).status, ParseStatus::kBad);
}

TEST(LabHttpParser, LimitsAndUnsupportedFeatures) {
  Request req;
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a');
  EXPECT_EQ(parse(huge, req).status, ParseStatus::kTooLarge);  // before the head even ends
  std::string many = "GET / HTTP/1.1\r\n";
  for (std::size_t i = 0; i <= kMaxHeaders; ++i) many += "X" + std::to_string(i) + ": y\r\n";
  EXPECT_EQ(parse(many + "\r\n", req).status, ParseStatus::kTooLarge);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", req).status,
            ParseStatus::kBodyTooLarge);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", req).status,
            ParseStatus::kNotImplemented);
  EXPECT_EQ(parse("GET / HTTP/2.0\r\n\r\n", req).status, ParseStatus::kNotImplemented);
  EXPECT_EQ(http_status_for(ParseStatus::kTooLarge), 431);
  EXPECT_EQ(http_status_for(ParseStatus::kBodyTooLarge), 413);
  EXPECT_EQ(http_status_for(ParseStatus::kBad), 400);
}

TEST(LabHttpParser, SkipsLeadingEmptyLines) {
  Request req;
  std::string in = "\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
  ParseResult r = parse(in, req);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(req.path, "/x");
}

TEST(LabHttpResponse, HeadHasLengthAndClose) {
  std::string out;
  append_response_head(out, 200, 3, true);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n");
  out.clear();
  append_response_head(out, 404, 10, false);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
            "Connection: close\r\n\r\n");
}

// The response-head parser HttpClient and the proxy share.
TEST(LabHttpResponseHead, ParsesStatusLengthAndConnection) {
  ResponseHead h;
  const std::string in =
      "HTTP/1.1 200 OK\r\ncontent-length:  5\r\nConnection: keep-alive, Close\r\n\r\nhello";
  ASSERT_EQ(parse_response_head(in, h), ResponseParseStatus::kComplete);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_EQ(h.head_bytes, in.size() - 5);
  EXPECT_FALSE(h.keep_alive);

  ASSERT_EQ(parse_response_head("HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", h),
            ResponseParseStatus::kComplete);
  EXPECT_EQ(h.status, 502);
  EXPECT_TRUE(h.keep_alive);
}

TEST(LabHttpResponseHead, IncompleteBadAndUnframed) {
  ResponseHead h;
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", h),
            ResponseParseStatus::kIncomplete);
  EXPECT_EQ(parse_response_head("", h), ResponseParseStatus::kIncomplete);
  EXPECT_EQ(parse_response_head("SSH-2.0-OpenSSH\r\n\r\n", h), ResponseParseStatus::kBad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\n", h),
            ResponseParseStatus::kBad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1z\r\n\r\n", h),
            ResponseParseStatus::kBad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", h),
            ResponseParseStatus::kNoLength);
  // A head that never ends is bounded.
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nX: " + std::string(kMaxHeadBytes, 'a'), h),
            ResponseParseStatus::kBad);
}

}  // namespace
}  // namespace chokepoint::lab
