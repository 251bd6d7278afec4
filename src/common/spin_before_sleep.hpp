// A thread that has just handled something spins for a moment before it
// sleeps: the next event of a request (a reply, the next job, bytes on a
// socket) often comes within microseconds, and a thread that is still awake
// takes it at once, where a sleeping one costs a wake-up: on a virtual machine
// whose idle virtual CPUs halt, 30 to 100 us each, several times a step
// (docs/performance.md, "Spinning before sleeping").
//
// The spin is bounded twice: by a window after the thread's last event
// (RATCHET_SPIN_US, 100 us by default; 0 turns spinning off), and by the
// number of threads of the process spinning at once (no more than its CPUs),
// and a spinning thread yields its CPU between checks, so that runnable
// threads go first. Spinning changes only how soon a thread notices news,
// never what it does with it: it is wall time, not the Clock seam.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>

#include "common/status.hpp"

namespace ratchet {

class SpinBeforeSleep {
 public:
  using Steady = std::chrono::steady_clock;

  SpinBeforeSleep(std::chrono::microseconds window, int max_spinners);
  SpinBeforeSleep(const SpinBeforeSleep&) = delete;
  SpinBeforeSleep& operator=(const SpinBeforeSleep&) = delete;

  // The process's: RATCHET_SPIN_US (read once; a value that is not a whole
  // number of microseconds from 0 to 10000 is named in one line on stderr
  // and the default used), as many spinners as the CPUs this process may use.
  static SpinBeforeSleep& process();
  // RATCHET_SPIN_US checked as process() reads it: the server and `ratchet
  // dev` refuse to start on a value it would replace by the default.
  static Status check_environment();

  std::chrono::microseconds window() const { return window_; }
  int spinning() const { return spinners_.load(std::memory_order_relaxed); }

  // Checks `ready()` (with `lock` held) until it holds or the window passes,
  // letting go of the lock and yielding between checks. True when ready;
  // false at once when spinning is off or enough threads spin already. The
  // caller then sleeps as it would have.
  template <typename Ready>
  bool spin_until(std::unique_lock<std::mutex>& lock, Ready&& ready) {
    if (ready()) return true;
    Slot slot(*this);
    if (!slot.held) return false;
    const Steady::time_point end = Steady::now() + window_;
    for (;;) {
      lock.unlock();
      yield();
      lock.lock();
      if (ready()) return true;
      if (Steady::now() >= end) return false;
    }
  }

  // For a loop that polls for its own events: true (after yielding the CPU
  // once) while the window since `last_event` is open and a spinner's place
  // is free; false when the caller should block.
  bool spin_once_since(Steady::time_point last_event);

 private:
  // One of the places of max_spinners_, held while a thread spins.
  struct Slot {
    explicit Slot(SpinBeforeSleep& owner);
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    SpinBeforeSleep& owner;
    bool held = false;
  };
  static void yield();

  std::chrono::microseconds window_;
  int max_spinners_;
  std::atomic<int> spinners_{0};
};

}  // namespace ratchet
