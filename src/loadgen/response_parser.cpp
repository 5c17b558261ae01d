#include "loadgen/response_parser.h"

#include <fmt/format.h>

namespace chokepoint::loadgen {

ResponseParser::ResponseParser() {
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  reset(false);
}

void ResponseParser::reset(bool head_request) {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  state_ = State::kIncomplete;
  head_request_ = head_request;
  started_ = false;
  keep_alive_ = false;
  status_ = 0;
  body_bytes_ = 0;
  bad_status_ = false;
}

int ResponseParser::on_message_begin(http_parser* p) {
  static_cast<ResponseParser*>(p->data)->started_ = true;
  return 0;
}

int ResponseParser::on_headers_complete(http_parser* p) {
  auto* self = static_cast<ResponseParser*>(p->data);
  // http-parser accepts any 1 to 3 digit status ("HTTP/1.1 20"); RFC 9110 section 15 requires
  // three digits, so anything below 100 is not HTTP (found by tests/fuzz/loadgen/response_fuzz).
  if (p->status_code < 100) {
    self->bad_status_ = true;
    return -1;  // any value but 0, 1, 2 makes http_parser_execute fail (http_parser.h)
  }
  // Returning 1 tells http-parser the message has no body (http_parser.h, on_headers_complete).
  return self->head_request_ ? 1 : 0;
}

int ResponseParser::on_body(http_parser* p, const char*, std::size_t len) {
  static_cast<ResponseParser*>(p->data)->body_bytes_ += len;
  return 0;
}

int ResponseParser::on_message_complete(http_parser* p) {
  auto* self = static_cast<ResponseParser*>(p->data);
  // 1xx responses are interim (RFC 9110 section 15.2): the final response follows on the
  // same connection. 101 switches protocols, which we never ask for: treat it as final.
  if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) return 0;
  self->status_ = static_cast<int>(p->status_code);
  self->keep_alive_ = http_should_keep_alive(p) != 0;
  self->state_ = State::kComplete;
  // Stop here: bytes after the response belong to no request of ours.
  http_parser_pause(p, 1);
  return 0;
}

ResponseParser::State ResponseParser::feed(const char* data, std::size_t len,
                                           std::size_t* consumed) {
  *consumed = 0;
  if (state_ != State::kIncomplete) return state_;
  if (len > 0) started_ = true;
  const std::size_t n = http_parser_execute(&parser_, &settings_, data, len);
  *consumed = n;
  if (state_ == State::kComplete) return state_;
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK) state_ = State::kParseError;
  return state_;
}

ResponseParser::State ResponseParser::finish() {
  if (state_ != State::kIncomplete) return state_;
  if (!started_) {
    state_ = State::kEarlyEof;
    return state_;
  }
  // A zero-length execute signals EOF (http_parser.h): it completes an EOF-delimited body and
  // flags a truncated one as HPE_INVALID_EOF_STATE.
  http_parser_execute(&parser_, &settings_, nullptr, 0);
  if (state_ == State::kComplete) return state_;
  state_ = State::kEarlyEof;
  return state_;
}

std::string ResponseParser::error() const {
  if (state_ == State::kEarlyEof) {
    return started_ ? "connection closed in the middle of the response"
                    : "connection closed before any response byte";
  }
  if (bad_status_)
    return fmt::format("invalid status code {}: not three digits", parser_.status_code);
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  return fmt::format("{}: {}", http_errno_name(err), http_errno_description(err));
}

}  // namespace chokepoint::loadgen
