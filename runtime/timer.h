// Wall-clock timing and the median / spread of repeated measurements.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace longseq {

class WallTimer {
 public:
  WallTimer() : start_(std::chrono::steady_clock::now()) {}
  void restart() { start_ = std::chrono::steady_clock::now(); }
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

struct TimingSummary {
  double median_s = 0;
  // (max - min) / median over the repetitions.
  double spread = 0;
};

inline TimingSummary summarize_timings(std::vector<double> seconds) {
  TimingSummary summary;
  if (seconds.empty()) {
    return summary;
  }
  std::sort(seconds.begin(), seconds.end());
  const std::size_t n = seconds.size();
  summary.median_s = n % 2 == 1 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  summary.spread = summary.median_s > 0 ? (seconds.back() - seconds.front()) / summary.median_s : 0;
  return summary;
}

}  // namespace longseq
