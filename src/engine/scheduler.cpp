#include "engine/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
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
  std::vector<Waiter> waiters;
  std::vector<ClaimedCall> to_send;
  std::vector<Lease> sent;          // sent before the commit
  std::vector<ClaimedCall> held;    // claimed before their Dispatch is answered
  std::set<std::string> answering;  // the ids this turn's dispatches answer
  bool release_answered = true;     // the gate may let answered calls go
  std::vector<std::string> finished;
  std::optional<Micros> next_due;
  int free_slots = 0;
  bool send_before_commit = true;
  bool last = false;  // a drain's last turn: give back `release`
  std::vector<Lease> release;
  // What the log says once the turn is committed.
  std::vector<RetryEvent> retries;
  std::vector<std::string> warnings;
};

Scheduler::Scheduler(Store& store, const Clock& clock, EndpointClient& client,
                     SchedulerOptions options)
    : store_(store),
      clock_(clock),
      client_(client),
      options_(std::move(options)),
      random_(options_.seed),
      retry_log_(options_.retry_log_period, 5,
                 [](const std::string& line) { spdlog::warn("{}", line); }),
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

void Scheduler::drain(Micros grace) {
  begin_drain(grace);
  await_drained();
}

void Scheduler::begin_drain(Micros grace) {
  {
    std::lock_guard lock(mutex_);
    if (!running_ || draining_) return;
    draining_ = true;
    drain_deadline_ = saturating_add(clock_.now(), grace);
  }
  wake_.notify_all();
}

