// HTTP/1.1 on the wire: incremental parsers for requests (http::Server) and
// responses (http::Client), and the serializers of what they send. Beast does
// the parsing inside parser.cpp; nothing of it shows here, so the parsers can
// be tested and fuzzed without sockets.
//
// Contract (the bytes are hostile):
// - put() never throws and never stores more than the limits allow. Every
//   way the peer can break HTTP is a ParseError, after which the parser is
//   spent: the server answers it (400, 431, 413) and closes, the client fails
//   the request.
// - The header section and the trailer section together are at most
//   `header_limit` bytes (field names, values and line framing); so is any
//   single chunk-size line. Trailer fields are read, counted and discarded,
//   never merged into the headers (RFC 9110 section 6.5.1 allows it, and no
//   one upstream asked for them).
// - The body (de-chunked) is at most `body_limit` bytes; a Content-Length over
//   it fails as soon as the header is read, before any of the body arrives.
// - A request whose Transfer-Encoding does not end in `chunked` has no
//   determinable length: kMalformed (RFC 9112 section 6.3), never an empty body;
//   so is one with any other coding ("gzip, chunked", "chunked, chunked"). A
//   response's length is then where the connection closes.
// - Names and values are kept byte for byte; the Request's body grows as the
//   body arrives and is complete once done().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "http/message.hpp"

namespace ratchet::http {

enum class ParseError {
  kNone,
  kMalformed,        // not valid HTTP/1.x; a server answers 400
  kHeadersTooLarge,  // header + trailer sections over header_limit; 431
  kBodyTooLarge,     // the body over body_limit; 413
};

struct ParseLimits {
  std::size_t header_limit = 64 * 1024;
  std::size_t body_limit = 16'000'000;
};

// What put() did: the bytes it consumed (the rest must be offered again, with
// more after them: a header is parsed only once it is complete).
struct ParseStep {
  std::size_t consumed = 0;
  ParseError error = ParseError::kNone;
};

class RequestParser {
 public:
  explicit RequestParser(ParseLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses `data`. With `stop_after_header`, parsing pauses once the header is
  // complete (header_done()) so that the caller can look at it before any of
  // the body is consumed; the next put() goes on.
  ParseStep put(std::string_view data, bool stop_after_header = false);
  // The peer will send nothing more: kMalformed when the message is incomplete.
  ParseError put_eof();

  bool got_some() const;
  bool header_done() const;
  bool done() const;
  ParseError error() const;
  // A one-line reason for error(), naming the limit when one was exceeded.
  const std::string& error_message() const;

  // Valid once header_done():
  bool keep_alive() const;
  bool http11() const;
  bool expects_continue() const;  // Expect: 100-continue
  // The declared Content-Length: also after a kBodyTooLarge refusal of it.
  std::optional<std::uint64_t> content_length() const;
  // Method, target and headers once header_done(); the body once done().
  const Request& request() const;
  Request take_request();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ResponseParser {
 public:
  explicit ResponseParser(ParseLimits limits = {});
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // The response to a HEAD request: it has no body whatever its headers say.
  void expect_no_body();
  ParseStep put(std::string_view data);
  ParseError put_eof();

  bool got_some() const;
  bool header_done() const;
  bool done() const;
  ParseError error() const;
  const std::string& error_message() const;

  // Valid once done(): whether the connection can carry another request.
  bool reusable() const;
  const Response& response() const;
  Response take_response();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A whole message in one buffer (tests and fuzzing): the message, or the
// error's message as kInvalidArgument. Trailing bytes after it are ignored.
Result<Request> parse_request(std::string_view bytes, ParseLimits limits = {});
Result<Response> parse_response(std::string_view bytes, ParseLimits limits = {},
                                bool head_request = false);

// True for a field name that HTTP allows (a token) and a value without CR, LF
// or NUL: what the serializers below accept.
bool is_valid_field_name(std::string_view name);
bool is_valid_field_value(std::string_view value);

// The bytes of a response, HTTP/1.1, with Content-Length and Connection set by
// the transport (the caller's own Content-Length, Transfer-Encoding and
// Connection fields are dropped). `head_request`: Content-Length but no body.
// kInvalidArgument for a status outside 100-999 or an invalid field.
Result<std::string> serialize_response(const Response& response, bool keep_alive,
                                       bool head_request);
// The status line and header of a response whose body follows piece by piece
// until the connection closes: chunked (HTTP/1.1) or delimited by the close
// (an HTTP/1.0 client). `head`'s body and framing fields are ignored.
Result<std::string> serialize_stream_head(const Response& head, bool chunked);
// One piece of a chunked body (never empty: an empty chunk ends the body).
std::string chunk_frame(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
// The bytes of a request whose target is origin-form ("/path?q"). Host and
// User-Agent are the caller's business; Content-Length is set here (the
// caller's own Content-Length and Transfer-Encoding fields are dropped).
Result<std::string> serialize_request(const Request& request);

}  // namespace ratchet::http
