#include "common/time_format.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>

namespace ratchet {
namespace {

class WithTimeZone {
 public:
  explicit WithTimeZone(const char* tz) {
    const char* old = std::getenv("TZ");
    if (old) old_ = old;
    had_ = old != nullptr;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~WithTimeZone() {
    if (had_)
      setenv("TZ", old_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }

 private:
  std::string old_;
  bool had_ = false;
};

constexpr Micros k2026_05_01_UTC = 1777593600LL * kMicrosPerSecond;  // 2026-05-01T00:00:00Z

TEST(FormatLocalTime, ShowsMicrosecondsAndTheLocalOffset) {
  WithTimeZone tz("Asia/Tokyo");
  EXPECT_EQ(format_local_time(k2026_05_01_UTC + 123456), "2026-05-01T09:00:00.123456+09:00");
}

TEST(FormatLocalTime, ShowsNegativeOffsets) {
  WithTimeZone tz("America/New_York");
  EXPECT_EQ(format_local_time(k2026_05_01_UTC), "2026-04-30T20:00:00.000000-04:00");
}

// An offset with seconds (POSIX TZ's sign is the opposite of ISO 8601's) is
// written in whole minutes, with the clock time to match: the text names the
// exact instant, which it missed by the offset's seconds before.
TEST(FormatLocalTime, AnOffsetWithSecondsIsShownInWholeMinutesAtTheSameInstant) {
  for (const auto& [tz, expected] :
       {std::pair{"XXX-05:30:15", "2026-05-01T05:30:00.000007+05:30"},
        std::pair{"XXX05:30:15", "2026-04-30T18:30:00.000007-05:30"}}) {
    WithTimeZone zone(tz);
    EXPECT_EQ(format_local_time(k2026_05_01_UTC + 7), expected) << tz;
    auto parsed = parse_datetime(format_local_time(k2026_05_01_UTC + 7));
    ASSERT_TRUE(parsed.is_ok()) << tz;
    EXPECT_EQ(*parsed, k2026_05_01_UTC + 7) << tz;
  }
}

TEST(FormatLocalTime, UtcHasZeroOffset) {
  WithTimeZone tz("UTC");
  EXPECT_EQ(format_local_time(k2026_05_01_UTC + 1), "2026-05-01T00:00:00.000001+00:00");
}

TEST(ParseDatetime, DateOnlyIsLocalMidnight) {
  WithTimeZone tz("Asia/Tokyo");
  auto t = parse_datetime("2026-05-01");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(*t, k2026_05_01_UTC - 9 * 3600 * kMicrosPerSecond);
}

TEST(ParseDatetime, DateTimeWithoutOffsetIsLocal) {
  WithTimeZone tz("Asia/Tokyo");
  auto t = parse_datetime("2026-05-01T09:00:00");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(*t, k2026_05_01_UTC);
  auto spaced = parse_datetime("2026-05-01 09:00");
  ASSERT_TRUE(spaced.is_ok());
  EXPECT_EQ(*spaced, k2026_05_01_UTC);
}

TEST(ParseDatetime, OffsetsAreHonouredWhateverTheLocalZone) {
  WithTimeZone tz("America/New_York");
  for (const char* text :
       {"2026-05-01T09:00:00+09:00", "2026-05-01T09:00:00+0900", "2026-05-01T09:00:00+09",
        "2026-05-01T00:00:00Z", "2026-04-30T20:00:00-04:00"}) {
    auto t = parse_datetime(text);
    ASSERT_TRUE(t.is_ok()) << text;
    EXPECT_EQ(*t, k2026_05_01_UTC) << text;
  }
}

TEST(ParseDatetime, TakesIso8601sBasicFormat) {
  WithTimeZone tz("Asia/Tokyo");
  for (const char* text : {"20260501T090000", "20260501T0900", "20260501T090000+0900",
                           "20260501T000000Z", "20260501T090000.000+09"}) {
    auto t = parse_datetime(text);
    ASSERT_TRUE(t.is_ok()) << text;
    EXPECT_EQ(*t, k2026_05_01_UTC) << text;
  }
  auto date = parse_datetime("20260501");
  ASSERT_TRUE(date.is_ok());
  EXPECT_EQ(*date, k2026_05_01_UTC - 9 * 3600 * kMicrosPerSecond);
  // One format or the other, not a mix.
  for (const char* text : {"20260501T09:00:00", "2026-05-01T0900", "2026-0501", "20260501 0900",
                           "20260501T09", "202605"}) {
    EXPECT_FALSE(parse_datetime(text).is_ok()) << text;
  }
}

TEST(ParseDatetime, KeepsFractionalSeconds) {
  auto t = parse_datetime("2026-05-01T00:00:00.25Z");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(*t, k2026_05_01_UTC + 250000);
}

TEST(ParseDatetime, RoundTripsItsOwnFormat) {
  WithTimeZone tz("Europe/Paris");
  Micros t = k2026_05_01_UTC + 654321;
  auto parsed = parse_datetime(format_local_time(t));
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(*parsed, t);
}

TEST(ParseDatetime, RejectsMalformedText) {
  for (const char* text :
       {"", "yesterday", "2026-13-01", "2026-02-30", "2026-05-01T25:00", "2026-05-01T10",
        "2026-05-01T10:00+9", "2026-05-01X", "26-05-01", "2026-05-01T10:00:00+09:00junk"}) {
    auto t = parse_datetime(text);
    EXPECT_FALSE(t.is_ok()) << text;
    if (!t.is_ok()) {
      EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
      EXPECT_NE(t.status().message().find("DATETIME"), std::string::npos);
    }
  }
}

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(*parse_duration("30s"), 30 * kMicrosPerSecond);
  EXPECT_EQ(*parse_duration("500ms"), 500 * kMicrosPerMilli);
  EXPECT_EQ(*parse_duration("5m"), 300 * kMicrosPerSecond);
  EXPECT_EQ(*parse_duration("1h30m"), 5400 * kMicrosPerSecond);
  EXPECT_EQ(*parse_duration("2.5"), 2500 * kMicrosPerMilli);
  EXPECT_EQ(*parse_duration("1d"), 86400 * kMicrosPerSecond);
  EXPECT_EQ(*parse_duration("0"), 0);
}

TEST(ParseDuration, RejectsDurationsLongerThanAHundredYears) {
  // Past 292 years a deadline in steady_clock's nanoseconds wraps round.
  EXPECT_EQ(*parse_duration("36500d"), kMaxDurationSeconds * kMicrosPerSecond);
  for (const char* text : {"36500d1s", "15000000000", "999999999999"}) {
    auto parsed = parse_duration(text);
    ASSERT_FALSE(parsed.is_ok()) << text;
    EXPECT_NE(parsed.status().message().find("longer than 36500d"), std::string::npos);
  }
}

TEST(FormatDuration, ReadsAsTypedAndParsesBack) {
  // A --timeout of an hour was reported as "timed out after 3.6e+03s".
  const std::pair<Micros, const char*> cases[] = {
      {3600 * kMicrosPerSecond, "1h"},
      {5400 * kMicrosPerSecond, "1h30m"},
      {2 * 86400 * kMicrosPerSecond, "2d"},
      {90 * kMicrosPerSecond + 500000, "1m30.5s"},
      {300 * kMicrosPerMilli, "0.3s"},
      {1500, "0.0015s"},
      {0, "0s"},
      {3601 * kMicrosPerSecond, "1h1s"},
  };
  for (const auto& [duration, text] : cases) {
    EXPECT_EQ(format_duration(duration), text);
    EXPECT_EQ(*parse_duration(format_duration(duration)), duration) << text;
  }
}

TEST(ParseDuration, RejectsMalformedText) {
  for (const char* text : {"", "s", "-5s", "5x", "1.2.3s", "5 s", "10s5", "abc", "1e999"}) {
    EXPECT_FALSE(parse_duration(text).is_ok()) << text;
  }
}

}  // namespace
}  // namespace ratchet

namespace ratchet {
namespace {

// Hostile input: random bytes, and random mixes of the characters the grammar
// uses, must give a value or an invalid_argument, never a crash or a hang.
TEST(TimeParsers, SurviveHostileInput) {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string alphabet = "0123456789-:T+Z.zs mhd,\x01\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string text(next() % 40, '\0');
    bool from_alphabet = i % 2 == 0;
    for (char& c : text) {
      c = from_alphabet ? alphabet[next() % alphabet.size()] : static_cast<char>(next());
    }
    auto datetime = parse_datetime(text);
    if (!datetime.is_ok()) {
      EXPECT_EQ(datetime.status().code(), Code::kInvalidArgument);
    }
    auto duration = parse_duration(text);
    if (duration.is_ok()) {
      EXPECT_GE(*duration, 0) << text;
    } else {
      EXPECT_EQ(duration.status().code(), Code::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace ratchet
