// The scheduler: drives every durable call from dispatch to its final result.
//
// One loop thread owns the store's write side. Each turn it takes everything
// that has queued up (new dispatches, endpoint replies, waiters), applies it
// together with the claims of ready calls in ONE transaction (group commit:
// one fsync carries many steps), then answers dispatchers and waiters and
// sends the claimed calls to their endpoints. Replies arrive on any thread and
// wake the loop. Time comes from the injected Clock, randomness (retry jitter)
// from the injected source, the network from the EndpointClient.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/answer_gate.hpp"
#include "engine/attempt.hpp"
#include "engine/endpoint_client.hpp"
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

// The ids of a Dispatch's calls in order, once committed, or why not.
using DispatchDone = std::function<void(Result<std::vector<std::string>>, DispatchRelease)>;

class Scheduler {
 public:
  Scheduler(Store& store, const Clock& clock, EndpointClient& client, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  // Stops taking new work; replies still in flight are recorded if they arrive
  // before `stop` returns, else their calls are retried when their leases end.
  void stop();

  // Records the calls (all or nothing) and answers their ids, in order, once
  // committed; they are sent once `done`'s DispatchRelease lets them go. The
  // calls must be valid (see protocol::validate_dispatched_call).
  void dispatch(std::vector<NewCall> calls, DispatchDone done);

  friend struct DispatchRelease::State;

  // Answers the call's record once it is terminal (at once if it already is),
  // or kDeadlineExceeded at `deadline`; kNotFound for an unknown id.
  void wait(std::string id, Micros deadline, std::function<void(CallOutcome)> done);

 private:
  struct Dispatch {
    std::vector<NewCall> calls;
    DispatchDone done;
    Result<std::vector<std::string>> ids = std::vector<std::string>{};
  };
  struct Reply {
    ClaimedCall claimed;
    EndpointReply reply;
  };
  struct Waiter {
    std::string id;
    Micros deadline;
    std::function<void(CallOutcome)> done;
  };
  struct Turn;

  void loop();
  void run_turn(std::unique_lock<std::mutex>& lock);
  Status apply_reply(CallTransaction& tx, const Reply& reply, Turn& turn);
  Status apply_transition(CallTransaction& tx, const ClaimedCall& claimed, Transition t,
                          Turn& turn);
  Micros backoff(int attempts);
  // Sends the calls (counted in flight); leaves `claimed` empty.
  void send_all(std::vector<ClaimedCall>& claimed);
  void send(ClaimedCall claimed);
  void answer_waiters(const std::vector<std::string>& finished, bool check_all);
  // Any thread: a Dispatch's answer is written, or was read (DispatchRelease).
  void answer_event(AnswerGate::Answer answer, bool read);

  Store& store_;
  const Clock& clock_;
  EndpointClient& client_;
  SchedulerOptions options_;
  std::mt19937_64 random_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool running_ = false;
  std::vector<Dispatch> dispatches_;
  std::vector<Reply> replies_;
  std::vector<Waiter> new_waiters_;
  struct AnswerEvent {
    AnswerGate::Answer answer;
    bool read;  // else written
    Micros at;
  };
  std::vector<AnswerEvent> answer_events_;
  int in_flight_ = 0;
  bool store_news_ = false;  // watch_calls: another process made calls due
  std::optional<Micros> next_due_;
  std::thread thread_;

  // Loop thread only.
  std::multimap<std::string, Waiter> waiters_;
  AnswerGate gate_;  // its held calls are counted in flight
};

}  // namespace ratchet::engine
