#include "dashboard/live.hpp"

#include <spdlog/spdlog.h>

#include "dashboard/render.hpp"

namespace ratchet::dashboard {
namespace {

using Steady = std::chrono::steady_clock;

std::string event(std::string_view type, const nlohmann::json& data) {
  return "event: " + std::string(type) + "\ndata: " + dump(data) + "\n\n";
}

http::Response event_stream_head() {
  http::Response head;
  head.headers.set("Content-Type", "text/event-stream; charset=utf-8");
  head.headers.set("Cache-Control", "no-store");
  head.headers.set("X-Content-Type-Options", "nosniff");
  return head;
}

}  // namespace

LiveViews::LiveViews(std::string db_path, StoreOptions store_options, const Clock& clock,
                     LiveOptions options)
    : db_path_(std::move(db_path)),
      store_options_(std::move(store_options)),
      clock_(clock),
      options_(options),
      pinged_at_(Steady::now()) {
  store_options_.durable = false;   // it only reads
  store_options_.instance.clear();  // and is no scheduler instance of a fleet
  thread_ = std::thread([this] { run(); });
}

bool LiveViews::subscribe(const std::string& key, LiveView view, const http::Responder& responder) {
  std::lock_guard lock(mutex_);
  if (stopping_ || prune() >= options_.max_streams) return false;
  Subscription& subscription = views_[key];
  if (!subscription.read) subscription.read = std::move(view);
  subscription.streams.push_back(responder.start(event_stream_head()));
  ++subscription.fresh;
  has_fresh_ = true;
  wake_.notify_one();
  return true;
}

void LiveViews::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (auto& [key, subscription] : views_) {
    for (auto& stream : subscription.streams) stream.close();
  }
  views_.clear();
}

// Forgets the streams that ended (and the views left without any); how many
// remain. Under the lock.
int LiveViews::prune() {
  int open = 0;
  for (auto it = views_.begin(); it != views_.end();) {
    auto& streams = it->second.streams;
    std::size_t old_size = streams.size();
    std::size_t fresh_from = old_size - it->second.fresh;
    std::size_t kept = 0, fresh = 0;
    for (std::size_t i = 0; i < old_size; ++i) {
      if (!streams[i].open()) continue;
      if (i >= fresh_from) ++fresh;
      streams[kept++] = std::move(streams[i]);
    }
    streams.resize(kept);
    it->second.fresh = fresh;
    open += static_cast<int>(kept);
    it = kept == 0 ? views_.erase(it) : std::next(it);
  }
  return open;
}

// The views to read now: those with new clients, and all of them when the
// store changed or their last read is `refresh_every` old. Under the lock.
std::vector<LiveViews::Read> LiveViews::due(bool changed, Steady::time_point now) {
  std::vector<Read> reads;
  for (auto& [key, subscription] : views_) {
    if (changed || subscription.fresh > 0 || now - subscription.read_at >= options_.refresh_every) {
      reads.push_back({key, subscription.read, {}});
    }
  }
  return reads;
}

// Sends each read view to its clients: to all of them when it changed, else
// to the new ones only. Under the lock.
void LiveViews::publish(std::vector<Read>& reads, Steady::time_point now) {
  for (Read& read : reads) {
    auto found = views_.find(read.key);
    if (found == views_.end()) continue;
    Subscription& subscription = found->second;
    subscription.read_at = now;
    bool failed = read.event.starts_with("event: error");
    std::size_t from =
        read.event == subscription.last ? subscription.streams.size() - subscription.fresh : 0;
    for (std::size_t i = from; i < subscription.streams.size(); ++i) {
      subscription.streams[i].write(read.event);
      if (failed) subscription.streams[i].close();
    }
    subscription.fresh = 0;
    subscription.last = std::move(read.event);
  }
  if (now - pinged_at_ >= options_.ping_every) {
    pinged_at_ = now;
    for (auto& [key, subscription] : views_) {
      for (auto& stream : subscription.streams) stream.write(": ping\n\n");
    }
  }
}

void LiveViews::run() {
  pthread_setname_np(pthread_self(), "ratchet-live");
  // Opened when a view first has clients, and again after a failure to open.
  Result<std::unique_ptr<Store>> store = unavailable("not opened yet");
  std::string stamp;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.poll_every, [&] { return stopping_ || has_fresh_; });
    if (stopping_) break;
    has_fresh_ = false;
    if (prune() == 0) continue;
    lock.unlock();
    // Outside the lock: the HTTP threads that subscribe never wait for the store.
    if (!store.is_ok()) {
      store = open_store(db_path_, clock_, store_options_);
      if (!store.is_ok()) spdlog::warn("dashboard live views: {}", store.status().message());
    }
    bool changed = true;
    if (store.is_ok()) {
      auto now_stamp = (*store)->change_stamp();
      changed = !now_stamp.is_ok() || *now_stamp != stamp;
      if (now_stamp.is_ok()) stamp = *now_stamp;
    }
    lock.lock();
    Steady::time_point now = Steady::now();
    std::vector<Read> reads = due(changed, now);
    lock.unlock();
    for (Read& read : reads) {
      Result<nlohmann::json> view = store.is_ok() ? read.view(**store) : store.status();
      read.event = view.is_ok() ? event("update", *view)
                                : event("error", {{"code", code_name(view.status().code())},
                                                  {"message", view.status().message()}});
    }
    lock.lock();
    publish(reads, now);
  }
}

}  // namespace ratchet::dashboard
