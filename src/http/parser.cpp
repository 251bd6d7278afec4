// The parsers on Beast's basic_parser, with callbacks of our own: Beast's
// ready-made parser stores fields in basic_fields, which throws
// std::length_error for a name or value of 64 KiB or more; here fields go into
// http::Headers (or are counted and dropped, for trailers), and every limit is
// an error code, so no exception can leave put().
#include "http/parser.hpp"

#include <algorithm>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstdio>
#include <limits>
#include <optional>
#include <vector>

namespace ratchet::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using beast::error_code;

// Bytes a field line costs besides its name and value: ": " and CRLF.
constexpr std::size_t kFieldFraming = 4;
// A chunk-size line may also use what the trailer would have, plus this much:
// room for the last-chunk line itself.
constexpr std::size_t kChunkLineSlack = 1024;
constexpr std::uint64_t kMaxReserve = 1 << 20;
constexpr std::size_t kMinChunkedRest = 5;

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_bare_line_feed(std::string_view s) {
  for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i == 0 || s[i - 1] != '\r') return true;
  }
  return false;
}

// A Content-Length value Beast has already checked (digits, no overflow, the
// same value when repeated); nullopt if it somehow is not one.
std::optional<std::uint64_t> parse_length(std::string_view value) {
  value = trim_ows(value);
  std::uint64_t length = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return length;
}

// Why a request's Transfer-Encoding cannot be read, or "" when it is exactly
// "chunked" (empty list elements do not count: RFC 9110 section 5.6.1). Any
// other coding is refused: one that does not end in chunked leaves the length
// unknown (RFC 9112 section 6.3), "chunked, chunked" would be read by Beast as
// no body and the rest as another request, and no other coding is supported.
std::string transfer_encoding_problem(std::string_view value) {
  std::vector<std::string_view> codings;
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) codings.push_back(trim_ows(element.substr(0, element.find(';'))));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  if (codings.empty() || !iequals(codings.back(), "chunked")) {
    return "the request's Transfer-Encoding does not end in chunked, so its length cannot be "
           "known (RFC 9112 section 6.3)";
  }
  if (codings.size() > 1) {
    return "the request's Transfer-Encoding has codings other than one chunked, which this "
           "server does not support";
  }
  return "";
}

