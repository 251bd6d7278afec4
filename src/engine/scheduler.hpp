// The scheduler: drives every durable call from dispatch to its final result.
//
// One loop thread owns the store's write side. Each turn it takes everything
// that has queued up (new dispatches, endpoint replies, waiters), applies it
// together with the claims of ready calls in ONE transaction (group commit:
// one fsync carries many steps), then answers dispatchers and waiters and
// sends the claimed calls to their endpoints. Replies arrive on any thread and
// wake the loop. Time (including how long the loop sleeps) comes from the
// injected Clock, randomness (retry jitter) from the injected source, the
// network from the EndpointClient.
//
// A failing store (a full disk, an I/O error, a lock held too long) does not
// make the scheduler spin: failed turns are retried after a capped
// exponential backoff, nothing claimed by a failed turn is sent again until a
// commit records it, new dispatches are refused (kUnavailable: clients retry)
// so that nothing queues up without bound, and the log says so once when the
// store starts failing and once when it works again.
//
// The store takes over the leases of server instances that are gone
// (storage/instance.hpp); drain() (a deploy) hands this one's back.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/answer_gate.hpp"
#include "engine/attempt.hpp"
#include "engine/endpoint_client.hpp"
#include "engine/endpoint_limits.hpp"
#include "engine/fair_queue.hpp"
#include "engine/figures.hpp"
#include "engine/retry_log.hpp"
#include "storage/store.hpp"

namespace ratchet::engine {

struct RetryPolicy {
  int max_attempts = 20;
  Micros initial_backoff = 100 * kMicrosPerMilli;
  Micros max_backoff = 30 * kMicrosPerSecond;
};

struct SchedulerOptions {
  std::string owner = "ratchet";              // this server's name on the leases it takes
  int max_in_flight = 512;                    // calls sent and not yet answered
  Micros lease = 15 * 60 * kMicrosPerSecond;  // > the endpoint request timeout
  // How often to look for work anyway (other servers of a fleet, a clock that
  // jumped): a safety net, not how work is normally found.
  Micros safety_poll = kMicrosPerSecond;
  RetryPolicy retry;
  PollDefaults poll;
  // How long after its Dispatch's answer is written a new call goes (AnswerGate).
  Micros answer_grace = 20 * kMicrosPerMilli;
  std::uint64_t seed = std::random_device{}();
  // While the store fails, turns are retried after this backoff, doubling
  // from the first to the cap.
  Micros store_retry_initial = 50 * kMicrosPerMilli;
  Micros store_retry_max = 2 * kMicrosPerSecond;
  // Retries are logged aggregated (retry_log.hpp), one summary per period.
  Micros retry_log_period = 30 * kMicrosPerSecond;
  // Ready calls are claimed per queue (function at endpoint) in deficit round
  // robin; each round, the queues of an endpoint share this many calls.
  int fair_quantum = 32;
  // How many due queues a turn reads from the store at most (tests make it
  // small to have more due queues than one turn reads).
  int due_queue_batch = 1000;
  // Each endpoint's in-flight limit (AIMD); its max is at most max_in_flight.
  AimdOptions aimd;
  // How often the queue depths of figures() are read from the store, while
  // someone reads them.
  Micros figures_period = kMicrosPerSecond;
};

// A call's final result, as Wait answers it.
using CallOutcome = Result<CallRecord>;

class Scheduler;

// Lets the calls of one Dispatch go to their endpoints (see AnswerGate): they go
// the scheduler's grace after written() is called (the API calls it once its
// answer is in the socket) or after the last copy is destroyed, or at once when
// read() is called (the client's next request came). Copyable. The Scheduler
// must outlive it.
class DispatchRelease {
 public:
  DispatchRelease() = default;  // releases nothing
  void written() const;
  void read() const;

