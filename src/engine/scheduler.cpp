#include "engine/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>

namespace ratchet::engine {

struct DispatchRelease::State {
  Scheduler* scheduler = nullptr;
  AnswerGate::Answer answer = 0;
  std::atomic<bool> was_written{false};
  std::atomic<bool> was_read{false};

  void written() {
    if (!was_written.exchange(true)) scheduler->answer_event(answer, false);
  }
  void read() {
    if (!was_read.exchange(true)) scheduler->answer_event(answer, true);
  }
  ~State() { written(); }
};

void DispatchRelease::written() const {
  if (state_) state_->written();
}

void DispatchRelease::read() const {
  if (state_) state_->read();
}

// Everything one turn of the loop takes in and gives out.
struct Scheduler::Turn {
  std::vector<Dispatch> dispatches;
  std::vector<Reply> replies;
  std::vector<ClaimedCall> to_send;
  std::vector<ClaimedCall> held;  // claimed before their Dispatch is answered
  std::vector<std::string> finished;
  std::optional<Micros> next_due;
  int free_slots = 0;
};

Scheduler::Scheduler(Store& store, const Clock& clock, EndpointClient& client,
                     SchedulerOptions options)
    : store_(store),
      clock_(clock),
      client_(client),
      options_(std::move(options)),
      random_(options_.seed),
      gate_(options_.answer_grace) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  std::lock_guard lock(mutex_);
  if (running_) return;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
  // Another server of a fleet made calls due: look now rather than at the
  // next safety poll.
  store_.watch_calls([this] {
    {
      std::lock_guard lock(mutex_);
      store_news_ = true;
    }
    wake_.notify_one();
  });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
  }
  store_.watch_calls(nullptr);
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<Dispatch> dispatches;
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    dispatches.swap(dispatches_);
    waiters.swap(new_waiters_);
  }
  Status stopping(Code::kUnavailable, "the server is shutting down");
  for (auto& d : dispatches) d.done(stopping, DispatchRelease());
  for (auto& w : waiters) w.done(stopping);
  for (auto& [id, w] : waiters_) w.done(stopping);
  waiters_.clear();
}

void Scheduler::dispatch(std::vector<NewCall> calls, DispatchDone done) {
  {
    std::lock_guard lock(mutex_);
    if (!running_) {
      done(Status(Code::kUnavailable, "the server is shutting down"), DispatchRelease());
      return;
    }
    dispatches_.push_back(Dispatch{std::move(calls), std::move(done)});
  }
  wake_.notify_one();
}

void Scheduler::wait(std::string id, Micros deadline, std::function<void(CallOutcome)> done) {
  {
    std::lock_guard lock(mutex_);
    if (!running_) {
      done(Status(Code::kUnavailable, "the server is shutting down"));
      return;
    }
    new_waiters_.push_back(Waiter{std::move(id), deadline, std::move(done)});
  }
  wake_.notify_one();
}

Micros Scheduler::backoff(int attempts) {
  // Exponential, capped, with jitter over the upper half so that a burst of
  // failures does not come back as a burst.
  Micros delay = options_.retry.initial_backoff;
  for (int i = 1; i < attempts && delay < options_.retry.max_backoff; ++i) delay *= 2;
  delay = std::min(delay, options_.retry.max_backoff);
  std::uniform_int_distribution<Micros> jitter(delay / 2, delay);
  return jitter(random_);
}