// Shared by requests and responses. `Message` is Request or Response.
template <bool isRequest, typename Message>
class Parser : public bhttp::basic_parser<isRequest> {
 public:
  explicit Parser(ParseLimits limits) : limits_(limits) {
    this->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.header_limit, std::numeric_limits<std::uint32_t>::max())));
    this->body_limit(limits.body_limit);
  }

  ParseStep put(std::string_view data, bool stop_after_header) {
    ParseStep step;
    if (error_ != ParseError::kNone || this->is_done()) {
      step.error = error_;
      return step;
    }
    // Beast 1.74 asserts (debug builds) that it is given at least 5 bytes once
    // it has met the last chunk, which a client trickling bytes breaks. An
    // unfinished chunked body always has at least 5 bytes to come ("0", CRLF,
    // CRLF), so waiting for them never stalls a valid message.
    if (this->is_header_done() && this->chunked() && data.size() < kMinChunkedRest) return step;
    this->eager(!(stop_after_header && !this->is_header_done()));
    error_code ec;
    try {
      step.consumed = bhttp::basic_parser<isRequest>::put(
          boost::asio::const_buffer(data.data(), data.size()), ec);
    } catch (const std::exception& e) {  // out of memory; nothing else throws here
      return failed(ParseError::kMalformed, std::string("the parser failed: ") + e.what());
    }
    bool need_more = ec == bhttp::error::need_more;
    if (need_more) ec = {};
    if (ec) return failed(classify(ec), describe(ec));
    if (error_ != ParseError::kNone) return failed(error_, error_message_);
    // Beast waits for a whole chunk-size line or trailer section before it
    // parses one, and bounds neither: what it left unparsed is bounded here.
    if (need_more && this->is_header_done()) {
      std::size_t pending = data.size() - step.consumed;
      // What Beast left is a chunk-size line or trailer, which end in CRLF: a
      // bare LF there will never be followed by the CRLF Beast waits for.
      if (this->chunked() && has_bare_line_feed(data.substr(step.consumed))) {
        return failed(ParseError::kMalformed, "bad chunk: a line ends in LF without CR");
      }
      if (pending > trailer_budget() + kChunkLineSlack) {
        return failed(ParseError::kHeadersTooLarge,
                      "a chunk-size line or the trailer section makes the header and trailer "
                      "sections larger than " +
                          std::to_string(limits_.header_limit) + " bytes");
      }
    }
    step.error = ParseError::kNone;
    return step;
  }

  ParseError put_eof() {
    if (error_ != ParseError::kNone || this->is_done()) return error_;
    if (!this->got_some()) {
      failed(ParseError::kMalformed, "the connection closed before a message started");
      return error_;
    }
    error_code ec;
    bhttp::basic_parser<isRequest>::put_eof(ec);
    if (ec) failed(ParseError::kMalformed, describe(ec));
    return error_;
  }

  ParseError error() const { return error_; }
  const std::string& error_message() const { return error_message_; }
  bool expects_continue() const { return expects_continue_; }
  bool http11() const { return version_ >= 11; }
  // The Content-Length the header declared, also when it was refused as over
  // the body limit (Beast's own accessor asserts that the header was accepted).
  std::optional<std::uint64_t> declared_length() const { return declared_length_; }
  Message& message() { return message_; }

 private:
  ParseStep failed(ParseError error, std::string message) {
    if (error_ == ParseError::kNone) {
      error_ = error;
      error_message_ = std::move(message);
    }
    return ParseStep{0, error_};
  }

  // Sets a callback's error, keeping ours to report (Beast needs some code).
  void fail_in_callback(error_code& ec, ParseError error, std::string message) {
    failed(error, std::move(message));
    ec = bhttp::error::bad_value;
  }

  ParseError classify(error_code ec) const {
    if (ec == bhttp::error::header_limit) return ParseError::kHeadersTooLarge;
    if (ec == bhttp::error::body_limit) return ParseError::kBodyTooLarge;
    return ParseError::kMalformed;
  }

  std::string describe(error_code ec) const {
    if (ec == bhttp::error::header_limit) {
      return "the header section is larger than " + std::to_string(limits_.header_limit) + " bytes";
    }
    if (ec == bhttp::error::body_limit) {
      return "the body is larger than " + std::to_string(limits_.body_limit) + " bytes";
    }
    return ec.message();
  }

  std::size_t trailer_budget() const {
    return section_bytes_ >= limits_.header_limit ? 0 : limits_.header_limit - section_bytes_;
  }

  void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                       int version, error_code&) override {
    if constexpr (isRequest) {
      message_.method = std::string(method);
      message_.target = std::string(target);
    }
    version_ = version;
    section_bytes_ = method.size() + target.size() + 12;  // " ", " HTTP/1.1", CRLF
  }

  void on_response_impl(int code, beast::string_view reason, int version, error_code&) override {
    if constexpr (!isRequest) message_.status = code;
    version_ = version;
    section_bytes_ = reason.size() + 15;  // "HTTP/1.1 200 " ... CRLF
  }

  void on_field_impl(bhttp::field, beast::string_view name, beast::string_view value,
                     error_code& ec) override {
    section_bytes_ += name.size() + value.size() + kFieldFraming;
    if (section_bytes_ > limits_.header_limit) {
      return fail_in_callback(ec, ParseError::kHeadersTooLarge,
                              "the header and trailer sections are larger than " +
                                  std::to_string(limits_.header_limit) + " bytes");
    }
    if (this->is_header_done()) return;  // a trailer field: counted, then dropped
    if (isRequest && iequals(name, "Transfer-Encoding")) {
      std::string problem = transfer_encoding_problem(value);
      if (!problem.empty()) return fail_in_callback(ec, ParseError::kMalformed, problem);
    }
    if (isRequest && iequals(name, "Expect") && iequals(value, "100-continue")) {
      expects_continue_ = true;
    }
    if (iequals(name, "Content-Length")) declared_length_ = parse_length(value);
    message_.headers.add(std::string(name), std::string(value));
  }

  void on_header_impl(error_code&) override { section_bytes_ += 2; }

  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    // Not more than a MiB ahead of what arrives: a Content-Length is a claim.
    if (length) message_.body.reserve(std::min<std::uint64_t>(*length, kMaxReserve));
  }

  std::size_t on_body_impl(beast::string_view body, error_code& ec) override {
    return append(body, ec);
  }

  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code& ec) override {
    return append(body, ec);
  }

  void on_finish_impl(error_code&) override {}

  std::size_t append(beast::string_view body, error_code& ec) {
    if (message_.body.size() + body.size() > limits_.body_limit) {
      ec = bhttp::error::body_limit;
      return 0;
    }
    message_.body.append(body.data(), body.size());
    return body.size();
  }

  ParseLimits limits_;
  Message message_;
  int version_ = 11;
  std::size_t section_bytes_ = 0;  // header and trailer bytes so far
  bool expects_continue_ = false;
  std::optional<std::uint64_t> declared_length_;
  ParseError error_ = ParseError::kNone;
  std::string error_message_;
};

}  // namespace