void Scheduler::await_drained() {
  std::unique_lock lock(mutex_);
  drained_cv_.wait(lock, [this] { return drained_ || !running_ || !draining_; });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
  }
  store_.watch_calls(nullptr);
  wake_.notify_all();
  drained_cv_.notify_all();
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
  std::optional<Status> refused;
  {
    std::lock_guard lock(mutex_);
    if (!running_) {
      refused = Status(Code::kUnavailable, "the server is shutting down");
    } else if (store_failure_) {
      // Refused rather than queued: while the store fails, nothing may pile
      // up in memory, and the client holds the calls until they can be recorded.
      refused = store_failure_;
    } else {
      dispatches_.push_back(Dispatch{std::move(calls), std::move(done)});
    }
  }
  if (refused) {
    done(*refused, DispatchRelease());
    return;
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
    } else {
      // A restart's reason (the SDK's "step N diverged: ...") becomes the
      // call's last error, which the dashboard and `ratchet status` show.
      bool retry = t.kind == Kind::kRetry;
      if (retry) {
        ASSIGN_OR_RETURN(applied, tx.retry(call.id, call.lease_epoch, ready_at, t.reason));
      } else {
        ASSIGN_OR_RETURN(applied, tx.restart(call.id, call.lease_epoch, ready_at, t.reason));
      }
      if (applied) {
        turn.retries.push_back(RetryEvent{
            call.id, call.function, call.endpoint, call.attempts,
            retry ? "failed" : "answered " + t.reason.type + ", restarting from its input",
            t.reason, ready_at - now, !retry});
      }
      return Status::ok();
    }
  }
  switch (t.kind) {
    case Kind::kFinish: {
      ASSIGN_OR_RETURN(applied, tx.finish(call.id, call.lease_epoch, t.end, delivered));
      if (applied) turn.finished.push_back(call.id);
      if (applied && !t.end.succeeded) {
        turn.warnings.push_back("call " + call.id + " (" + call.function +
                                ") failed: " + t.end.error->type + ": " + t.end.error->message);
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
      ASSIGN_OR_RETURN(applied, tx.hold(call.id, call.lease_epoch, t.reason));
      if (applied) {
        turn.warnings.push_back("call " + call.id + " (" + call.function +
                                ") is held for an operator: " + t.reason.message);
      }
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

Status Scheduler::claim(CallTransaction& tx, Turn& turn) {
  if (turn.free_slots <= 0) return Status::ok();
  Micros now = clock_.now();
  ASSIGN_OR_RETURN(auto claimed, tx.claim(options_.owner, now + options_.lease, turn.free_slots));
  for (auto& c : claimed) {
    if (c.call.expires_at && *c.call.expires_at <= now) {
      CallEnd end =
          failure_end(protocol::DispatchStatus::kTimeout, "the call expired before it could run");
      ASSIGN_OR_RETURN(bool done, tx.finish(c.call.id, c.call.lease_epoch, end, {}));
      if (done) turn.finished.push_back(c.call.id);
      continue;
    }
    // A newly dispatched call goes once its Dispatch is answered (see
    // DispatchRelease), not with the calls below: those were answered long
    // ago, or made by a recorded Poll, and may overlap the commit.
    bool unanswered = turn.answering.count(c.call.id) || gate_.holds(c.call.id);
    (unanswered ? turn.held : turn.to_send).push_back(std::move(c));
  }
  return Status::ok();
}

Status Scheduler::apply_turn(CallTransaction& tx, Turn& turn) {
  for (auto& d : turn.dispatches) {
    std::vector<std::string> ids;
    for (const auto& call : d.calls) {
      ASSIGN_OR_RETURN(std::string id, tx.dispatch(call));
      turn.answering.insert(id);
      ids.push_back(std::move(id));
    }
    d.ids = std::move(ids);
  }
  for (const auto& reply : turn.replies) RETURN_IF_ERROR(apply_reply(tx, reply, turn));
  if (turn.last) {
    for (const auto& [id, epoch] : turn.release) RETURN_IF_ERROR(tx.release(id, epoch).status());
  }
  RETURN_IF_ERROR(claim(tx, turn));
  ASSIGN_OR_RETURN(turn.next_due, tx.next_due());
  // The claimed calls go out now, before the commit: its fsync is the
  // longest part of a turn, and a call's run overlaps it instead of waiting
  // for it. Their replies are applied by a later turn, after this commit.
  // Should the commit not happen (a crash, an I/O error), the leases were
  // never recorded: after an I/O error their replies are dropped (see
  // after_failure), and the calls run again once a commit records a claim,
  // as they would after a crash during their run. Nothing is acknowledged
  // before the commit. While the store fails, calls go out after the commit
  // only, so that nothing unrecorded is sent again and again.
  if (turn.send_before_commit) send_all(turn.to_send, &turn.sent);
  return Status::ok();
}

bool Scheduler::run_turn(std::unique_lock<std::mutex>& lock) {
  Turn turn;
  turn.dispatches.swap(dispatches_);
  turn.replies.swap(replies_);
  turn.waiters.swap(new_waiters_);
  std::vector<AnswerEvent> answer_events;
  answer_events.swap(answer_events_);
  turn.free_slots = draining_ ? 0 : options_.max_in_flight - in_flight_;
  turn.send_before_commit = !store_failure_;
  Micros now = clock_.now();
  turn.last = draining_ && !drained_ && (sent_.empty() || now >= drain_deadline_);
  if (turn.last) turn.release.assign(sent_.begin(), sent_.end());
  // Once a drain gives the leases back, the calls the gate holds stay unsent.
  turn.release_answered = !turn.last && !drained_;
  store_news_ = false;
  lock.unlock();
  for (const auto& e : answer_events) {
    e.read ? gate_.read(e.answer, e.at) : gate_.written(e.answer, e.at);
  }
  for (const auto& w : turn.waiters) gate_.waited(w.id, clock_.now());
  // Committed and answered: they go now, before this turn's transaction.
  if (turn.release_answered) {
    for (auto& call : gate_.release_due(clock_.now())) send(std::move(call));
  }

  Status committed = store_.calls([&](CallTransaction& tx) { return apply_turn(tx, turn); });
  if (!committed.is_ok()) {
    after_failure(committed, turn);
    lock.lock();
    return false;
  }
  after_commit(turn);
  lock.lock();
  next_due_ = turn.next_due;
  if (turn.last) {
    // Their replies, should they still come, are for leases given back.
    for (const auto& lease : turn.release) {
      auto it = sent_.find(lease.first);
      if (it != sent_.end() && it->second == lease.second) {
        sent_.erase(it);
        ignored_.insert(lease);
      }
    }
    drained_ = true;
    drained_cv_.notify_all();
  }
  return true;
}

void Scheduler::after_commit(Turn& turn) {
  Micros now = clock_.now();
  if (failed_turns_ > 0) {
    spdlog::info(
        "the store works again after {} ms and {} failed attempts: dispatches are "
        "accepted again",
        (now - failing_since_) / kMicrosPerMilli, failed_turns_);
    failed_turns_ = 0;
    std::lock_guard lock(mutex_);
    store_failure_.reset();
  }
  if (!turn.send_before_commit) send_all(turn.to_send, nullptr);
  hold_unanswered(turn);
  if (turn.last) {
    spdlog::info("released the {} calls still in flight: any server runs them now",
                 turn.release.size());
  }
  for (const auto& event : turn.retries) retry_log_.retried(event, now);
  for (const auto& line : turn.warnings) spdlog::warn("{}", line);
  for (auto& d : turn.dispatches) {
    auto release = std::make_shared<DispatchRelease::State>();
    release->scheduler = this;
    release->answer = gate_.answering(*d.ids);
    d.done(std::move(d.ids), DispatchRelease(std::move(release)));
  }
  for (auto& w : turn.waiters) waiters_.emplace(w.id, std::move(w));
  answer_waiters(turn.finished, !turn.waiters.empty());
}

// The calls claimed before their Dispatch was answered wait in the gate, leased
// and counted in flight, so that a drain waits for them and gives them back.
void Scheduler::hold_unanswered(Turn& turn) {
  if (turn.held.empty()) return;
  std::vector<Lease> leases;
  int added = 0;
  for (auto& c : turn.held) {
    leases.emplace_back(c.call.id, c.call.lease_epoch);
    // false: it replaced a held claim of the same call, counted already.
    added += gate_.hold(std::move(c)) ? 1 : 0;
  }
  std::lock_guard lock(mutex_);
  in_flight_ += added;
  for (auto& [id, epoch] : leases) sent_[id] = epoch;
}

void Scheduler::after_failure(const Status& error, Turn& turn) {
  Micros now = clock_.now();
  if (failed_turns_ == 0) {
    failing_since_ = now;
    store_delay_ = options_.store_retry_initial;
    spdlog::error(
        "the store fails: {}. Until it works again, dispatches are refused "
        "(unavailable) and the scheduler tries again after {} ms, backing off to "
        "every {} ms; nothing is lost",
        error.message(), store_delay_ / kMicrosPerMilli,
        options_.store_retry_max / kMicrosPerMilli);
  } else {
    store_delay_ = std::min(store_delay_ * 2, options_.store_retry_max);
  }
  ++failed_turns_;
  Status refusal(Code::kUnavailable, "the store cannot record anything now (" + error.message() +
                                         "); nothing was recorded: try again later");
  {
    std::lock_guard lock(mutex_);
    store_failure_ = refusal;
    next_store_try_ = now + store_delay_;
    // Those that came during the turn are refused too, rather than wait.
    for (auto& d : dispatches_) turn.dispatches.push_back(std::move(d));
    dispatches_.clear();
    // The replies wait for the next turn (before those that came since).
    replies_.insert(replies_.begin(), std::make_move_iterator(turn.replies.begin()),
                    std::make_move_iterator(turn.replies.end()));
    // What went out before the failed commit was never leased: its replies
    // must not be applied (the epoch they name will be claimed again).
    for (const auto& lease : turn.sent) {
      auto it = sent_.find(lease.first);
      if (it != sent_.end() && it->second == lease.second) {
        sent_.erase(it);
        ignored_.insert(lease);
        continue;
      }
      std::erase_if(replies_, [&](const Reply& r) {
        return r.claimed.call.id == lease.first && r.claimed.call.lease_epoch == lease.second;
      });
    }
  }
  // Refused after store_failure_ is set, so that a client who dispatches again
  // at once is refused at once too.
  for (auto& d : turn.dispatches) d.done(refusal, DispatchRelease());
  // Waiters are answered from reads, which a full disk still allows.
  for (auto& w : turn.waiters) waiters_.emplace(w.id, std::move(w));
  answer_waiters({}, !turn.waiters.empty());
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
  expire_waiters(clock_.now());
}

void Scheduler::expire_waiters(Micros now) {
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

void Scheduler::send_all(std::vector<ClaimedCall>& claimed, std::vector<Lease>* sent) {
  if (claimed.empty()) return;
  {
    std::lock_guard lock(mutex_);
    in_flight_ += static_cast<int>(claimed.size());
    for (const auto& c : claimed) {
      sent_[c.call.id] = c.call.lease_epoch;
      if (sent) sent->emplace_back(c.call.id, c.call.lease_epoch);
    }
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
                  Lease lease{claimed.call.id, claimed.call.lease_epoch};
                  if (ignored_.erase(lease) == 0) {
                    auto it = sent_.find(lease.first);
                    if (it != sent_.end() && it->second == lease.second) sent_.erase(it);
                    replies_.push_back(Reply{std::move(claimed), std::move(reply)});
                  }
                }
                wake_.notify_one();
              });
}

Micros Scheduler::wake_at(Micros now) const {
  Micros until = now + options_.safety_poll;
  if (store_failure_) {
    until = next_store_try_;
  } else {
    if (next_due_ && !draining_ && in_flight_ < options_.max_in_flight) {
      until = std::min(until, *next_due_);
    }
    if (auto answered = gate_.next_due(); answered && !drained_) until = std::min(until, *answered);
  }
  if (draining_ && !drained_) until = std::min(until, drain_deadline_);
  for (const auto& [id, w] : waiters_) until = std::min(until, w.deadline);
  if (auto flush = retry_log_.next_flush()) until = std::min(until, *flush);
  return until;
}

void Scheduler::loop() {
  std::unique_lock lock(mutex_);
  Micros last_full_check = clock_.now();
  while (running_) {
    if (!store_failure_ || clock_.now() >= next_store_try_) run_turn(lock);
    if (!running_) break;
    Micros now = clock_.now();
    if (draining_ && !drained_ && store_failure_ && now >= drain_deadline_) {
      // The leases cannot be given back: the next server takes them over
      // once this process is gone.
      spdlog::warn(
          "the store still fails at the end of the shutdown grace period: {} calls in "
          "flight are left to the next server",
          sent_.size());
      drained_ = true;
      drained_cv_.notify_all();
    }
    lock.unlock();
    expire_waiters(now);
    retry_log_.flush(now);
    lock.lock();
    // Sleep until there is news, a call falls due, a waiter's deadline, or
    // the safety poll (whose turn also carries the store's heartbeat). While
    // the store fails, only the backoff ends the sleep: news waits for it.
    auto has_news = [this] {
      if (!running_) return true;
      if (store_failure_) return false;
      return !dispatches_.empty() || !replies_.empty() || !new_waiters_.empty() ||
             !answer_events_.empty() || store_news_ || (draining_ && !drained_ && sent_.empty());
    };
    Micros until = wake_at(now);
    if (until > now && !has_news()) clock_.wait_until(lock, wake_, until, has_news);
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
