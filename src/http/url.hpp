// Absolute http(s) URLs: parse once, validate with a message a user can act on.
//
// Accepted form: `http[s]://host[:port][/path][?query]`, where host is a DNS
// name, an IPv4 address or a bracketed IPv6 address. Scheme and host are
// lower-cased (they are case-insensitive); the path is kept byte for byte.
// Rejected, each with its reason: other schemes, user info (`user@host`),
// fragments, whitespace or control characters, an empty host, a port that is
// not 1-65535.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace ratchet::http {

struct Url {
  std::string scheme;       // "http" or "https"
  std::string host;         // lower case; an IPv6 address without brackets
  std::uint16_t port = 0;   // explicit, or the scheme's default (80, 443)
  std::string path_prefix;  // path and query as written; "" when absent

  bool is_https() const { return scheme == "https"; }
  bool has_default_port() const { return port == (is_https() ? 443 : 80); }
  // The Host header value: host, plus ":port" when not the scheme's default.
  std::string authority() const;
  // "scheme://host:port" with the port always present: one connection pool each.
  std::string origin() const;
  // The request target for `target` under this URL's path: "/api" + "/Run" is
  // "/api/Run" ("/api/" + "/Run" too). Never empty: "/" at least.
  std::string join(std::string_view target) const;
};

// Where a plain-HTTP service listens to be reached at `url` ("HOST:PORT"): its
// host and port, with localhost as 127.0.0.1 and any other DNS name as 0.0.0.0
// (a name the process cannot bind: every interface). nullopt for https, which
// is a proxy's address and says nothing about where the proxy forwards to.
std::optional<std::string> listen_address_for(const Url& url);

// Parses an absolute http or https URL. The error is kInvalidArgument and says
// what is wrong with the URL and what form is expected.
Result<Url> parse_url(std::string_view text);

}  // namespace ratchet::http
