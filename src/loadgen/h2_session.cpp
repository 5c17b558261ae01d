#include "loadgen/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "loadgen/given_headers.h"

namespace chokepoint::loadgen {

H2Fields prepare_h2_fields(const LoadOptions& o, const RequestTemplate& r) {
  const GivenHeaders given = given_headers(o.headers);
  H2Fields fields = {{":method", o.method},
                     {":scheme", "http"},
                     {":authority", r.url.host_header},
                     {":path", r.url.target}};
  if (!given.user_agent) fields.emplace_back("user-agent", "chokepoint-load");
  for (const auto& h : o.headers) {
    const auto colon = h.find(':');
    std::string name = h.substr(0, colon);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    // Connection-specific fields are forbidden in HTTP/2 (RFC 9113 section 8.2.2).
    if (name == "connection" || name == "keep-alive" || name == "upgrade" ||
        name == "proxy-connection") {
      continue;
    }
    fields.emplace_back(std::move(name), std::move(value));
  }
  if (!o.body.empty()) {
    if (!given.content_type) fields.emplace_back("content-type", "application/octet-stream");
    fields.emplace_back("content-length", std::to_string(o.body.size()));
  }
  return fields;
}

namespace {

int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
              std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
              void* user_data) {
  auto* s = static_cast<H2Session::Stream*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != s->id) return 0;
  if (namelen != 7 || std::memcmp(name, ":status", 7) != 0) return 0;
  // nghttp2 has already checked that :status is three digits (RFC 9113 section 8.3.2).
  int status = 0;
  for (std::size_t i = 0; i < valuelen; ++i) status = status * 10 + (value[i] - '0');
  if (status >= 200 || status == 101) s->status = status;  // 1xx are interim
  return 0;
}

int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                    void* user_data) {
  auto* s = static_cast<H2Session::Stream*>(user_data);
  if (stream_id == s->id) {
    s->closed = true;
    s->error = error_code;
  }
  return 0;
}

ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                  std::uint32_t* flags, nghttp2_data_source*, void* user_data) {
  auto* s = static_cast<H2Session::Stream*>(user_data);
  const std::size_t n = std::min(length, s->body->size() - s->body_off);
  std::copy_n(s->body->data() + s->body_off, n, buf);
  s->body_off += n;
  if (s->body_off == s->body->size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace

H2Session::~H2Session() {
  nghttp2_session_del(session_);
}

std::int32_t H2Session::submit(const H2Fields& fields, const std::string& traceparent,
                               const std::string& body) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size() + 1);
  auto add = [&nva](const std::string& name, const std::string& value) {
    nva.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                             reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())),
                             name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  for (const auto& [name, value] : fields) add(name, value);
  static const std::string kTraceparent = "traceparent";
  add(kTraceparent, traceparent);
  nghttp2_data_provider provider{};
  provider.read_callback = read_body;
  stream_.body = &body;
  stream_.body_off = 0;
  stream_.closed = false;
  stream_.status = 0;
  stream_.error = 0;
  // nghttp2 copies the fields (NGHTTP2_NV_FLAG_NONE), so the caller's strings may go.
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                                 body.empty() ? nullptr : &provider, nullptr);
  if (id >= 0) stream_.id = id;
  return id;
}

int H2Session::drain(std::string& out) {
  for (;;) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return static_cast<int>(n);
    if (n == 0) return 0;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
}

ssize_t H2Session::receive(const char* data, std::size_t len) {
  return nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), len);
}

bool H2Session::stream_protocol_error() const {
  return stream_.error == NGHTTP2_PROTOCOL_ERROR;
}

std::string H2Session::stream_error_text() const {
  return nghttp2_http2_strerror(stream_.error);
}

bool H2Session::wants_read() const {
  return nghttp2_session_want_read(session_) != 0;
}

bool H2Session::wants_write() const {
  return nghttp2_session_want_write(session_) != 0;
}

const char* H2Session::error_text(int code) {
  return nghttp2_strerror(code);
}

util::Result<H2Client> H2Client::create() {
  H2Client client;
  if (nghttp2_session_callbacks_new(&client.callbacks_) != 0) {
    return util::Error{"nghttp2_session_callbacks_new failed", ""};
  }
  nghttp2_session_callbacks_set_on_header_callback(client.callbacks_, on_header);
  nghttp2_session_callbacks_set_on_stream_close_callback(client.callbacks_, on_stream_close);
  return client;
}

H2Client::~H2Client() {
  if (callbacks_ != nullptr) nghttp2_session_callbacks_del(callbacks_);
}

std::unique_ptr<H2Session> H2Client::open() const {
  std::unique_ptr<H2Session> s(new H2Session());
  if (nghttp2_session_client_new(&s->session_, callbacks_, &s->stream_) != 0) return nullptr;
  // The client preface and SETTINGS go out on the first drain().
  nghttp2_submit_settings(s->session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  return s;
}

}  // namespace chokepoint::loadgen