 private:
  friend class Scheduler;
  struct State;
  explicit DispatchRelease(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// The ids of a Dispatch's calls in order, once committed and on disk, or why not.
using DispatchDone = std::function<void(Result<std::vector<std::string>>, DispatchRelease)>;

class Scheduler {
 public:
  Scheduler(Store& store, const Clock& clock, EndpointClient& client, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  // A deploy: stops claiming, waits up to `grace` (on the Clock) for the
  // replies of the calls in flight and records them, then releases the leases
  // it still holds (READY at once, for any server). Dispatches and waits are
  // still served. Returns once done; stop() next. begin_drain() starts it and
  // returns; await_drained() waits for its end.
  void drain(Micros grace);
  void begin_drain(Micros grace);
  void await_drained();
  // Stops taking new work; replies still in flight are recorded if they arrive
  // before `stop` returns, else their calls are taken over by the next server
  // (or retried when their leases end).
  void stop();

  // Records the calls (all or nothing) and answers their ids, in order, once
  // committed and on disk; kUnavailable (nothing recorded) while the store
  // fails. Should the disk fail to flush the commit, the answer is
  // kUnavailable too, but the calls are recorded and may run. They are sent
  // once `done`'s DispatchRelease lets them go. The calls must be valid (see
  // protocol::validate_dispatched_call).
  void dispatch(std::vector<NewCall> calls, DispatchDone done);

  friend struct DispatchRelease::State;

  // Answers the call's record once it is terminal (at once if it already is),
  // or kDeadlineExceeded at `deadline`; kNotFound for an unknown id.
  void wait(std::string id, Micros deadline, std::function<void(CallOutcome)> done);

  // Cancels the call and its descendants (CallTransaction::cancel) in the
  // next turn, and answers the ids cancelled once committed; their waiters
  // are answered at once. `actor` goes into the history.
  using ActionDone = std::function<void(Result<std::vector<std::string>>)>;
  void cancel(std::string id, std::string actor, ActionDone done);
  // Skips the call's backoff (CallTransaction::retry_now): answers {id} when
  // it was waiting out a backoff, {} otherwise.
  void retry_now(std::string id, std::string actor, ActionDone done);

  // The scheduler's figures now (figures.hpp): what /metrics and the
  // dashboard show. Cheap: copies what the loop keeps.
  SchedulerFigures figures();

 private:
  struct Dispatch {
    std::vector<NewCall> calls;
    DispatchDone done;
    Result<std::vector<std::string>> ids = std::vector<std::string>{};
  };
  struct Reply {
    ClaimedCall claimed;
    EndpointReply reply;
    std::uint64_t ticket = 0;  // its endpoint's window (EndpointLimits)
    Micros sent_at = 0;
    // When it came: a Poll's max_wait and its children's expirations count
    // from here, as the endpoint meant them, not from the turn that records
    // it, which may come a busy turn later.
    Micros received_at = 0;
  };
  struct Action {
    bool cancel = true;  // else retry now
    std::string id;
    std::string actor;
    ActionDone done;
    Result<std::vector<std::string>> result = std::vector<std::string>{};
  };
  struct Waiter {
    std::string id;
    Micros deadline;
    std::function<void(CallOutcome)> done;
  };
  using Lease = std::pair<std::string, std::int64_t>;  // call id, epoch
  struct Turn;
  // What a committed turn tells clients (Dispatch's ids, an action's result,
  // Wait's answers as read right after the commit): given once that commit is
  // on disk, in commit order (Store::defers_sync; at once otherwise), or
  // refused should the disk fail to take it.
  struct Acknowledgment {
    std::uint64_t commit = 0;
    std::function<void()> give;
    std::function<void(const Status&)> refuse;
  };

  void loop();
  Micros wake_at(Micros now) const;
  bool run_turn(std::unique_lock<std::mutex>& lock);
  Status apply_turn(CallTransaction& tx, Turn& turn);
  Status claim(CallTransaction& tx, Turn& turn);
  // Adds to `claimed` what the queues in deficit round robin give.
  Status claim_fairly(CallTransaction& tx, Turn& turn, int slots, Micros lease_until,
                      std::vector<ClaimedCall>& claimed);
  void act(Action action);
  // Why a request cannot be queued now (under mutex_): stopping, or the store fails.
  std::optional<Status> refusal() const;
  Status apply_action(CallTransaction& tx, Action& action, Turn& turn);
  Status read_figures(CallTransaction& tx, Turn& turn);
  void record_attempt(const Reply& reply, const Transition& t, bool applied, Turn& turn);
  Status apply_reply(CallTransaction& tx, const Reply& reply, Turn& turn);
  Status apply_transition(CallTransaction& tx, const ClaimedCall& claimed, Transition& t,
                          Turn& turn, bool* applied);
  void after_commit(Turn& turn);
  void hold_missing_blobs(const Status& error);
  void after_failure(const Status& error, Turn& turn);
  Micros backoff(int attempts);
  // Sends the calls (counted in flight); leaves `claimed` empty.
  void send_all(std::vector<ClaimedCall>& claimed, std::vector<Lease>* sent);
  void send(ClaimedCall claimed, std::uint64_t ticket);
  // The request for a claimed call, with what its reply does.
  EndpointRun run_of(ClaimedCall claimed, std::uint64_t ticket);
  void count(const Turn& turn, Micros commit_took);
  void answer_waiters(const std::vector<std::string>& finished, bool check_all);
  // Loop thread (or stop(), once the loop is gone), without mutex_.
  void acknowledge(Acknowledgment ack);
  void give_synced();
  // The thread that puts commits on disk when acknowledgments wait for them.
  void sync_loop();
  void hold_unanswered(Turn& turn);
  // The AIMD ticket a held call took (EndpointLimits::sent), once it goes.
  std::uint64_t take_held_ticket(const std::string& id);
  // Under mutex_, at the drain's end: the held calls were given back unsent.
  void forget_held();
  void expire_waiters(Micros now);
  // Any thread: a Dispatch's answer is written, or was read (DispatchRelease).
  void answer_event(AnswerGate::Answer answer, bool read);

  Store& store_;
  const Clock& clock_;
  EndpointClient& client_;
  SchedulerOptions options_;
  std::mt19937_64 random_;

  std::mutex mutex_;
  // The client is not the scheduler's: it may call a reply back from its own
  // threads after the scheduler is gone. Each reply holds this and is dropped
  // once the destructor has closed it.
  struct ReplyGate {
    std::mutex mutex;
    bool open = true;
  };
  std::shared_ptr<ReplyGate> reply_gate_ = std::make_shared<ReplyGate>();
  std::condition_variable wake_;
  std::condition_variable drained_cv_;
  bool running_ = false;
  bool draining_ = false;  // no more claims
  bool drained_ = false;   // the leases left were released
  Micros drain_deadline_ = 0;
  std::optional<Status> store_failure_;  // set while the store fails
  std::vector<Dispatch> dispatches_;
  std::vector<Reply> replies_;
  std::vector<Waiter> new_waiters_;
  std::vector<Action> actions_;
  struct AnswerEvent {
    AnswerGate::Answer answer;
    bool read;  // else written
    Micros at;
  };
  std::vector<AnswerEvent> answer_events_;
  int in_flight_ = 0;
  EndpointLimits limits_;
  std::map<std::string, std::uint64_t> held_tickets_;  // calls the gate holds -> their tickets
  SchedulerFigures figures_;                  // the counters and histograms; read by figures()
  Micros figures_wanted_until_ = 0;           // someone read them lately: keep the depths fresh
  std::map<std::string, std::int64_t> sent_;  // in flight: call id -> epoch
  // Sent by a turn whose commit failed, or released: their replies are dropped.
  std::set<Lease> ignored_;
  bool store_news_ = false;  // watch_calls: another process made calls due
  bool room_news_ = false;   // an ignored reply freed room at its endpoint
  std::optional<Micros> next_due_;
  Micros next_store_try_ = 0;
  std::thread thread_;
  // Commits so far, and how many are on disk (Store::defers_sync).
  std::uint64_t committed_ = 0;
  std::uint64_t sync_wanted_ = 0;  // the latest commit an acknowledgment waits for
  std::uint64_t synced_ = 0;
  std::optional<Status> sync_failure_;  // the disk failed to take commits: refuse all
  std::condition_variable sync_cv_;
  std::thread sync_thread_;

  // Loop thread only.
  std::deque<Acknowledgment> unsynced_;
  std::uint64_t synced_given_ = 0;  // synced_ when give_synced() last looked
  std::multimap<std::string, Waiter> waiters_;
  Micros store_delay_ = 0;
  Micros failing_since_ = 0;
  int failed_turns_ = 0;
  RetryLog retry_log_;
  DeficitRoundRobin fair_;
  Micros figures_read_at_ = 0;
  AnswerGate gate_;  // its held calls are counted in flight, and in sent_
};

}  // namespace ratchet::engine
