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

// The error type of a process's TEMPORARY_ERROR answer to a delta whose frame
// it does not hold: the server sends the whole journal at once, as the same
// attempt (engine/attempt.hpp, Transition::kResendWhole).
inline constexpr std::string_view kJournalNotHeld = "JournalNotHeld";

// Whether a stored state (the bytes of an Any) is a JournalDelta.
bool is_journal_delta(const std::string& state);

// What the server needs to know of a Poll's typed state (the bytes of its Any).
struct StateRevision {
  bool delta = false;
  std::uint64_t revision = 0;       // of the journal the state is or makes
  std::uint64_t base_revision = 0;  // a delta's: the revision it applies to
};
// nullopt when the state is not a C++ journal or delta (another SDK's state),
// or cannot be read as one (it does not parse, is over 2 GiB, or is a delta
// that appends to `steps`). A Poll whose delta cannot be read is refused.
std::optional<StateRevision> state_revision(std::string_view type_url, std::string_view value);

// The revision of a whole C++ journal (the bytes of an Any of a Journal);
// nullopt for any other state.
std::optional<std::uint64_t> journal_revision(const std::string& state);

// Moves a merged journal's step_updates into its steps (step n replaces step
// n, or appends when n is one past the last). kInvalidArgument for a gap.
Status normalize_journal(::ratchet::sdk::v1::Journal& journal);

// The whole journal (the bytes of an Any of a Journal) from `base` (the same)
// and the deltas recorded after it, oldest first (each the bytes of an Any of
// a JournalDelta).
Result<std::string> assemble_journal(const std::string& base,
                                     const std::vector<std::string>& deltas);

// Compaction, so that a coroutine keeps few delta rows however long it runs
// (docs/storage.md, coroutine_deltas). Before a Poll's delta is appended, the
// deltas already stored are merged as a counter in base kDeltaFanIn counts:
// kDeltaFanIn deltas that each cover the same number of Polls at the end of
// the list become one delta covering that many times more. A coroutine of N
// Polls therefore keeps at most kDeltaFanIn·log_kDeltaFanIn(N) + 1 rows, and
// each delta is rewritten about log_kDeltaFanIn(N) times. When such a merge
// takes in every delta and they are at least as large as the base, they are
// folded into a new base instead, so the base is rewritten when it has at
// least doubled: a constant amortised cost per step. The newest delta is never
// merged before the next Poll: the first attempt after a Poll echoes it.
inline constexpr std::size_t kDeltaFanIn = 8;

// `revisions`: the base's revision, then each stored delta's, in order. The
// index (into the deltas) from which they are to be merged into one; the
// number of deltas when none are.
std::size_t merge_from(const std::vector<std::uint64_t>& revisions);

// One delta (the bytes of an Any of a JournalDelta) that assembles onto the
// journal the first of `deltas` applies to as all of them in order would.
Result<std::string> merge_deltas(const std::vector<std::string>& deltas);

// Whether merging `deltas` into one may hide good revisions: a delta after the
// first may not assemble on the ones before it (it touches a step past the
// highest they touch, which no journal they assemble onto need have). A
// merged delta that does not assemble takes the good ones before it down
// with it, and `ratchet rewind` would then start from an older revision
// (assemble_good_prefix). Never true for the C++ SDK's deltas when each Poll
// adds a step; when it is, the store checks the journal's good prefix before
// it merges. Cheap: the deltas' step numbers only.
bool may_hide_good_revisions(const std::vector<std::string>& deltas);

// What compaction writes in place of `deltas` (from merge_from's index on):
// with `base` (given when they are all the stored deltas) and deltas at least
// as large, a new base (`base` true: the whole journal); otherwise one merged
// delta. nullopt when they do not merge (a broken delta): they stay as they are.
struct Compacted {
  bool base = false;
  std::string state;
};
std::optional<Compacted> compact(const std::optional<std::string>& base,
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

// The journal assembled from `base` and its deltas, or, when they do not all
// assemble, from the longest first run of them that does (an operator's repair
// of a journal whose later deltas are broken works from there; `ratchet check`
// reports it broken). Without deltas, `base` as it is, whatever it holds;
// with deltas on a base that is not a C++ journal, the base, broken.
struct GoodPrefix {
  std::string journal;
  std::size_t deltas = 0;  // how many of the deltas it took
  std::string broken;      // why the next delta does not assemble; "" when all did
};
GoodPrefix assemble_good_prefix(const std::string& base, const std::vector<std::string>& deltas);

}  // namespace ratchet::protocol
