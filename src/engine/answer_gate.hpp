// AnswerGate: holds newly dispatched calls back until their callers have their ids.
//
// dispatch-py matches a call's result to the id its Dispatch answered: the caller
// registers the id once it has read the answer, and whichever of the caller and the
// endpoint sees the id first creates the result's future, in its own event loop. A call
// that runs before its caller has read its id therefore loses its result when caller and
// endpoint run in different threads ("Future attached to a different loop").
//
// A server cannot see a client read. It can see the answer in the socket, after which
// the client still has to be scheduled, read and parse it: a call goes `grace` after its
// answer was written (after every answer that gave its id), or as soon as the client
// shows it has read it: it sends its next request on the connection, or asks Wait for
// one of the ids (Ratchet's SDK does at once, so it waits for no grace). A closed
// connection is not such a sign: dispatch-py closes its connection one event-loop turn
// before it registers the ids, and on a busy machine a thread can lose its CPU for
// milliseconds between the two (measured on 2 cores at load 12: with no grace, 10 to 60%
// of dispatch-py's callers in another thread than their endpoint lost their result;
// releasing on the close, 10%; with a 20 ms grace, 1 in 2,000).
//
// Only calls a client dispatched pass the gate. The calls of a recorded Poll have no
// caller waiting for their ids, and go at once. Used by the scheduler's loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "storage/call.hpp"

namespace ratchet::engine {

class AnswerGate {
 public:
  using Answer = std::uint64_t;  // one Dispatch's answer

  explicit AnswerGate(Micros grace) : grace_(grace) {}

  // A Dispatch is about to answer these ids: they wait for it.
  Answer answering(const std::vector<std::string>& ids);
  // The answer is in the socket since `at`: its calls may go `grace` later...
  void written(Answer answer, Micros at);
  // ...or at `at`, when the client's next request came,
  void read(Answer answer, Micros at);
  // or when a client asked Wait for `id`: every answer that gave it was read.
  void waited(const std::string& id, Micros at);

  // Whether a call claimed now must wait for an answer.
  bool holds(const std::string& id) const { return waiting_.count(id) > 0; }
  // Keeps a claimed call that holds() until it may go; false when it replaced a held
  // claim of the same call (its lease lapsed meanwhile).
  bool hold(ClaimedCall call);
  // The held calls that may go at `now`.
  std::vector<ClaimedCall> release_due(Micros now);
  // When release_due next has something to give (nullopt: nothing waits for time).
  std::optional<Micros> next_due() const;

  std::size_t held() const { return held_.size(); }
  // Lets go of every held call without releasing it (a drain gave their leases back).
  std::vector<ClaimedCall> take_held();

 private:
  void go_at(Answer answer, Micros at);
  void close(Answer answer, std::vector<ClaimedCall>& ready);

  Micros grace_;
  Answer next_ = 1;
  struct Open {
    std::vector<std::string> ids;
    std::optional<Micros> go_at;
  };
  std::map<Answer, Open> answers_;
  std::map<std::string, int> waiting_;  // id -> open answers that answered it
  std::multimap<Micros, Answer> due_;   // an entry whose time is not its go_at is stale
  std::map<std::string, ClaimedCall> held_;
};

}  // namespace ratchet::engine
