#include "protocol/journal_delta.hpp"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/arena.h>

#include <algorithm>
#include <cstddef>
#include <limits>

namespace ratchet::protocol {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

Status not_a_journal(std::string_view what) {
  return invalid_argument("the stored coroutine state " + std::string(what) +
                          ": the journal cannot be assembled from its deltas");
}

// A delta's `changes`, as bytes; nullopt when it is not a delta.
std::optional<std::string> changes_of(const std::string& bytes) {
  google::protobuf::Any wrapped;
  jv1::JournalDelta delta;
  if (!wrapped.ParseFromString(bytes) || wrapped.type_url() != kJournalDeltaType ||
      !delta.ParseFromString(wrapped.value())) {
    return std::nullopt;
  }
  return delta.changes().SerializeAsString();
}

std::uint64_t base_revision_of(const std::string& bytes) {
  google::protobuf::Any wrapped;
  jv1::JournalDelta delta;
  if (!wrapped.ParseFromString(bytes) || !delta.ParseFromString(wrapped.value())) return 0;
  return delta.base_revision();
}

}  // namespace

std::optional<StateRevision> state_revision(std::string_view type_url, std::string_view value) {
  // ParseFromArray takes an int: a larger size would wrap around.
  if (value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  // The scheduler's loop parses each Poll's state here only to check it and
  // read its revisions: its steps and values go into an arena, a block on the
  // stack for a step's delta, instead of an allocation each.
  alignas(std::max_align_t) char first_block[4096];
  google::protobuf::ArenaOptions options;
  options.initial_block = first_block;
  options.initial_block_size = sizeof(first_block);
  google::protobuf::Arena arena(options);
  if (type_url == kJournalDeltaType) {
    auto* delta = google::protobuf::Arena::CreateMessage<jv1::JournalDelta>(&arena);
    if (!delta->ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
    // Steps go in step_updates: steps appended otherwise would assemble
    // differently once compaction folded the deltas before them.
    if (delta->changes().steps_size() > 0) return std::nullopt;
    return StateRevision{true, delta->changes().revision(), delta->base_revision()};
  }
  if (type_url == kJournalType) {
    auto* journal = google::protobuf::Arena::CreateMessage<jv1::Journal>(&arena);
    if (!journal->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return std::nullopt;
    }
    return StateRevision{false, journal->revision(), 0};
  }
  return std::nullopt;
}

bool is_journal_delta(const std::string& state) {
  google::protobuf::Any any;
  return any.ParseFromString(state) && any.type_url() == kJournalDeltaType;
}

std::optional<std::uint64_t> journal_revision(const std::string& state) {
  google::protobuf::Any any;
  if (!any.ParseFromString(state) || any.type_url() != kJournalType) return std::nullopt;
  auto revision = state_revision(any.type_url(), any.value());
  if (!revision) return std::nullopt;
  return revision->revision;
}

Status normalize_journal(jv1::Journal& journal) {
  if (journal.step_updates().empty()) return Status::ok();
  std::vector<std::uint64_t> numbers;
  numbers.reserve(journal.step_updates().size());
  for (const auto& [number, step] : journal.step_updates()) numbers.push_back(number);
  std::sort(numbers.begin(), numbers.end());
  auto& updates = *journal.mutable_step_updates();
  for (std::uint64_t number : numbers) {
    const auto size = static_cast<std::uint64_t>(journal.steps_size());
    if (number == 0 || number > size + 1) {
      return invalid_argument("the journal's delta updates step " + std::to_string(number) +
                              " of a journal of " + std::to_string(size) + " steps");
    }
    jv1::Step& step = number == size + 1 ? *journal.add_steps()
                                         : *journal.mutable_steps(static_cast<int>(number - 1));
    step = std::move(updates[number]);
  }
  journal.clear_step_updates();
  return Status::ok();
}

Result<std::string> assemble_journal(const std::string& base,
                                     const std::vector<std::string>& deltas) {
  if (deltas.empty()) return base;
  google::protobuf::Any any;
  if (!any.ParseFromString(base) || any.type_url() != kJournalType) {
    return not_a_journal("is not a C++ journal");
  }
  std::string merged = any.value();
  for (const std::string& bytes : deltas) {
    auto changes = changes_of(bytes);
    if (!changes) return not_a_journal("has a delta that does not parse");
    merged += *changes;
  }
  jv1::Journal journal;
  if (!journal.ParseFromString(merged)) return not_a_journal("does not parse with its deltas");
  RETURN_IF_ERROR(normalize_journal(journal));
  any.PackFrom(journal);
  return any.SerializeAsString();
}

std::size_t merge_from(const std::vector<std::uint64_t>& revisions) {
  // Each entry: the index of the first delta it covers, and how many Polls.
  struct Run {
    std::size_t first;
    std::uint64_t polls;
  };
  std::vector<Run> runs;
  for (std::size_t i = 1; i < revisions.size(); ++i) {
    runs.push_back({i - 1, revisions[i] - revisions[i - 1]});
  }
  const std::size_t deltas = runs.size();
  bool merged = false;
  while (runs.size() >= kDeltaFanIn) {
    const auto tail = runs.end() - static_cast<std::ptrdiff_t>(kDeltaFanIn);
    if (!std::all_of(tail, runs.end(), [&](const Run& run) { return run.polls == tail->polls; })) {
      break;
    }
    const Run run{tail->first, tail->polls * kDeltaFanIn};
    runs.erase(tail, runs.end());
    runs.push_back(run);
    merged = true;
  }
  return merged ? runs.back().first : deltas;
}

Result<std::string> merge_deltas(const std::vector<std::string>& deltas) {
  if (deltas.empty()) return invalid_argument("no deltas to merge");
  std::string merged;
  for (const std::string& bytes : deltas) {
    auto changes = changes_of(bytes);
    if (!changes) return not_a_journal("has a delta that does not parse");
    merged += *changes;
  }
  // Parsed once, so that a step added by one delta and completed by a later
  // one is kept once (a map's later entry wins), as assembly would keep it.
  jv1::JournalDelta delta;
  delta.set_base_revision(base_revision_of(deltas.front()));
  if (!delta.mutable_changes()->ParseFromString(merged)) {
    return not_a_journal("does not parse with its deltas");
  }
  google::protobuf::Any any;
  any.PackFrom(delta);
  return any.SerializeAsString();
}

bool may_hide_good_revisions(const std::vector<std::string>& deltas) {
  std::uint64_t reached = 0;  // the highest step the deltas before touch
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    google::protobuf::Any wrapped;
    jv1::JournalDelta delta;
    if (!wrapped.ParseFromString(deltas[i]) || !delta.ParseFromString(wrapped.value())) return true;
    std::vector<std::uint64_t> numbers;
    for (const auto& [number, step] : delta.changes().step_updates()) numbers.push_back(number);
    std::sort(numbers.begin(), numbers.end());
    for (std::uint64_t number : numbers) {
      // The first delta's steps are checked by no merge: whether it assembles
      // does not change when it is merged with those after it.
      if (i > 0 && number > reached + 1) return true;
      reached = std::max(reached, number);
    }
  }
  return false;
}

std::optional<Compacted> compact(const std::optional<std::string>& base,
                                 const std::vector<std::string>& deltas) {
  std::size_t bytes = 0;
  for (const std::string& delta : deltas) bytes += delta.size();
  if (base && bytes >= base->size()) {
    auto folded = assemble_journal(*base, deltas);
    if (folded.is_ok()) return Compacted{true, std::move(*folded)};
  }
  auto merged = merge_deltas(deltas);
  if (!merged.is_ok()) return std::nullopt;
  return Compacted{false, std::move(*merged)};
}

GoodPrefix assemble_good_prefix(const std::string& base, const std::vector<std::string>& deltas) {
  auto whole = assemble_journal(base, deltas);
  if (whole.is_ok()) return GoodPrefix{std::move(*whole), deltas.size(), ""};
  // One delta at a time (a journal parsed per delta) only on this rare path.
  GoodPrefix good{base, 0, whole.status().message()};
  if (!journal_revision(base)) return good;
  for (const std::string& delta : deltas) {
    auto next = assemble_journal(good.journal, {delta});
    if (!next.is_ok()) {
      good.broken = next.status().message();
      break;
    }
    good.journal = std::move(*next);
    ++good.deltas;
  }
  return good;
}

std::string broken_journal_state(const std::string& reason) {
  google::protobuf::Any any;
  any.set_type_url(std::string(kBrokenJournalType));
  any.set_value(reason);
  return any.SerializeAsString();
}

std::string assemble_or_broken(const std::string& base, const std::vector<std::string>& deltas) {
  auto whole = assemble_journal(base, deltas);
  return whole.is_ok() ? std::move(*whole) : broken_journal_state(whole.status().message());
}

}  // namespace ratchet::protocol
