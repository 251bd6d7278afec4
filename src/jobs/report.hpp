// What a supervisor tells the `ratchet start` that forked it, once, over a
// pipe: the job it recorded (or the key's existing one), or why it could not.
// `start` prints the job from the report without opening the store itself.
// Only processes of the same binary read it, so the format is private: a
// tag, then length-prefixed fields; any byte may appear in a string.
#pragma once

#include <string>
#include <string_view>

#include "common/status.hpp"
#include "storage/store.hpp"

namespace ratchet::jobs {

std::string encode_report(const StartedJob& started);
std::string encode_report(const Status& failure);
// The StartedJob, the Status the supervisor reported, or kInternal for bytes
// that are not a whole report.
Result<StartedJob> decode_report(std::string_view bytes);

}  // namespace ratchet::jobs
