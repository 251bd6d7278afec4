// Live views for the dashboard's pages, over server-sent events
// (docs/dashboard.md, "Live updates"). A page opens
// GET /ratchet/v1/events?view=... and gets its view's JSON as an "update"
// event at once and again whenever it changes.
//
// One thread, with a store connection of its own, serves every stream: every
// `poll_every` it reads the store's change stamp (Store::change_stamp: one
// PRAGMA on SQLite, one snapshot query on PostgreSQL), and when the stamp
// moved, or `refresh_every` passed (durations and rates move with time), it
// reads each view that has clients once and sends it to all of them if it
// changed. A thousand clients of the runs list cost the store what one does;
// a store that does not change costs one stamp a poll.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "storage/store.hpp"

namespace ratchet::dashboard {

struct LiveOptions {
  std::chrono::milliseconds poll_every{250};
  std::chrono::milliseconds refresh_every{5000};
  // A comment line now and then, so that proxies keep the stream open.
  std::chrono::milliseconds ping_every{15000};
  // Streams open at once, all views together: each holds a connection of
  // the server's --max-connections.
  int max_streams = 64;
};

// A view's JSON, read from the store.
using LiveView = std::function<Result<nlohmann::json>(Store&)>;

class LiveViews {
 public:
  LiveViews(std::string db_path, StoreOptions store_options, const Clock& clock,
            LiveOptions options);
  ~LiveViews() { stop(); }

  // Answers `responder` with a stream of `view`, known by `key` (clients of
  // the same key share its reads): "event: update" with its JSON, or once
  // "event: error" with {"code", "message"} when it cannot be read (then the
  // stream ends). False, with nothing sent, when max_streams are open.
  bool subscribe(const std::string& key, LiveView view, const http::Responder& responder);
  // Ends every stream and joins the thread. Idempotent.
  void stop();

 private:
  struct Subscription {
    LiveView read;
    std::vector<http::Stream> streams;
    std::size_t fresh = 0;  // the last `fresh` streams have had nothing yet
    std::string last;       // the last event sent
    std::chrono::steady_clock::time_point read_at;
  };
  struct Read {
    std::string key;
    LiveView view;
    std::string event;
  };

  void run();
  int prune();
  std::vector<Read> due(bool changed, std::chrono::steady_clock::time_point now);
  void publish(std::vector<Read>& reads, std::chrono::steady_clock::time_point now);

  std::string db_path_;
  StoreOptions store_options_;
  const Clock& clock_;
  LiveOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Subscription> views_;
  bool has_fresh_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point pinged_at_;
  std::thread thread_;
};

}  // namespace ratchet::dashboard
