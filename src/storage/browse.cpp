#include "storage/browse.hpp"

#include <charconv>
#include <limits>

namespace ratchet {
namespace {

bool parse_int(std::string_view text, std::int64_t* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= 0;
}

}  // namespace

Result<PageBounds> page_bounds(const RunQuery& query) {
  constexpr Micros kMax = std::numeric_limits<Micros>::max();
  constexpr Micros kMin = std::numeric_limits<Micros>::min();
  const RunFilter& filter = query.filter;
  PageBounds bounds{filter.started_from.value_or(kMin), kMax,
                    std::numeric_limits<std::int64_t>::max()};
  if (filter.started_before) {
    bounds.newest = *filter.started_before == kMin ? kMin : *filter.started_before - 1;
  }
  if (query.cursor.empty()) return bounds;
  const std::string& text = query.cursor;
  auto dot = text.find('.');
  Micros started_at = 0;
  std::int64_t counter = 0;
  if (dot == std::string::npos || !parse_int(std::string_view(text).substr(0, dot), &started_at) ||
      !parse_int(std::string_view(text).substr(dot + 1), &counter)) {
    return invalid_argument("the cursor '" + text.substr(0, 64) +
                            "' is not one this server gave; start from the first page");
  }
  if (started_at <= bounds.newest) {
    bounds.newest = started_at;
    bounds.below = counter;
  }
  return bounds;
}

std::string cursor_after(Micros started_at, std::int64_t counter) {
  return std::to_string(started_at) + "." + std::to_string(counter);
}

long long count_of(const std::vector<HealthCounts::Count>& counts, std::string_view name) {
  long long sum = 0;
  for (const auto& row : counts) {
    if (name.empty() || row.name == name) sum += row.count;
  }
  return sum;
}

}  // namespace ratchet
