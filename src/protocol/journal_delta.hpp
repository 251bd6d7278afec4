// Journal deltas: Ratchet's extension between its C++ SDK and its server, so
// that a step costs the same at step 100,000 as at step 1 (docs/sdk.md, "Cost
// per step"; the format is in proto/ratchet/sdk/v1/journal.proto).
//
// A server that sets PollResult.journal_deltas may get, as a Poll's
// typed_coroutine_state, a ratchet.sdk.v1.JournalDelta instead of a whole
// Journal: the steps that changed since the revision the server holds. The
// server keeps the whole journal as a base and the deltas after it, append-only,
// and sends back either the latest delta byte for byte (its sender holds the
// rest in its frame cache) or the whole journal assembled here.
//
// Assembly is cheap because a delta's `changes` is a Journal fragment that
// merges into the base by protobuf's own rule: bytes appended to a message's
// bytes parse as a merge. Scalars (revision, completed) take the later value,
// repeated `names` append, and `step_updates` is a map, whose later entry for
// a key wins. normalize_journal then moves step_updates into steps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "ratchet/sdk/v1/journal.pb.h"

namespace ratchet::protocol {

inline constexpr std::string_view kJournalType = "type.googleapis.com/ratchet.sdk.v1.Journal";
inline constexpr std::string_view kJournalDeltaType =
    "type.googleapis.com/ratchet.sdk.v1.JournalDelta";

// What the server needs to know of a Poll's typed state (the bytes of its Any).
struct StateRevision {
  bool delta = false;
  std::uint64_t revision = 0;       // of the journal the state is or makes
  std::uint64_t base_revision = 0;  // a delta's: the revision it applies to
};
// nullopt when the state is not a C++ journal or delta (another SDK's state),
// or cannot be read as one (it does not parse, or is over 2 GiB).
std::optional<StateRevision> state_revision(std::string_view type_url, std::string_view value);

// Moves a merged journal's step_updates into its steps (step n replaces step
// n, or appends when n is one past the last). kInvalidArgument for a gap.
Status normalize_journal(::ratchet::sdk::v1::Journal& journal);

// The whole journal (the bytes of an Any of a Journal) from `base` (the same)
// and the deltas recorded after it, oldest first (each the bytes of an Any of
// a JournalDelta).
Result<std::string> assemble_journal(const std::string& base,
                                     const std::vector<std::string>& deltas);

// What a resume carries when the deltas an SDK sent do not assemble (only a
// broken or hostile SDK sends such): an Any of this type, its value the
// reason. The C++ SDK answers it INCOMPATIBLE_STATE, so the call restarts from
// its input, as for any state it cannot resume, instead of blocking the store.
inline constexpr std::string_view kBrokenJournalType =
    "type.googleapis.com/ratchet.sdk.v1.BrokenJournal";
std::string broken_journal_state(const std::string& reason);
// assemble_journal, or broken_journal_state with why it failed.
std::string assemble_or_broken(const std::string& base, const std::vector<std::string>& deltas);

}  // namespace ratchet::protocol