struct RequestParser::Impl : Parser<true, Request> {
  using Parser::Parser;
};

RequestParser::RequestParser(ParseLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;

ParseStep RequestParser::put(std::string_view data, bool stop_after_header) {
  return impl_->put(data, stop_after_header);
}
ParseError RequestParser::put_eof() { return impl_->put_eof(); }
bool RequestParser::got_some() const { return impl_->got_some(); }
bool RequestParser::header_done() const { return impl_->is_header_done(); }
bool RequestParser::done() const { return impl_->is_done(); }
ParseError RequestParser::error() const { return impl_->error(); }
const std::string& RequestParser::error_message() const { return impl_->error_message(); }
bool RequestParser::keep_alive() const { return impl_->keep_alive(); }
bool RequestParser::http11() const { return impl_->http11(); }
bool RequestParser::expects_continue() const { return impl_->expects_continue(); }
std::optional<std::uint64_t> RequestParser::content_length() const {
  return impl_->declared_length();
}
const Request& RequestParser::request() const { return impl_->message(); }
Request RequestParser::take_request() { return std::move(impl_->message()); }

struct ResponseParser::Impl : Parser<false, Response> {
  using Parser::Parser;
};

ResponseParser::ResponseParser(ParseLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
ResponseParser::~ResponseParser() = default;

void ResponseParser::expect_no_body() {
  if (!impl_->got_some()) impl_->skip(true);
}
ParseStep ResponseParser::put(std::string_view data) { return impl_->put(data, false); }
ParseError ResponseParser::put_eof() { return impl_->put_eof(); }
bool ResponseParser::got_some() const { return impl_->got_some(); }
bool ResponseParser::header_done() const { return impl_->is_header_done(); }
bool ResponseParser::done() const { return impl_->is_done(); }
ParseError ResponseParser::error() const { return impl_->error(); }
const std::string& ResponseParser::error_message() const { return impl_->error_message(); }
bool ResponseParser::reusable() const {
  return impl_->is_done() && impl_->keep_alive() && !impl_->need_eof();
}
const Response& ResponseParser::response() const { return impl_->message(); }
Response ResponseParser::take_response() { return std::move(impl_->message()); }

namespace {

// Feeds `bytes` in one go, then the end of input if the message needs it.
template <typename P>
Status parse_whole(P& parser, std::string_view bytes) {
  ParseStep step = parser.put(bytes);
  if (step.error == ParseError::kNone && !parser.done()) parser.put_eof();
  if (parser.error() != ParseError::kNone) return invalid_argument(parser.error_message());
  if (!parser.done()) return invalid_argument("the message is incomplete");
  return Status::ok();
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The body's framing is the transport's: a caller's own fields for it are dropped.
bool is_length_field(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding");
}

Status check_fields(const Headers& headers) {
  for (const Header& field : headers) {
    if (!is_valid_field_name(field.name)) {
      return invalid_argument("invalid header field name \"" + field.name.substr(0, 64) + "\"");
    }
    if (!is_valid_field_value(field.value)) {
      return invalid_argument("the value of header field " + field.name +
                              " contains CR, LF or NUL");
    }
  }
  return Status::ok();
}

}  // namespace

Result<Request> parse_request(std::string_view bytes, ParseLimits limits) {
  RequestParser parser(limits);
  RETURN_IF_ERROR(parse_whole(parser, bytes));
  return parser.take_request();
}

Result<Response> parse_response(std::string_view bytes, ParseLimits limits, bool head_request) {
  ResponseParser parser(limits);
  if (head_request) parser.expect_no_body();
  RETURN_IF_ERROR(parse_whole(parser, bytes));
  return parser.take_response();
}

bool is_valid_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool is_valid_field_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

namespace {

// The status line and the fields of `response` but its framing ones.
Result<std::string> status_and_fields(const Response& response) {
  int status = response.status;
  if (status < 100 || status > 999) {
    return invalid_argument("invalid HTTP status " + std::to_string(status));
  }
  RETURN_IF_ERROR(check_fields(response.headers));
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  std::string out;
  out.reserve(128 + response.body.size());
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  for (const Header& field : response.headers) {
    if (!is_length_field(field.name) && !iequals(field.name, "Connection")) {
      append_field(out, field.name, field.value);
    }
  }
  return out;
}

}  // namespace

Result<std::string> serialize_response(const Response& response, bool keep_alive,
                                       bool head_request) {
  ASSIGN_OR_RETURN(std::string out, status_and_fields(response));
  int status = response.status;
  bool bodiless = status < 200 || status == 204 || status == 304;
  if (!bodiless) append_field(out, "Content-Length", std::to_string(response.body.size()));
  if (!keep_alive) append_field(out, "Connection", "close");
  out.append("\r\n");
  if (!bodiless && !head_request) out.append(response.body);
  return out;
}

Result<std::string> serialize_stream_head(const Response& head, bool chunked) {
  if (head.status < 200 || head.status == 204 || head.status == 304) {
    return invalid_argument("a streamed response needs a status with a body, not " +
                            std::to_string(head.status));
  }
  ASSIGN_OR_RETURN(std::string out, status_and_fields(head));
  if (chunked) append_field(out, "Transfer-Encoding", "chunked");
  append_field(out, "Connection", "close");
  out.append("\r\n");
  return out;
}

std::string chunk_frame(std::string_view data) {
  char size[20];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<std::size_t>(n));
  out.append(data).append("\r\n");
  return out;
}

Result<std::string> serialize_request(const Request& request) {
  if (!is_valid_field_name(request.method)) {
    return invalid_argument("invalid HTTP method \"" + request.method.substr(0, 64) + "\"");
  }
  for (unsigned char c : request.target) {
    if (c <= 0x20 || c == 0x7f) {
      return invalid_argument("the request target contains a space or control character");
    }
  }
  if (request.target.empty()) return invalid_argument("the request target is empty");
  RETURN_IF_ERROR(check_fields(request.headers));
  std::string out;
  out.reserve(256 + request.body.size());
  out.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  for (const Header& field : request.headers) {
    if (!is_length_field(field.name)) append_field(out, field.name, field.value);
  }
  bool bodiless_method = request.method == "GET" || request.method == "HEAD";
  if (!request.body.empty() || !bodiless_method) {
    append_field(out, "Content-Length", std::to_string(request.body.size()));
  }
  out.append("\r\n").append(request.body);
  return out;
}

}  // namespace ratchet::http
