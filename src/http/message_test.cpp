#include "http/message.hpp"

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/url.hpp"

namespace ratchet::http {
namespace {

TEST(Headers, LookupIsCaseInsensitiveAndKeepsOriginalNamesInOrder) {
  Headers headers;
  headers.add("Content-Type", "application/proto");
  headers.add("X-Trace", "a");
  headers.add("x-trace", "b");
  EXPECT_EQ(headers.get("content-type"), "application/proto");
  EXPECT_EQ(headers.get("X-TRACE"), "a");
  EXPECT_FALSE(headers.get("Accept").has_value());
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers.begin()->name, "Content-Type");
  EXPECT_EQ((headers.begin() + 2)->name, "x-trace");
}

TEST(Headers, SetReplacesEveryFieldOfThatName) {
  Headers headers;
  headers.add("A", "1");
  headers.add("b", "2");
  headers.add("a", "3");
  headers.set("A", "4");
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.get("a"), "4");
  EXPECT_EQ(headers.remove("B"), 1u);
  EXPECT_EQ(headers.size(), 1u);
}

TEST(Request, PathAndQuerySplitTheTarget) {
  Request request;
  request.target = "/a/b?x=1&y=2";
  EXPECT_EQ(request.path(), "/a/b");
  EXPECT_EQ(request.query(), "x=1&y=2");
  request.target = "/plain";
  EXPECT_EQ(request.path(), "/plain");
  EXPECT_EQ(request.query(), "");
}

TEST(ParseUrl, AcceptsHttpAndHttpsWithDefaultPorts) {
  Result<Url> url = parse_url("HTTP://Example.COM/api/");
  ASSERT_TRUE(url.is_ok()) << url.status().message();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->path_prefix, "/api/");
  EXPECT_EQ(url->authority(), "example.com");
  EXPECT_EQ(url->origin(), "http://example.com:80");

  url = parse_url("https://h.example:443");
  ASSERT_TRUE(url.is_ok());
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->authority(), "h.example");
}

TEST(ParseUrl, KeepsNonDefaultPortInAuthority) {
  Result<Url> url = parse_url("http://127.0.0.1:8000");
  ASSERT_TRUE(url.is_ok());
  EXPECT_EQ(url->port, 8000);
  EXPECT_EQ(url->authority(), "127.0.0.1:8000");
  EXPECT_EQ(url->path_prefix, "");

  url = parse_url("https://[::1]:8443/x?q=1");
  ASSERT_TRUE(url.is_ok()) << url.status().message();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->authority(), "[::1]:8443");
  EXPECT_EQ(url->path_prefix, "/x?q=1");
}

TEST(ParseUrl, RejectsWhatItCannotServeWithAReason) {
  struct Case {
    const char* url;
    const char* reason;
  };
  for (const Case& c : {Case{"", "empty"}, Case{"example.com", "missing scheme"},
                        Case{"ftp://h/", "unsupported scheme 'ftp'"},
                        Case{"http:///path", "host is empty"}, Case{"http://h:0/", "port must be"},
                        Case{"http://h:99999", "port must be"}, Case{"http://h:/", "port must be"},
                        Case{"http://h:8x/", "port must be"}, Case{"http://u:p@h/", "user info"},
                        Case{"http://h/a#frag", "fragments"}, Case{"http://h /", "whitespace"},
                        Case{"http://h%41/", "invalid character"}, Case{"http://[::1/", "IPv6"}}) {
    Result<Url> url = parse_url(c.url);
    ASSERT_FALSE(url.is_ok()) << c.url;
    EXPECT_EQ(url.status().code(), Code::kInvalidArgument);
    EXPECT_NE(url.status().message().find(c.reason), std::string::npos)
        << c.url << ": " << url.status().message();
    EXPECT_NE(url.status().message().find("expected http[s]://"), std::string::npos);
  }
}

TEST(Url, JoinAvoidsDoubleSlashes) {
  Url url = parse_url("http://h/api/").value();
  EXPECT_EQ(url.join("/Run"), "/api/Run");
  url = parse_url("http://h/api").value();
  EXPECT_EQ(url.join("/Run"), "/api/Run");
  url = parse_url("http://h").value();
  EXPECT_EQ(url.join("/Run"), "/Run");
  EXPECT_EQ(url.join(""), "/");
  EXPECT_EQ(url.join("?x=1"), "/?x=1");
}

TEST(ErrorKind, IsRecoveredOnlyFromClientErrors) {
  EXPECT_FALSE(error_kind(Status::ok()).has_value());
  EXPECT_FALSE(error_kind(unavailable("dns_error look-alike")).has_value());
  EXPECT_FALSE(error_kind(internal_error("dns_error: wrong code")).has_value());
  EXPECT_EQ(error_kind(unavailable("dns_error: x")), ErrorKind::kDns);
  EXPECT_EQ(error_kind_name(ErrorKind::kTcp), "tcp_error");
}

}  // namespace
}  // namespace ratchet::http
