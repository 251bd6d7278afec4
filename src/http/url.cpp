#include "http/url.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace ratchet::http {
namespace {

constexpr std::string_view kExpectedForm = "expected http[s]://host[:port][/path]";

Status bad_url(std::string_view text, std::string_view reason) {
  std::string message = "invalid URL '";
  message.append(text).append("': ").append(reason).append("; ").append(kExpectedForm);
  return invalid_argument(std::move(message));
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool has_space_or_control(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

struct HostPort {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
};

// Splits "host[:port]" or "[v6][:port]"; the brackets are dropped.
bool split_host_port(std::string_view authority, HostPort& out) {
  std::size_t colon;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    out.host = authority.substr(1, close - 1);
    if (close + 1 == authority.size()) return true;
    if (authority[close + 1] != ':') return false;
    colon = close + 1;
  } else {
    colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon == std::string_view::npos) return true;
  }
  out.port = authority.substr(colon + 1);
  out.has_port = true;
  return true;
}

Status parse_port(std::string_view text, std::string_view port, Url& url) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return bad_url(text, "the port must be a number from 1 to 65535");
  }
  url.port = static_cast<std::uint16_t>(value);
  return Status::ok();
}

Status parse_authority(std::string_view text, std::string_view authority, Url& url) {
  if (authority.find('@') != std::string_view::npos) {
    return bad_url(text, "user info ('user@host') is not supported");
  }
  HostPort parts;
  if (!split_host_port(authority, parts)) return bad_url(text, "malformed IPv6 address");
  bool ipv6 = !authority.empty() && authority.front() == '[';
  url.host = to_lower(parts.host);
  if (url.host.empty()) return bad_url(text, "the host is empty");
  for (char c : url.host) {
    if (ipv6 ? !is_ipv6_char(c) : !is_host_char(c)) {
      return bad_url(text, ipv6 ? "malformed IPv6 address" : "invalid character in the host");
    }
  }
  if (parts.has_port) return parse_port(text, parts.port, url);
  url.port = url.is_https() ? 443 : 80;
  return Status::ok();
}

}  // namespace

std::string Url::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!has_default_port()) out.append(":").append(std::to_string(port));
  return out;
}

std::string Url::origin() const {
  std::string out = scheme + "://";
  out.append(host.find(':') != std::string::npos ? "[" + host + "]" : host);
  out.append(":").append(std::to_string(port));
  return out;
}

namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

std::optional<std::string> listen_address_for(const Url& url) {
  if (url.is_https()) return std::nullopt;
  std::string host = url.host;
  if (host == "localhost") {
    host = "127.0.0.1";
  } else if (!is_ip_literal(host)) {
    host = "0.0.0.0";
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(url.port);
}

std::string Url::join(std::string_view target) const {
  std::string out = path_prefix;
  if (!out.empty() && out.back() == '/' && !target.empty() && target.front() == '/') {
    out.pop_back();
  }
  out.append(target);
  if (out.empty() || (out.front() != '/' && out.front() != '?')) out.insert(0, "/");
  if (out.front() == '?') out.insert(0, "/");
  return out;
}

Result<Url> parse_url(std::string_view text) {
  if (text.empty()) return bad_url(text, "the URL is empty");
  if (has_space_or_control(text))
    return bad_url(text, "it contains whitespace or control characters");
  std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) return bad_url(text, "missing scheme");
  Url url;
  url.scheme = to_lower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") {
    return bad_url(text, "unsupported scheme '" + url.scheme + "'");
  }
  std::string_view rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return bad_url(text, "fragments are not allowed");
  std::size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  RETURN_IF_ERROR(parse_authority(text, authority, url));
  if (path_start != std::string_view::npos) url.path_prefix = std::string(rest.substr(path_start));
  return url;
}

}  // namespace ratchet::http