Status Scheduler::apply_transition(CallTransaction& tx, const ClaimedCall& claimed, Transition t,
                                   Turn& turn) {
  const CallRecord& call = claimed.call;
  auto delivered = delivered_results(claimed);
  Micros now = clock_.now();
  bool applied = false;
  using Kind = Transition::Kind;
  if (t.kind == Kind::kRetry || t.kind == Kind::kRestart) {
    Micros ready_at = now + backoff(call.attempts);
    // A call's own limit (Call.max_attempts, Ratchet's extension) wins.
    int max_attempts = call.max_attempts > 0 ? call.max_attempts : options_.retry.max_attempts;
    bool out_of_attempts = call.attempts >= max_attempts;
    bool out_of_time = call.expires_at && ready_at >= *call.expires_at;
    if (out_of_attempts || out_of_time) {
      CallEnd end = failure_end(t.status, t.reason.message);
      end.error->type = t.reason.type;
      end.error->message += out_of_attempts
                                ? " (gave up after " + std::to_string(call.attempts) + " attempts)"
                                : " (the call expired)";
      t = Transition{Kind::kFinish, t.status, std::move(end), {}, {}, {}, {}, {}};
    } else if (t.kind == Kind::kRetry) {
      spdlog::warn("call {} ({}) attempt {} failed, retrying in {} ms: {}: {}", call.id,
                   call.function, call.attempts, (ready_at - now) / kMicrosPerMilli, t.reason.type,
                   t.reason.message);
      ASSIGN_OR_RETURN(applied, tx.retry(call.id, call.lease_epoch, ready_at, t.reason));
      return Status::ok();
    } else {
      // The endpoint's reason (the SDK's "step N diverged: ...") becomes
      // the call's last error, which the dashboard shows.
      spdlog::warn("call {} ({}) attempt {} answered {}, restarting from its input in {} ms: {}",
                   call.id, call.function, call.attempts, t.reason.type,
                   (ready_at - now) / kMicrosPerMilli, t.reason.message);
      ASSIGN_OR_RETURN(applied, tx.restart(call.id, call.lease_epoch, ready_at, t.reason));
      return Status::ok();
    }
  }
  switch (t.kind) {
    case Kind::kFinish: {
      ASSIGN_OR_RETURN(applied, tx.finish(call.id, call.lease_epoch, t.end, delivered));
      if (applied) turn.finished.push_back(call.id);
      if (applied && !t.end.succeeded) {
        spdlog::warn("call {} ({}) failed: {}: {}", call.id, call.function, t.end.error->type,
                     t.end.error->message);
      }
      break;
    }
    case Kind::kTailCall: {
      ASSIGN_OR_RETURN(applied,
                       tx.tail_call(call.id, call.lease_epoch, t.function, t.input, delivered));
      break;
    }
    case Kind::kSuspend: {
      ASSIGN_OR_RETURN(applied,
                       tx.suspend(call.id, call.lease_epoch, t.poll, t.children, delivered));
      break;
    }
    case Kind::kRejectChildren: {
      ASSIGN_OR_RETURN(applied,
                       tx.reject_children(call.id, call.lease_epoch, t.poll, t.reason, delivered));
      break;
    }
    case Kind::kHold: {
      spdlog::warn("call {} ({}) is held for an operator: {}", call.id, call.function,
                   t.reason.message);
      ASSIGN_OR_RETURN(applied, tx.hold(call.id, call.lease_epoch, t.reason));
      break;
    }
    case Kind::kRetry:
    case Kind::kRestart:
      break;
  }
  (void)applied;  // false: the lease was lost; the new holder's attempt wins
  return Status::ok();
}

Status Scheduler::apply_reply(CallTransaction& tx, const Reply& reply, Turn& turn) {
  Transition t = interpret_reply(reply.claimed.call, reply.reply, clock_.now(), options_.poll);
  return apply_transition(tx, reply.claimed, std::move(t), turn);
}

void Scheduler::run_turn(std::unique_lock<std::mutex>& lock) {
  Turn turn;
  turn.dispatches.swap(dispatches_);
  turn.replies.swap(replies_);
  std::vector<Waiter> waiters;
  waiters.swap(new_waiters_);
  std::vector<AnswerEvent> answer_events;
  answer_events.swap(answer_events_);
  turn.free_slots = options_.max_in_flight - in_flight_;
  store_news_ = false;
  lock.unlock();
  for (const auto& e : answer_events) {
    e.read ? gate_.read(e.answer, e.at) : gate_.written(e.answer, e.at);
  }
  for (const auto& w : waiters) gate_.waited(w.id, clock_.now());
  // Committed and answered: they go now, before this turn's transaction.
  for (auto& call : gate_.release_due(clock_.now())) send(std::move(call));

  Status committed = store_.calls([&](CallTransaction& tx) -> Status {
    turn.to_send.clear();
    turn.held.clear();
    turn.finished.clear();
    std::set<std::string> answering;  // the ids this turn's dispatches answer
    for (auto& d : turn.dispatches) {
      std::vector<std::string> ids;
      for (const auto& call : d.calls) {
        ASSIGN_OR_RETURN(std::string id, tx.dispatch(call));
        answering.insert(id);
        ids.push_back(std::move(id));
      }
      d.ids = std::move(ids);
    }
    for (const auto& reply : turn.replies) RETURN_IF_ERROR(apply_reply(tx, reply, turn));
    if (turn.free_slots > 0) {
      Micros now = clock_.now();
      ASSIGN_OR_RETURN(auto claimed,
                       tx.claim(options_.owner, now + options_.lease, turn.free_slots));
      for (auto& c : claimed) {
        if (c.call.expires_at && *c.call.expires_at <= now) {
          CallEnd end = failure_end(protocol::DispatchStatus::kTimeout,
                                    "the call expired before it could run");
          ASSIGN_OR_RETURN(bool done, tx.finish(c.call.id, c.call.lease_epoch, end, {}));
          if (done) turn.finished.push_back(c.call.id);
          continue;
        }
        // A newly dispatched call goes once its Dispatch is answered (see
        // DispatchRelease), not with the calls below: those were answered
        // long ago, or made by a recorded Poll, and may overlap the commit.
        bool unanswered = answering.count(c.call.id) || gate_.holds(c.call.id);
        (unanswered ? turn.held : turn.to_send).push_back(std::move(c));
      }
    }
    ASSIGN_OR_RETURN(turn.next_due, tx.next_due());
    // The claimed calls go out now, before the commit: its fsync is the
    // longest part of a turn, and a call's run overlaps it instead of waiting
    // for it. Their replies are applied by a later turn, after this commit.
    // Should the commit not happen (a crash, an I/O error), the leases were
    // never recorded: a reply then finds no lease of its epoch and is
    // dropped, and the call runs again, as it would after a crash during its
    // run. Nothing is acknowledged before the commit.
    send_all(turn.to_send);
    return Status::ok();
  });

  if (!committed.is_ok()) {
    // Nothing was written. Dispatchers hear why (their clients retry); replies
    // are kept for the next turn.
    for (auto& d : turn.dispatches) d.done(committed, DispatchRelease());
    lock.lock();
    for (auto& r : turn.replies) replies_.push_back(std::move(r));
    for (auto& w : waiters) new_waiters_.push_back(std::move(w));
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    lock.lock();
    return;
  }
  int held = 0;
  for (auto& c : turn.held) held += gate_.hold(std::move(c)) ? 1 : 0;
  for (auto& d : turn.dispatches) {
    auto release = std::make_shared<DispatchRelease::State>();
    release->scheduler = this;
    release->answer = gate_.answering(*d.ids);
    d.done(std::move(d.ids), DispatchRelease(std::move(release)));
  }
  for (auto& w : waiters) waiters_.emplace(w.id, std::move(w));
  answer_waiters(turn.finished, !waiters.empty());

  lock.lock();
  in_flight_ += held;
  next_due_ = turn.next_due;
}

