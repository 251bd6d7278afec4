// Mounting a Ratchet endpoint on a cpp-httplib server (Debian: libcpp-httplib-dev,
// pkg-config cpp-httplib), for programs that already serve HTTP with it:
//
//   httplib::Server server;
//   ratchet::mount(server, dispatch);          // POST .../dispatch.sdk.v1.FunctionService/Run
//   server.listen("127.0.0.1", 8000);
//
// The request goes through Dispatch::handle, so verification, body limits and
// the error answers are the same as with Dispatch::serve(). cpp-httplib runs
// each request on its own thread pool: a blocking function blocks only its
// own request.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "ratchet/dispatch.hpp"

namespace ratchet {

// Adds the Run route under `prefix` (the path of DISPATCH_ENDPOINT_URL, if any).
inline void mount(httplib::Server& server, Dispatch& dispatch, const std::string& prefix = "") {
  Handler handler = dispatch.handler();
  server.Post(prefix + "/dispatch.sdk.v1.FunctionService/Run",
              [handler](const httplib::Request& in, httplib::Response& out) {
                Request request;
                request.method = in.method;
                request.path = in.path;
                for (const auto& [name, value] : in.headers)
                  request.headers.emplace_back(name, value);
                request.body = in.body;
                Response response = handler(request);
                out.status = response.status;
                std::string content_type = "application/octet-stream";
                for (const auto& [name, value] : response.headers) {
                  if (name.size() == 12 &&
                      std::equal(name.begin(), name.end(), "content-type", [](char a, char b) {
                        return std::tolower(static_cast<unsigned char>(a)) == b;
                      })) {
                    content_type = value;
                  } else {
                    out.set_header(name, value);
                  }
                }
                out.set_content(response.body, content_type);
              });
}

}  // namespace ratchet
