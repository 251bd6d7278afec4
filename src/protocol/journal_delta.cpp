#include "protocol/journal_delta.hpp"

#include <google/protobuf/any.pb.h>

#include <algorithm>
#include <limits>

namespace ratchet::protocol {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

Status not_a_journal(std::string_view what) {
  return invalid_argument("the stored coroutine state " + std::string(what) +
                          ": the journal cannot be assembled from its deltas");
}

}  // namespace

std::optional<StateRevision> state_revision(std::string_view type_url, std::string_view value) {
  // ParseFromArray takes an int: a larger size would wrap around.
  if (value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  if (type_url == kJournalDeltaType) {
    jv1::JournalDelta delta;
    if (!delta.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
    return StateRevision{true, delta.changes().revision(), delta.base_revision()};
  }
  if (type_url == kJournalType) {
    jv1::Journal journal;
    if (!journal.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
    return StateRevision{false, journal.revision(), 0};
  }
  return std::nullopt;
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
    google::protobuf::Any wrapped;
    jv1::JournalDelta delta;
    if (!wrapped.ParseFromString(bytes) || wrapped.type_url() != kJournalDeltaType ||
        !delta.ParseFromString(wrapped.value())) {
      return not_a_journal("has a delta that does not parse");
    }
    merged += delta.changes().SerializeAsString();
  }
  jv1::Journal journal;
  if (!journal.ParseFromString(merged)) return not_a_journal("does not parse with its deltas");
  RETURN_IF_ERROR(normalize_journal(journal));
  any.PackFrom(journal);
  return any.SerializeAsString();
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
