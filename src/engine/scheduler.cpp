#include "engine/scheduler.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <set>

#include "common/spin_before_sleep.hpp"
#include "engine/call_log.hpp"
#include "storage/blobs.hpp"

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
  std::vector<Action> actions;
  std::vector<ClaimedCall> to_send;
  std::vector<Lease> sent;          // sent before the commit
  std::vector<ClaimedCall> held;    // claimed before their Dispatch is answered
  std::set<std::string> answering;  // the ids this turn's dispatches answer
  bool release_answered = true;     // the gate may let answered calls go
  std::vector<std::string> finished;
  std::optional<Micros> next_due;
  int free_slots = 0;
  std::map<std::string, int> room;  // per endpoint (EndpointLimits), when the turn began
  int new_endpoint_room = 0;        // of an endpoint with nothing in flight
  bool blocked = false;             // due calls were left for lack of room
  bool unread_queues = false;       // claimed from a full batch of due queues: more may be due
  Micros began = 0;                 // before its transaction, so no later than the store's now
  bool send_before_commit = true;
  bool read_figures = false;
  std::optional<QueueFigures> queue_figures;
  std::vector<HistoryEvent> history;
  std::vector<std::pair<std::string, std::uint64_t>> load;             // AIMD: endpoint, ticket...
  std::vector<LoadSignal> signals;                                     // ...and what its reply said
  std::map<std::pair<std::string, std::string>, std::uint64_t> ended;  // (function, status)
  int retried = 0;
  int claimed = 0;
  int cancelled = 0;
  int expired = 0;
  bool last = false;         // a drain's last turn: give back `release`
  std::uint64_t commit = 0;  // its number among the scheduler's commits
  std::vector<Lease> release;
  // What the log says once the turn is committed.
  std::vector<RetryEvent> retries;
  std::vector<CallLine> warnings;  // lines about calls (failed, held)
};

Scheduler::Scheduler(Store& store, const Clock& clock, EndpointClient& client,
                     SchedulerOptions options)
    : store_(store),
      clock_(clock),
      client_(client),
      options_(std::move(options)),
      random_(options_.seed),
      limits_([this] {
        AimdOptions aimd = options_.aimd;
        aimd.max = std::max(1, std::min(aimd.max, options_.max_in_flight));
        aimd.initial = std::clamp(aimd.initial, aimd.min, aimd.max);
        return aimd;
      }()),
      retry_log_(options_.retry_log_period, 5,
                 [](const std::string& line) { spdlog::warn("{}", line); }),
      fair_(options_.fair_quantum),
      gate_(options_.answer_grace) {
  figures_.max_in_flight = options_.max_in_flight;
}

Scheduler::~Scheduler() {
  stop();
  std::lock_guard lock(reply_gate_->mutex);
  reply_gate_->open = false;
}

void Scheduler::start() {
  std::lock_guard lock(mutex_);
  if (running_) return;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
  if (store_.defers_sync()) sync_thread_ = std::thread([this] { sync_loop(); });
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
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (!unsynced_.empty()) {
    // The loop is gone: what its commits acknowledge is given here, on disk
    // first. Not after a failed flush: a second fdatasync may succeed with the
    // pages lost (the kernel reports a writeback error once).
    std::optional<Status> failed;
    {
      std::lock_guard lock(mutex_);
      failed = sync_failure_;
    }
    Status synced = failed ? *failed : store_.sync();
    {
      std::lock_guard lock(mutex_);
      if (synced.is_ok()) synced_ = committed_;
      if (!synced.is_ok() && !sync_failure_) sync_failure_ = synced;
    }
    give_synced();
  }
  std::vector<Dispatch> dispatches;
  std::vector<Waiter> waiters;
  std::vector<Action> actions;
  {
    std::lock_guard lock(mutex_);
    dispatches.swap(dispatches_);
    waiters.swap(new_waiters_);
    actions.swap(actions_);
  }
  Status stopping(Code::kUnavailable, "the server is shutting down");
  for (auto& d : dispatches) d.done(stopping, DispatchRelease());
  for (auto& a : actions) a.done(stopping);
  for (auto& w : waiters) w.done(stopping);
  for (auto& [id, w] : waiters_) w.done(stopping);
  waiters_.clear();
}

