#include "common/spin_before_sleep.hpp"

#include <sched.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace ratchet {
namespace {

constexpr std::chrono::microseconds kDefaultWindow{100};
constexpr unsigned kLongestWindowMicros = 10'000;

// RATCHET_SPIN_US as a window, or nullopt when it is not a whole number of
// microseconds from 0 to kLongestWindowMicros.
std::optional<std::chrono::microseconds> parse_window(std::string_view text) {
  unsigned micros = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), micros);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      micros > kLongestWindowMicros) {
    return std::nullopt;
  }
  return std::chrono::microseconds(micros);
}

std::string bad_window() {
  return "RATCHET_SPIN_US is not a whole number of microseconds from 0 to " +
         std::to_string(kLongestWindowMicros);
}

std::chrono::microseconds window_from_environment() {
  const char* text = std::getenv("RATCHET_SPIN_US");
  if (text == nullptr) return kDefaultWindow;
  if (auto window = parse_window(text)) return *window;
  std::fprintf(stderr, "ratchet: %s; spinning %lld us before sleeping, the default\n",
               bad_window().c_str(), static_cast<long long>(kDefaultWindow.count()));
  return kDefaultWindow;
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int count = CPU_COUNT(&set);
  return count < 1 ? 1 : count;
}

}  // namespace

SpinBeforeSleep::SpinBeforeSleep(std::chrono::microseconds window, int max_spinners)
    : window_(window), max_spinners_(max_spinners) {}

SpinBeforeSleep& SpinBeforeSleep::process() {
  static SpinBeforeSleep spin(window_from_environment(), usable_cpus());
  return spin;
}

Status SpinBeforeSleep::check_environment() {
  const char* text = std::getenv("RATCHET_SPIN_US");
  if (text == nullptr || parse_window(text)) return Status::ok();
  return invalid_argument(bad_window());
}

bool SpinBeforeSleep::spin_once_since(Steady::time_point last_event) {
  if (Steady::now() - last_event >= window_) return false;
  Slot slot(*this);
  if (!slot.held) return false;
  yield();
  return true;
}

SpinBeforeSleep::Slot::Slot(SpinBeforeSleep& owner) : owner(owner) {
  if (owner.window_.count() <= 0) return;
  held = owner.spinners_.fetch_add(1, std::memory_order_relaxed) < owner.max_spinners_;
  if (!held) owner.spinners_.fetch_sub(1, std::memory_order_relaxed);
}

SpinBeforeSleep::Slot::~Slot() {
  if (held) owner.spinners_.fetch_sub(1, std::memory_order_relaxed);
}

void SpinBeforeSleep::yield() { sched_yield(); }

}  // namespace ratchet
