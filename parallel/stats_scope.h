// Records the communication volume of one distributed call into the caller's stats (or into a
// local copy when the caller passed none), whatever way the call leaves.
#pragma once

#include <cstdint>

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"

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

}  // namespace longseq
