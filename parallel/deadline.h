// Waiting against a deadline, shared by the communicator backends: a wait polls its operation,
// gives the CPU away between polls (ranks often outnumber cores, and a spinning rank starves the
// peer it waits for), and gives up when the deadline passes so that the caller can name what hung.
#pragma once

#include <chrono>
#include <thread>

namespace longseq {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(std::chrono::milliseconds timeout) : start_(Clock::now()), timeout_(timeout) {}

  [[nodiscard]] bool expired() const { return Clock::now() - start_ >= timeout_; }
  [[nodiscard]] double elapsed_seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  [[nodiscard]] double timeout_seconds() const {
    return std::chrono::duration<double>(timeout_).count();
  }

  // Short waits (a ring step whose data is nearly there) only yield, to keep their latency low;
  // long ones sleep, so that a rank stuck on a slow peer costs its core almost nothing.
  void pause() const {
    if (Clock::now() - start_ < std::chrono::milliseconds(2)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  Clock::time_point start_;
  std::chrono::milliseconds timeout_;
};

// Calls done() until it returns true (then true) or the deadline passes (then false).
template <typename Poll>
bool poll_until(const Deadline& deadline, Poll&& done) {
  while (!done()) {
    if (deadline.expired()) {
      return false;
    }
    deadline.pause();
  }
  return true;
}

}  // namespace longseq
