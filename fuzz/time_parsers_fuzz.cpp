// libFuzzer target for the command line's DATETIME and DUR parsers.
// Build: cmake -DRATCHET_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ...
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/time_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto datetime = ratchet::parse_datetime(text);
  if (datetime.is_ok()) (void)ratchet::format_local_time(*datetime);
  (void)ratchet::parse_duration(text);
  return 0;
}
