#include "common/time_format.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace ratchet {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// A cursor over the text with the few primitives the ISO 8601 grammar needs.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}
  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // Exactly `width` decimal digits.
  bool digits(int width, int* out) {
    int value = 0;
    for (int i = 0; i < width; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      value = value * 10 + (text_[pos_++] - '0');
    }
    *out = value;
    return true;
  }
  // A fraction after the decimal point, as microseconds (digits past 6 are cut).
  bool fraction(Micros* out) {
    int count = 0;
    Micros value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (count < 6) value = value * 10 + (text_[pos_] - '0');
      ++pos_;
      ++count;
    }
    for (int i = count; i < 6; ++i) value *= 10;
    *out = value;
    return count > 0;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

Status bad_datetime(std::string_view text) {
  return invalid_argument("invalid DATETIME '" + std::string(text) +
                          "': expected ISO 8601 such as 2026-05-01, 2026-05-01T02:00:00 or "
                          "2026-05-01T02:00:00+09:00");
}

// Parses "Z", "+HH", "+HHMM" or "+HH:MM" into seconds east of UTC.
bool parse_offset(Scanner& s, int* offset_seconds) {
  if (s.accept('Z') || s.accept('z')) {
    *offset_seconds = 0;
    return true;
  }
  int sign = 0;
  if (s.accept('+'))
    sign = 1;
  else if (s.accept('-'))
    sign = -1;
  else
    return false;
  int hours = 0, minutes = 0;
  if (!s.digits(2, &hours)) return false;
  if (s.accept(':')) {
    if (!s.digits(2, &minutes)) return false;
  } else if (!s.done() && !s.digits(2, &minutes)) {
    return false;
  }
  if (hours > 23 || minutes > 59) return false;
  *offset_seconds = sign * (hours * 3600 + minutes * 60);
  return true;
}

}  // namespace

std::string format_local_time(Micros t) {
  std::time_t seconds = static_cast<std::time_t>(t / kMicrosPerSecond);
  Micros micros = t % kMicrosPerSecond;
  if (micros < 0) {
    micros += kMicrosPerSecond;
    --seconds;
  }
  std::tm local{};
  localtime_r(&seconds, &local);
  // The offset is written in whole minutes (RFC 3339 has no seconds there). A
  // zone whose offset has seconds (local mean time before 1972, a TZ such as
  // XXX-05:30:15) is shown at its offset cut to whole minutes, with the clock
  // time moved to match, so that the instant the text names stays exact.
  long offset = local.tm_gmtoff - local.tm_gmtoff % 60;
  if (offset != local.tm_gmtoff) {
    std::time_t shown = seconds + offset;
    gmtime_r(&shown, &local);
  }
  char sign = offset < 0 ? '-' : '+';
  if (offset < 0) offset = -offset;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld%c%02ld:%02ld",
                local.tm_year + 1900, local.tm_mon + 1, local.tm_mday, local.tm_hour, local.tm_min,
                local.tm_sec, static_cast<long long>(micros), sign, offset / 3600,
                (offset % 3600) / 60);
  return buffer;
}

Result<Micros> parse_datetime(std::string_view text) {
  Scanner s(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  Micros fraction = 0;
  // ISO 8601's extended format (2026-05-01T02:00:00) or its basic one
  // (20260501T020000, as `date +%Y%m%d` writes it): the date decides, and the
  // time follows it.
  if (!s.digits(4, &year)) return bad_datetime(text);
  const bool extended = s.accept('-');
  if (!s.digits(2, &month) || (extended && !s.accept('-')) || !s.digits(2, &day)) {
    return bad_datetime(text);
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) {
    return bad_datetime(text);
  }
  auto separator = [&] {
    return extended ? s.accept(':') : std::isdigit(static_cast<unsigned char>(s.peek())) != 0;
  };
  if (s.accept('T') || s.accept('t') || (extended && s.accept(' '))) {
    if (!s.digits(2, &hour) || !separator() || !s.digits(2, &minute)) return bad_datetime(text);
    if (separator()) {
      if (!s.digits(2, &second)) return bad_datetime(text);
      if ((s.accept('.') || s.accept(',')) && !s.fraction(&fraction)) return bad_datetime(text);
    }
    if (hour > 23 || minute > 59 || second > 60) return bad_datetime(text);
  }
  std::optional<int> offset;
  if (!s.done()) {
    int parsed = 0;
    if (!parse_offset(s, &parsed) || !s.done()) return bad_datetime(text);
    offset = parsed;
  }
  std::int64_t seconds_since_epoch = 0;
  if (offset) {
    seconds_since_epoch =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - *offset;
  } else {
    std::tm local{};
    local.tm_year = year - 1900;
    local.tm_mon = month - 1;
    local.tm_mday = day;
    local.tm_hour = hour;
    local.tm_min = minute;
    local.tm_sec = second;
    local.tm_isdst = -1;  // let the zone rules decide
    seconds_since_epoch = std::mktime(&local);
  }
  return seconds_since_epoch * kMicrosPerSecond + fraction;
}

Result<Micros> parse_duration(std::string_view text) {
  auto bad = [&] {
    return invalid_argument("invalid DUR '" + std::string(text) +
                            "': expected a duration such as 30s, 500ms, 5m, 1h30m or 2.5");
  };
  if (text.empty()) return bad();
  double total_seconds = 0;
  std::size_t pos = 0;
  bool bare_number_allowed = true;
  while (pos < text.size()) {
    std::size_t start = pos;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) {
      ++pos;
    }
    if (pos == start) return bad();
    std::string number(text.substr(start, pos - start));
    char* end = nullptr;
    double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return bad();
    std::size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    double scale = 0;
    if (unit.empty()) {
      if (!bare_number_allowed || pos != text.size()) return bad();
      scale = 1;
    } else if (unit == "ms") {
      scale = 0.001;
    } else if (unit == "s") {
      scale = 1;
    } else if (unit == "m") {
      scale = 60;
    } else if (unit == "h") {
      scale = 3600;
    } else if (unit == "d") {
      scale = 86400;
    } else {
      return bad();
    }
    bare_number_allowed = false;
    total_seconds += value * scale;
  }
  // A clock's deadline is now plus the duration in nanoseconds
  // (std::chrono::steady_clock), which holds 292 years: past that it would
  // wrap, and a --timeout of 10^10 seconds would fire at once.
  if (!std::isfinite(total_seconds)) return bad();
  if (total_seconds > kMaxDurationSeconds) {
    return invalid_argument("invalid DUR '" + std::string(text) + "': longer than " +
                            std::to_string(kMaxDurationSeconds / 86400) + "d");
  }
  return static_cast<Micros>(std::llround(total_seconds * kMicrosPerSecond));
}

std::string format_duration(Micros d) {
  if (d < 0) d = 0;
  std::string out;
  Micros seconds = d / kMicrosPerSecond;
  for (auto [unit, size] : {std::pair{'d', 86400}, {'h', 3600}, {'m', 60}}) {
    if (seconds < size) continue;
    out += std::to_string(seconds / size) + unit;
    seconds %= size;
  }
  Micros fraction = d % kMicrosPerSecond;
  if (seconds == 0 && fraction == 0 && !out.empty()) return out;
  out += std::to_string(seconds);
  if (fraction != 0) {
    std::string digits = std::to_string(kMicrosPerSecond + fraction).substr(1);  // 6 digits
    out += "." + digits.substr(0, digits.find_last_not_of('0') + 1);
  }
  return out + "s";
}

}  // namespace ratchet
