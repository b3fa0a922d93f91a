// How a distributed call fills its DistributedAttentionStats: StatsScope records the
// communication volume into the caller's stats (or into a local copy when the caller passed none),
// whatever way the call leaves; timed_compute and timed_exposed_communication add the wall time
// of one section.
#pragma once

#include <cstdint>
#include <utility>

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "runtime/timer.h"

namespace longseq {

class StatsScope {
 public:
  StatsScope(const Communicator& communicator, DistributedAttentionStats* stats)
      : communicator_(communicator),
        stats_(stats != nullptr ? stats : &local_),
        bytes_before_(communicator.bytes_sent()) {
    *stats_ = {};
  }
  ~StatsScope() { stats_->bytes_sent = communicator_.bytes_sent() - bytes_before_; }
  StatsScope(const StatsScope&) = delete;
  StatsScope& operator=(const StatsScope&) = delete;

  [[nodiscard]] DistributedAttentionStats& stats() { return *stats_; }

 private:
  const Communicator& communicator_;
  DistributedAttentionStats local_;
  DistributedAttentionStats* stats_;
  std::int64_t bytes_before_;
};

// Runs `compute` as one computed block: its time counts as compute.
template <typename Compute>
void timed_compute(DistributedAttentionStats& stats, Compute&& compute) {
  const WallTimer timer;
  std::forward<Compute>(compute)();
  stats.compute_seconds += timer.seconds();
  ++stats.blocks_computed;
}

// Runs `communicate`, which nothing overlaps (a scan, an all-reduce, a redistribution): its time
// counts as communication, all of it exposed.
template <typename Communicate>
void timed_exposed_communication(DistributedAttentionStats& stats, Communicate&& communicate) {
  const WallTimer timer;
  std::forward<Communicate>(communicate)();
  stats.communication_seconds += timer.seconds();
  stats.exposed_communication_seconds += timer.seconds();
}

}  // namespace longseq
