// Durations and times in whole microseconds, saturating: a duration too long
// for an int64 of microseconds (std::chrono::hours::max(), a "forever") is
// the longest one there is, not an overflow that wraps into the past.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace ratchet::detail {

// `d` rounded up to microseconds, clamped to what std::chrono::microseconds holds.
template <typename Rep, typename Period>
constexpr std::chrono::microseconds saturating_micros(std::chrono::duration<Rep, Period> d) {
  using Micros = std::chrono::microseconds;
  // Compared in `d`'s own unit, or in double for a floating-point duration,
  // whose range is far wider than int64 microseconds (1e300 s, infinity).
  using Wide = std::chrono::duration<double, std::micro>;
  if constexpr (std::chrono::treat_as_floating_point_v<Rep>) {
    const Wide wide = std::chrono::duration_cast<Wide>(d);
    if (!(wide < Wide(static_cast<double>(std::numeric_limits<std::int64_t>::max())))) {
      return wide != wide ? Micros::zero() : Micros::max();  // NaN: no time at all
    }
    if (!(wide > Wide(static_cast<double>(std::numeric_limits<std::int64_t>::min())))) {
      return Micros::min();
    }
    return std::chrono::ceil<Micros>(wide);
  } else {
    using D = std::chrono::duration<Rep, Period>;
    // Only a unit coarser than microseconds can overflow them; Micros' bounds
    // in that unit (a division) are the limits. A finer unit divides.
    if constexpr (std::ratio_greater_v<Period, std::micro>) {
      if (d > std::chrono::floor<D>(Micros::max())) return Micros::max();
      if (d < std::chrono::ceil<D>(Micros::min())) return Micros::min();
    }
    return std::chrono::ceil<Micros>(d);
  }
}

}  // namespace ratchet::detail