std::optional<Status> Scheduler::refusal() const {
  if (!running_) return Status(Code::kUnavailable, "the server is shutting down");
  if (sync_failure_) return sync_failure_;
  // Refused rather than queued: while the store fails, nothing may pile up in
  // memory, and the client holds the request until it can be recorded.
  if (store_failure_) return store_failure_;
  return std::nullopt;
}

void Scheduler::dispatch(std::vector<NewCall> calls, DispatchDone done) {
  std::optional<Status> refused;
  {
    std::lock_guard lock(mutex_);
    refused = refusal();
    if (!refused) dispatches_.push_back(Dispatch{std::move(calls), std::move(done)});
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

void Scheduler::cancel(std::string id, std::string actor, ActionDone done) {
  act(Action{true, std::move(id), std::move(actor), std::move(done)});
}

void Scheduler::retry_now(std::string id, std::string actor, ActionDone done) {
  act(Action{false, std::move(id), std::move(actor), std::move(done)});
}

void Scheduler::act(Action action) {
  std::optional<Status> refused;
  {
    std::lock_guard lock(mutex_);
    refused = refusal();
    if (!refused) actions_.push_back(std::move(action));
  }
  if (refused) {
    action.done(*refused);
    return;
  }
  wake_.notify_one();
}

SchedulerFigures Scheduler::figures() {
  std::lock_guard lock(mutex_);
  // While someone reads them, the loop keeps the queue depths fresh.
  figures_wanted_until_ = saturating_add(clock_.now(), 10 * options_.figures_period);
  SchedulerFigures copy = figures_;
  copy.in_flight = in_flight_;
  copy.endpoints = limits_.figures();
  copy.store_failing = store_failure_.has_value() || sync_failure_.has_value();
  return copy;
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

// Why an attempt of a claimed call started (its history says so).
std::string wake_reason(const ClaimedCall& claimed) {
  const CallRecord& call = claimed.call;
  if (call.poll) {
    return static_cast<int>(claimed.results.size()) >= call.poll->min_results ? "results"
                                                                              : "deadline";
  }
  return call.attempts <= 1 ? "dispatched" : "retry";
}

std::string_view outcome_of(const Transition& t) {
  using Kind = Transition::Kind;
  switch (t.kind) {
    case Kind::kFinish:
      return t.end.succeeded ? "succeeded" : "failed";
    case Kind::kRetry:
      return "retry";
    case Kind::kRestart:
      return "restart";
    case Kind::kTailCall:
      return "tail_call";
    case Kind::kSuspend:
      return "suspended";
    case Kind::kRejectChildren:
      return "rejected";
    case Kind::kHold:
      return "held";
    case Kind::kResendWhole:
      return "resend";
  }
  return "failed";
}

Status Scheduler::apply_transition(CallTransaction& tx, const ClaimedCall& claimed, Transition& t,
                                   Turn& turn, bool* applied_out) {
  const CallRecord& call = claimed.call;
  auto delivered = delivered_results(claimed);
  Micros now = clock_.now();
  bool applied = false;
  using Kind = Transition::Kind;
  if ((t.kind == Kind::kSuspend || t.kind == Kind::kRejectChildren) && t.poll.delta &&
      !continues_carried_journal(call, t.poll)) {
    // A failed attempt, so that a process that keeps sending deltas the store
    // does not hold stops at the call's limit (the store would retry at once).
    // Asked only then: a delta that continues what the attempt carried is
    // stored, and the store's read of its revision costs a round trip.
    ASSIGN_OR_RETURN(auto refused, tx.refused_delta(call.id, t.poll));
    if (refused) {
      t.kind = Kind::kRetry;
      t.status = protocol::DispatchStatus::kTemporaryError;
      t.reason = CallError{"JournalDeltaRefused", std::move(*refused)};
    }
  }
  if (t.kind == Kind::kRetry || t.kind == Kind::kRestart) {
    Micros ready_at = now + backoff(call.attempts);
    // A call's own limit (Call.max_attempts, Ratchet's extension) wins.
    int max_attempts = call.max_attempts > 0 ? call.max_attempts : options_.retry.max_attempts;
    if (call.attempts >= max_attempts) {
      CallEnd end = failure_end(t.status, t.reason.message);
      end.error->type = t.reason.type;
      end.error->message += " (gave up after " + std::to_string(call.attempts) +
                            (call.attempts == 1 ? " attempt)" : " attempts)");
      t = Transition{Kind::kFinish, t.status, std::move(end), {}, {}, {}, {}, {}};
    } else {
      // A retry due after the call's expiration is recorded all the same:
      // the call fails TIMEOUT at its expiration (CallTransaction::expire),
      // not now. A restart's reason (the SDK's "step N diverged: ...")
      // becomes the call's last error, which the dashboard and `ratchet
      // status` show.
      bool retry = t.kind == Kind::kRetry;
      if (retry) {
        ASSIGN_OR_RETURN(applied, tx.retry(call.id, call.lease_epoch, ready_at, t.reason));
      } else {
        ASSIGN_OR_RETURN(applied, tx.restart(call.id, call.lease_epoch, ready_at, t.reason));
      }
      if (applied) {
        ++turn.retried;
        turn.retries.push_back(RetryEvent{
            call.id, call.function, call.endpoint, call.attempts,
            retry ? "failed" : "answered " + t.reason.type + ", restarting from its input",
            t.reason, ready_at - now, !retry});
      }
      *applied_out = applied;
      return Status::ok();
    }
  }
  switch (t.kind) {
    case Kind::kFinish: {
      ASSIGN_OR_RETURN(applied, tx.finish(call.id, call.lease_epoch, t.end, delivered));
      if (applied) {
        turn.finished.push_back(call.id);
        ++turn.ended[{call.function, t.end.succeeded ? "SUCCEEDED" : "FAILED"}];
      }
      if (applied && !t.end.succeeded) {
        turn.warnings.push_back(
            CallLine{call.id, call.function, call.attempts,
                     "failed: " + t.end.error->type + ": " + t.end.error->message});
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
        turn.warnings.push_back(CallLine{call.id, call.function, call.attempts,
                                         "is held for an operator: " + t.reason.message});
      }
      break;
    }
    case Kind::kResendWhole: {
      // No backoff and no attempt: only the frame was missing, not the call's luck.
      ASSIGN_OR_RETURN(applied, tx.resend_whole(call.id, call.lease_epoch));
      break;
    }
    case Kind::kRetry:
    case Kind::kRestart:
      break;
  }
  // false: the lease was lost (or the call was cancelled or expired): the
  // reply is ignored.
  *applied_out = applied;
  return Status::ok();
}

void Scheduler::record_attempt(const Reply& reply, const Transition& t, bool applied, Turn& turn) {
  const ClaimedCall& claimed = reply.claimed;
  const CallRecord& call = claimed.call;
  Micros now = clock_.now();
  HistoryEvent attempt{call.id,
                       "attempt",
                       0,
                       reply.sent_at,
                       reply.received_at - reply.sent_at,
                       call.attempts,
                       static_cast<int>(t.status),
                       std::string(applied ? outcome_of(t) : "lost"),
                       wake_reason(claimed),
                       0,
                       static_cast<int>(claimed.results.size())};
  const CallError* error = nullptr;
  if (t.kind == Transition::Kind::kFinish) {
    if (t.end.error) error = &*t.end.error;
  } else if (!t.reason.type.empty()) {
    error = &t.reason;
  }
  if (error) attempt.detail += "; " + error->type + ": " + error->message;
  turn.history.push_back(std::move(attempt));
  if (applied && t.kind == Transition::Kind::kSuspend) {
    std::string waits = "min_results " + std::to_string(t.poll.min_results) + ", deadline " +
                        std::to_string(t.poll.deadline);
    turn.history.push_back(HistoryEvent{call.id,
                                        "poll",
                                        0,
                                        now,
                                        {},
                                        call.attempts,
                                        0,
                                        "waiting",
                                        std::move(waits),
                                        static_cast<int>(t.children.size()),
                                        0});
  }
}

Status Scheduler::apply_reply(CallTransaction& tx, const Reply& reply, Turn& turn) {
  Transition t = interpret_reply(reply.claimed.call, reply.reply, reply.received_at, options_.poll);
  turn.load.emplace_back(reply.claimed.call.endpoint, reply.ticket);
  turn.signals.push_back(load_signal(reply.reply, t.status));
  bool applied = false;
  RETURN_IF_ERROR(apply_transition(tx, reply.claimed, t, turn, &applied));
  record_attempt(reply, t, applied, turn);
  return Status::ok();
}

Status Scheduler::apply_action(CallTransaction& tx, Action& action, Turn& turn) {
  Result<std::vector<std::string>> result = std::vector<std::string>{};
  if (action.cancel) {
    result = tx.cancel(action.id, action.actor);
    if (result.is_ok()) {
      turn.cancelled += static_cast<int>(result->size());
      turn.finished.insert(turn.finished.end(), result->begin(), result->end());
    }
  } else {
    auto skipped = tx.retry_now(action.id, action.actor);
    if (skipped.is_ok()) {
      result = *skipped ? std::vector<std::string>{action.id} : std::vector<std::string>{};
    } else {
      result = skipped.status();
    }
  }
  // An unknown id is the action's answer, not the turn's failure.
  if (!result.is_ok() && result.status().code() != Code::kNotFound) return result.status();
  action.result = std::move(result);
  return Status::ok();
}

Status Scheduler::claim(CallTransaction& tx, Turn& turn) {
  Micros now = clock_.now();
  // Expired calls end first, at their expiration, whatever they were doing.
  ASSIGN_OR_RETURN(
      auto expired,
      tx.expire(failure_end(protocol::DispatchStatus::kTimeout, "the call expired"), 1000));
  turn.expired = static_cast<int>(expired.size());
  turn.finished.insert(turn.finished.end(), expired.begin(), expired.end());
  if (turn.free_slots <= 0) return Status::ok();
  Micros lease_until = now + options_.lease;
  // Expired leases and coroutines past their deadline first: they were due
  // before anything ready now.
  ASSIGN_OR_RETURN(auto claimed, tx.claim_urgent(options_.owner, lease_until, turn.free_slots));
  for (const auto& c : claimed) {
    auto [room, added] = turn.room.try_emplace(c.call.endpoint, turn.new_endpoint_room);
    --room->second;
  }
  int slots = turn.free_slots - static_cast<int>(claimed.size());
  if (slots > 0) RETURN_IF_ERROR(claim_fairly(tx, turn, slots, lease_until, claimed));
  for (auto& c : claimed) {
    // More than a turn's expiry took (expire's limit) may have passed its
    // expiration: it fails without running.
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
  turn.claimed = static_cast<int>(turn.to_send.size() + turn.held.size());
  return Status::ok();
}

Status Scheduler::claim_fairly(CallTransaction& tx, Turn& turn, int slots, Micros lease_until,
                               std::vector<ClaimedCall>& claimed) {
  ASSIGN_OR_RETURN(auto due, tx.due_queues(fair_.cursor(), options_.due_queue_batch));
  if (due.empty()) return Status::ok();
  // Only what an endpoint has room for is claimed: the rest stays in the store.
  std::map<std::string, int> room;
  for (const auto& q : due) {
    auto known = turn.room.find(q.endpoint);
    room[q.endpoint] = known != turn.room.end() ? known->second : turn.new_endpoint_room;
  }
  auto take = [&](const QueueKey& queue, int limit) -> Result<int> {
    ASSIGN_OR_RETURN(auto taken, tx.claim_queue(queue, options_.owner, lease_until, limit));
    for (auto& c : taken) claimed.push_back(std::move(c));
    return static_cast<int>(taken.size());
  };
  ASSIGN_OR_RETURN(int taken, fair_.serve(due, slots, room, take));
  // A full endpoint's calls wait for its replies, which wake the loop.
  for (const auto& [endpoint, left] : room) turn.blocked = turn.blocked || left <= 0;
  if (static_cast<int>(due.size()) < options_.due_queue_batch) return Status::ok();
  // Queues past a full batch were not read, and no reply need come for them.
  // The next turn reads on from past what this one served, at once: each such
  // turn claims something, so they end once room or the due queues run out.
  // A batch with no room at all is passed, for the next turn that comes (a
  // reply, the safety poll): turning at once would spin while all are full.
  if (taken > 0) {
    turn.unread_queues = true;
  } else {
    fair_.pass(due.back());
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
  for (auto& action : turn.actions) RETURN_IF_ERROR(apply_action(tx, action, turn));
  RETURN_IF_ERROR(tx.record_history(turn.history));
  if (turn.read_figures) {
    ASSIGN_OR_RETURN(auto figures, tx.queue_figures());
    turn.queue_figures = std::move(figures);
  }
  if (turn.last) {
    for (const auto& [id, epoch] : turn.release) RETURN_IF_ERROR(tx.release(id, epoch).status());
  }
  RETURN_IF_ERROR(claim(tx, turn));
  ASSIGN_OR_RETURN(turn.next_due, tx.next_due());
  if (turn.blocked && !turn.unread_queues && turn.next_due && *turn.next_due <= turn.began) {
    // What was due and is unclaimed waits for room at a full endpoint, which
    // only the replies of its calls in flight bring, and each wakes the loop:
    // until one comes, only what falls due later.
    ASSIGN_OR_RETURN(turn.next_due, tx.next_due_after(turn.began));
  }
  ASSIGN_OR_RETURN(auto next_expiry, tx.next_expiry());
  if (next_expiry && (!turn.next_due || *next_expiry < *turn.next_due)) {
    turn.next_due = next_expiry;
  }
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
  turn.actions.swap(actions_);
  std::vector<AnswerEvent> answer_events;
  answer_events.swap(answer_events_);
  turn.free_slots = draining_ ? 0 : options_.max_in_flight - in_flight_;
  for (const auto& e : limits_.figures()) turn.room[e.endpoint] = limits_.room(e.endpoint);
  turn.new_endpoint_room = limits_.room("");

  turn.send_before_commit = !store_failure_;
  Micros now = clock_.now();
  turn.read_figures =
      now < figures_wanted_until_ && now >= figures_read_at_ + options_.figures_period;
  turn.last = draining_ && !drained_ && (sent_.empty() || now >= drain_deadline_);
  if (turn.last) turn.release.assign(sent_.begin(), sent_.end());
  // Once a drain gives the leases back, the calls the gate holds stay unsent.
  turn.release_answered = !turn.last && !drained_;
  store_news_ = false;
  room_news_ = false;
  lock.unlock();
  for (const auto& e : answer_events) {
    e.read ? gate_.read(e.answer, e.at) : gate_.written(e.answer, e.at);
  }
  for (const auto& w : turn.waiters) gate_.waited(w.id, clock_.now());
  // Committed and answered: they go now, before this turn's transaction.
  if (turn.release_answered) {
    for (auto& call : gate_.release_due(clock_.now())) {
      std::uint64_t ticket = take_held_ticket(call.call.id);
      send(std::move(call), ticket);
    }
  }

  Micros began = turn.began = clock_.now();
  Status committed = store_.calls([&](CallTransaction& tx) { return apply_turn(tx, turn); });
  Micros took = clock_.now() - began;
  if (!committed.is_ok()) {
    after_failure(committed, turn);
    hold_missing_blobs(committed);
    lock.lock();
    return false;
  }
  // Counted before anyone is answered: a client that has its answer finds it
  // in the figures.
  lock.lock();
  turn.commit = ++committed_;
  count(turn, took);
  lock.unlock();
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
    forget_held();
    drained_ = true;
    drained_cv_.notify_all();
  }
  return true;
}

void Scheduler::count(const Turn& turn, Micros commit_took) {
  // Under mutex_: figures() copies them.
  SchedulerFigures& f = figures_;
  for (const auto& [key, n] : turn.ended) f.count_ended(key.first, key.second, n);
  for (const auto& d : turn.dispatches) f.calls_dispatched += d.calls.size();
  f.attempts += turn.replies.size();
  f.retries += static_cast<std::uint64_t>(turn.retried);
  f.cancelled += static_cast<std::uint64_t>(turn.cancelled);
  f.expired += static_cast<std::uint64_t>(turn.expired);
  f.commit_seconds.observe(static_cast<double>(commit_took) / kMicrosPerSecond);
  std::size_t size = turn.replies.size() + static_cast<std::size_t>(turn.claimed);
  for (const auto& d : turn.dispatches) size += d.calls.size();
  f.turn_size.observe(static_cast<double>(size));
  if (turn.queue_figures) {
    f.queue_depth = turn.queue_figures->ready;
    f.waiting = turn.queue_figures->waiting;
    figures_read_at_ = clock_.now();
  }
  // AIMD: what the replies said about their endpoints (counted once: the
  // replies of a failed turn come again in the next).
  for (std::size_t i = 0; i < turn.load.size(); ++i) {
    limits_.observed(turn.load[i].first, turn.load[i].second, turn.signals[i]);
  }
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
  for (const auto& line : turn.warnings) log_call(LogLevel::kWarn, line);
  if (!turn.dispatches.empty() || !turn.actions.empty()) {
    auto dispatches = std::make_shared<std::vector<Dispatch>>(std::move(turn.dispatches));
    auto actions = std::make_shared<std::vector<Action>>(std::move(turn.actions));
    // The gate knows the ids from the commit on: a later turn that claims one
    // of these calls before the answer is out holds it.
    auto answers = std::make_shared<std::vector<AnswerGate::Answer>>();
    for (const auto& d : *dispatches) answers->push_back(gate_.answering(*d.ids));
    acknowledge({turn.commit,
                 [this, dispatches, actions, answers] {
                   for (std::size_t i = 0; i < dispatches->size(); ++i) {
                     auto& d = (*dispatches)[i];
                     auto release = std::make_shared<DispatchRelease::State>();
                     release->scheduler = this;
                     release->answer = (*answers)[i];
                     d.done(std::move(d.ids), DispatchRelease(std::move(release)));
                   }
                   for (auto& a : *actions) a.done(std::move(a.result));
                 },
                 [this, dispatches, actions, answers](const Status& refused) {
                   for (auto& d : *dispatches) d.done(refused, DispatchRelease());
                   for (auto& a : *actions) a.done(refused);
                   // Their callers will never have the ids: the calls need not wait.
                   for (auto answer : *answers) gate_.read(answer, clock_.now());
                 }});
  }
  for (auto& w : turn.waiters) waiters_.emplace(w.id, std::move(w));
  answer_waiters(turn.finished, !turn.waiters.empty());
}

void Scheduler::acknowledge(Acknowledgment ack) {
  unsynced_.push_back(std::move(ack));
  if (store_.defers_sync()) {
    std::lock_guard lock(mutex_);
    if (unsynced_.back().commit > sync_wanted_) {
      sync_wanted_ = unsynced_.back().commit;
      sync_cv_.notify_one();
    }
  }
  give_synced();
}

void Scheduler::give_synced() {
  std::uint64_t synced;
  std::optional<Status> failure;
  {
    std::lock_guard lock(mutex_);
    // A store that syncs in each commit has every commit on disk.
    synced = store_.defers_sync() ? synced_ : committed_;
    failure = sync_failure_;
    synced_given_ = synced;
  }
  while (!unsynced_.empty() && unsynced_.front().commit <= synced) {
    Acknowledgment ack = std::move(unsynced_.front());
    unsynced_.pop_front();
    ack.give();
  }
  if (!failure) return;
  while (!unsynced_.empty()) {
    Acknowledgment ack = std::move(unsynced_.front());
    unsynced_.pop_front();
    ack.refuse(*failure);
  }
}

void Scheduler::sync_loop() {
  pthread_setname_np(pthread_self(), "ratchet-sync");
  std::unique_lock lock(mutex_);
  while (running_ && !sync_failure_) {
    auto wanted = [this] { return !running_ || sync_wanted_ > synced_; };
    if (!SpinBeforeSleep::process().spin_until(lock, wanted)) sync_cv_.wait(lock, wanted);
    if (!running_) return;
    // Every commit counted here has returned: the sync covers it.
    std::uint64_t target = committed_;
    lock.unlock();
    Status synced = store_.sync();
    lock.lock();
    if (synced.is_ok()) {
      synced_ = std::max(synced_, target);
    } else {
      sync_failure_ = synced;
    }
    wake_.notify_one();
    if (!synced.is_ok()) {
      lock.unlock();
      spdlog::critical(
          "{}: nothing more is acknowledged and dispatches are refused; restart the server, "
          "which carries on from what the disk holds (nothing acknowledged is lost)",
          synced.message());
      lock.lock();
    }
  }
}

// The calls claimed before their Dispatch was answered wait in the gate, leased
// and counted in flight, so that a drain waits for them and gives them back.
void Scheduler::hold_unanswered(Turn& turn) {
  if (turn.held.empty()) return;
  std::vector<Lease> leases;
  std::vector<std::pair<std::string, std::string>> added;  // call id, endpoint
  for (auto& c : turn.held) {
    leases.emplace_back(c.call.id, c.call.lease_epoch);
    std::pair<std::string, std::string> call{c.call.id, c.call.endpoint};
    // false: it replaced a held claim of the same call, counted already.
    if (gate_.hold(std::move(c))) added.push_back(std::move(call));
  }
  std::lock_guard lock(mutex_);
  in_flight_ += static_cast<int>(added.size());
  for (auto& [id, epoch] : leases) sent_[id] = epoch;
  // Counted in their endpoints' in flight now, so that the next claims leave
  // them room (AIMD); their tickets go with them when the gate lets them go.
  for (const auto& [id, endpoint] : added) held_tickets_[id] = limits_.sent(endpoint);
}

std::uint64_t Scheduler::take_held_ticket(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = held_tickets_.find(id);
  if (it == held_tickets_.end()) return 0;
  std::uint64_t ticket = it->second;
  held_tickets_.erase(it);
  return ticket;
}

// A read of a value whose blob is gone (a store edited by hand) fails the
// turn; only the calls that need such a value stop, held for an operator, and
// the turn goes again at once without them.
void Scheduler::hold_missing_blobs(const Status& error) {
  if (!blobs::is_missing(error)) return;
  std::vector<std::string> held;
  Status holding = store_.calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(held, tx.hold_missing_blobs(
                               "a value over 64 KiB that it needs is missing from the store (a "
                               "blob deleted by hand); held for an operator, so that nothing runs "
                               "on a wrong value (`ratchet cancel` ends it)"));
    return Status::ok();
  });
  if (!holding.is_ok() || held.empty()) return;
  for (const auto& id : held) spdlog::warn("call {} is held: {}", id, error.message());
  std::lock_guard lock(mutex_);
  next_store_try_ = clock_.now();
}

void Scheduler::forget_held() {
  // No reply will count them out of flight, at the scheduler and at their
  // endpoints, as they were never sent: they are counted out here.
  for (const auto& held : gate_.take_held()) {
    ignored_.erase({held.call.id, held.call.lease_epoch});
    --in_flight_;
    limits_.answered(held.call.endpoint);
    held_tickets_.erase(held.call.id);
  }
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
  for (auto& a : turn.actions) a.done(refusal);
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
  // Answered as read now, once what was read is on disk.
  auto answers = std::make_shared<std::vector<std::pair<Waiter, CallOutcome>>>();
  for (const auto& id : ids) {
    auto found = store_.find_call(id);
    auto range = waiters_.equal_range(id);
    if (found.is_ok() && *found && !is_terminal((*found)->status)) continue;
    for (auto it = range.first; it != range.second; ++it) {
      if (!found.is_ok()) {
        answers->emplace_back(std::move(it->second), found.status());
      } else if (!*found) {
        answers->emplace_back(std::move(it->second), not_found("no call with dispatch id " + id));
      } else {
        answers->emplace_back(std::move(it->second), **found);
      }
    }
    waiters_.erase(range.first, range.second);
  }
  if (!answers->empty()) {
    std::uint64_t read_after;
    {
      // What was read may include another writer's commit (a second server,
      // `ratchet cancel`) made after the flush in progress began: the answer
      // waits for a flush that begins after the read.
      std::lock_guard lock(mutex_);
      read_after = ++committed_;
    }
    acknowledge({read_after,
                 [answers] {
                   for (auto& [waiter, outcome] : *answers) waiter.done(std::move(outcome));
                 },
                 [answers](const Status& refused) {
                   for (auto& [waiter, outcome] : *answers) waiter.done(refused);
                 }});
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
  std::vector<std::uint64_t> tickets;
  tickets.reserve(claimed.size());
  {
    std::lock_guard lock(mutex_);
    in_flight_ += static_cast<int>(claimed.size());
    for (const auto& c : claimed) {
      sent_[c.call.id] = c.call.lease_epoch;
      if (sent) sent->emplace_back(c.call.id, c.call.lease_epoch);
      tickets.push_back(limits_.sent(c.call.endpoint));
    }
  }
  std::vector<EndpointRun> runs;
  runs.reserve(claimed.size());
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    runs.push_back(run_of(std::move(claimed[i]), tickets[i]));
  }
  claimed.clear();
  client_.run_all(std::move(runs));
}

void Scheduler::send(ClaimedCall claimed, std::uint64_t ticket) {
  EndpointRun run = run_of(std::move(claimed), ticket);
  client_.run(run.endpoint, std::move(run.run_request), std::move(run.done));
}

EndpointRun Scheduler::run_of(ClaimedCall claimed, std::uint64_t ticket) {
  EndpointRun run;
  run.run_request = build_run_request(claimed);
  run.endpoint = claimed.call.endpoint;
  Micros sent_at = clock_.now();
  run.done = [this, gate = reply_gate_, claimed = std::move(claimed), ticket,
              sent_at](EndpointReply reply) mutable {
    std::lock_guard open(gate->mutex);
    if (!gate->open) return;
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
      limits_.answered(claimed.call.endpoint);
      Lease lease{claimed.call.id, claimed.call.lease_epoch};
      if (ignored_.erase(lease) == 0) {
        auto it = sent_.find(lease.first);
        if (it != sent_.end() && it->second == lease.second) sent_.erase(it);
        replies_.push_back(
            Reply{std::move(claimed), std::move(reply), ticket, sent_at, clock_.now()});
      } else {
        // Not recorded (sent by a turn whose commit failed, or given back by
        // a drain), but its room is free: a call left for lack of it may go.
        room_news_ = true;
      }
    }
    wake_.notify_one();
  };
  return run;
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
  // Named for top -H and the benchmarks, which read its CPU time.
  pthread_setname_np(pthread_self(), "ratchet-loop");
  std::unique_lock lock(mutex_);
  Micros last_full_check = clock_.now();
  bool turn_wanted = true;
  while (running_) {
    if (turn_wanted && (!store_failure_ || clock_.now() >= next_store_try_)) run_turn(lock);
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
    give_synced();
    expire_waiters(now);
    retry_log_.flush(now);
    lock.lock();
    // Sleep until there is news, a call falls due, a waiter's deadline, or
    // the safety poll (whose turn also carries the store's heartbeat). While
    // the store fails, only the backoff ends the sleep: news waits for it.
    auto turn_news = [this] {
      if (!running_) return true;
      if (store_failure_) return false;
      return !dispatches_.empty() || !replies_.empty() || !new_waiters_.empty() ||
             !answer_events_.empty() || store_news_ || room_news_ || !actions_.empty() ||
             (draining_ && !drained_ && sent_.empty());
    };
    // Acknowledgments whose commits reached the disk go at once, even while
    // the store fails, and need no turn.
    auto synced_news = [this] {
      return !unsynced_.empty() && (synced_ > synced_given_ || sync_failure_);
    };
    auto has_news = [&] { return turn_news() || synced_news(); };
    Micros until = wake_at(now);
    if (until > now && !SpinBeforeSleep::process().spin_until(lock, has_news)) {
      clock_.wait_until(lock, wake_, until, has_news);
    }
    turn_wanted = turn_news() || clock_.now() >= until || !synced_news();
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
