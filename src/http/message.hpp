// HTTP messages as plain values, shared by http::Server and http::Client.
//
// No parsing or I/O happens here: a Request or Response is what travels on the
// wire, already decoded (the body is de-chunked; Content-Length and
// Transfer-Encoding are the transport's business). Header names keep their
// original spelling and order; every lookup is case-insensitive (RFC 9110 5.1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ratchet::http {

// ASCII case-insensitive equality, for header names and URL schemes.
bool iequals(std::string_view a, std::string_view b);

struct Header {
  std::string name;
  std::string value;
};

// An ordered list of header fields. A name may repeat; get() returns the first.
class Headers {
 public:
  using const_iterator = std::vector<Header>::const_iterator;

  // The value of the first field called `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Appends a field, keeping any earlier ones of the same name.
  void add(std::string name, std::string value);
  // Replaces every field called `name` with one field (appended if absent).
  void set(std::string name, std::string value);
  // Removes every field called `name`; returns how many were removed.
  std::size_t remove(std::string_view name);

  std::size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  void reserve(std::size_t n) { fields_.reserve(n); }

 private:
  std::vector<Header> fields_;
};

struct Request {
  std::string method = "GET";
  // What follows the authority: path and query ("/a/b?x=1"). For http::Client
  // it may instead be an absolute URL ("https://host:8443/a/b").
  std::string target = "/";
  Headers headers;
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
  // The target without its query ("/a/b").
  std::string_view path() const;
  // The query without '?' ("x=1"), empty when there is none.
  std::string_view query() const;
  // The key of `Authorization: Bearer <key>` (the scheme in any case); empty
  // without one.
  std::string_view bearer_key() const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }

  // A response with a body and its Content-Type.
  static Response with_body(int status, std::string content_type, std::string body);
};

}  // namespace ratchet::http
