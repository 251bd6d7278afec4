// What operators and `--ratchet-check` do with suspended coroutines through the
// store (docs/sdk.md, "Safe deploys" and "Operator repair"): list the open
// ones with their state, rewrite a state, and the record of every such action
// (the call_actions table, docs/storage.md).
//
// The store does not read coroutine states: a repair brings its own edit of
// the bytes (protocol/journal_edit.hpp knows the C++ SDK's journal).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "storage/call.hpp"

namespace ratchet {

// A suspended coroutine (a call with a stored state that is not DONE).
struct OpenCoroutine {
  std::string id;
  std::string function;
  CallPhase phase = CallPhase::kWaiting;
  int member = 0;        // the Poll field its state came in (PollState::member)
  std::string state;     // the bytes, as stored
  std::string endpoint;  // the endpoint its call names
};

// A new coroutine state, and what changed (the action's detail).
struct StateEdit {
  std::string state;
  std::string detail;
};

// A rewrite of a waiting or held coroutine's state. The call becomes READY at
// once, so that its function resumes from the new state.
struct CoroutineRepair {
  std::string call_id;
  // The new state from the stored one (member, bytes); an error refuses the
  // repair and nothing is written.
  std::function<Result<StateEdit>(int member, const std::string& state)> edit;
  // Children with correlation ids in [abandon_from, abandon_to] are abandoned
  // (their results, arrived or not, never reach the call): the steps they
  // answered were rewound or given a result by hand. 0: none.
  std::uint64_t abandon_from = 0;
  std::uint64_t abandon_to = 0;
  // Recorded in the same transaction (at: the store's clock; detail: the edit's).
  CallAction action;
};

}  // namespace ratchet