void Scheduler::answer_event(AnswerGate::Answer answer, bool read) {
  Micros now = clock_.now();
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;  // the held calls' leases lapse; another run sends them
    answer_events_.push_back(AnswerEvent{answer, read, now});
  }
  wake_.notify_one();
}

void Scheduler::answer_waiters(const std::vector<std::string>& finished, bool check_all) {
  if (waiters_.empty()) return;
  std::vector<std::string> ids;
  if (check_all) {
    for (auto it = waiters_.begin(); it != waiters_.end(); it = waiters_.upper_bound(it->first)) {
      ids.push_back(it->first);
    }
  } else {
    for (const auto& id : finished) {
      if (waiters_.count(id)) ids.push_back(id);
    }
  }
  Micros now = clock_.now();
  for (const auto& id : ids) {
    auto found = store_.find_call(id);
    auto range = waiters_.equal_range(id);
    if (found.is_ok() && *found && !is_terminal((*found)->status)) continue;
    for (auto it = range.first; it != range.second; ++it) {
      if (!found.is_ok()) {
        it->second.done(found.status());
      } else if (!*found) {
        it->second.done(not_found("no call with dispatch id " + id));
      } else {
        it->second.done(**found);
      }
    }
    waiters_.erase(range.first, range.second);
  }
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline <= now) {
      it->second.done(
          Status(Code::kDeadlineExceeded, "call " + it->first + " has no result yet; wait again"));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::send_all(std::vector<ClaimedCall>& claimed) {
  if (claimed.empty()) return;
  {
    std::lock_guard lock(mutex_);
    in_flight_ += static_cast<int>(claimed.size());
  }
  for (auto& call : claimed) send(std::move(call));
  claimed.clear();
}

void Scheduler::send(ClaimedCall claimed) {
  std::string body = build_run_request(claimed);
  std::string endpoint = claimed.call.endpoint;
  client_.run(endpoint, std::move(body),
              [this, claimed = std::move(claimed)](EndpointReply reply) mutable {
                {
                  std::lock_guard lock(mutex_);
                  --in_flight_;
                  replies_.push_back(Reply{std::move(claimed), std::move(reply)});
                }
                wake_.notify_one();
              });
}

void Scheduler::loop() {
  std::unique_lock lock(mutex_);
  Micros last_full_check = clock_.now();
  while (running_) {
    run_turn(lock);
    if (!running_) break;
    // Sleep until there is news, a call falls due, a waiter's deadline, or
    // the safety poll.
    Micros now = clock_.now();
    Micros until = now + options_.safety_poll;
    if (next_due_ && in_flight_ < options_.max_in_flight) until = std::min(until, *next_due_);
    if (auto answered = gate_.next_due()) until = std::min(until, *answered);
    for (const auto& [id, w] : waiters_) until = std::min(until, w.deadline);
    auto has_news = [this] {
      return !running_ || !dispatches_.empty() || !replies_.empty() || !new_waiters_.empty() ||
             !answer_events_.empty() || store_news_;
    };
    if (until > now && !has_news()) {
      wake_.wait_for(lock, std::chrono::microseconds(until - now), has_news);
    }
    if (clock_.now() - last_full_check >= options_.safety_poll && !waiters_.empty()) {
      // Another server of a fleet may have finished a call someone waits for here.
      lock.unlock();
      answer_waiters({}, true);
      lock.lock();
      last_full_check = clock_.now();
    }
  }
}

}  // namespace ratchet::engine
