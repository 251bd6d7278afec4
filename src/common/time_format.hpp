// Conversions between Ratchet's stored times (microseconds since the epoch, UTC)
// and the text users read and write.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace ratchet {

// RFC 3339 in the local time zone (the TZ variable), with microseconds and the
// numeric offset: "2026-05-01T02:00:00.123456+09:00".
std::string format_local_time(Micros t);

// ISO 8601 as users type it on the command line: a date ("2026-05-01", local
// midnight), or a date-time with 'T' or a space, optional seconds and fraction,
// and an optional offset ("Z", "+09:00", "+0900", "+09"); or the same in the
// basic format ("20260501", "20260501T020000+0900"). Without an offset the
// time is local. Week and ordinal dates, and an hour alone, are refused.
Result<Micros> parse_datetime(std::string_view text);

// A duration: a number with a unit (ms, s, m, h, d), possibly several ("1h30m"),
// or a bare number of seconds ("2.5"). Negative durations are rejected, and
// so are those longer than kMaxDurationSeconds (100 years, 36500d).
constexpr std::int64_t kMaxDurationSeconds = 36500LL * 86400;
Result<Micros> parse_duration(std::string_view text);

// A duration as a user would type it, and as parse_duration reads it back:
// "1h30m", "2d", "1m0.5s", "0.3s", "0s".
std::string format_duration(Micros d);

}  // namespace ratchet
