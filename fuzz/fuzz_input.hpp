// Helpers shared by the fuzz targets: reading choices from the fuzzer's bytes,
// and failing loudly when an invariant breaks (libFuzzer reports the abort).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace ratchet::fuzz {

// Consumes the input front to back.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Up to the next `separator` (consumed), or everything left.
  std::string_view until(char separator) {
    std::size_t at = rest_.find(separator);
    std::string_view part = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + 1);
    return part;
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

[[noreturn]] inline void invariant_failed(const char* what) {
  std::fprintf(stderr, "invariant failed: %s\n", what);
  std::abort();
}

#define RATCHET_FUZZ_CHECK(condition)                                \
  do {                                                               \
    if (!(condition)) ::ratchet::fuzz::invariant_failed(#condition); \
  } while (0)

}  // namespace ratchet::fuzz
