// `longseq bench`: one measurement of a registered mixer, single- or multi-rank. Under
// `mpirun -np P` every rank holds only its shard; times are the slowest rank's, memory and bytes
// are per rank (the maximum over ranks), and throughput is a ratio to the yardstick measured in the
// same run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/mixer.h"
#include "parallel/communicator.h"
#include "runtime/context.h"
#include "suites/yardstick.h"

namespace longseq {

struct BenchConfig {
  std::string mixer = "flash";
  std::int64_t seq = 4096;
  std::string layout = "contiguous";
  std::string pass = "both";  // fwd | bwd | both (both reports fwd and bwd separately)
  int reps = 5;
  int warmup = 1;
  bool check = false;
  std::uint64_t seed = 1;
  MixerOptions mixer_options;
};

struct BenchResult {
  BenchConfig config;
  std::string pass;  // fwd | bwd
  int ranks = 1;
  std::string flop_convention;
  double median_s = 0;  // median over repetitions of the slowest rank's time
  double spread = 0;    // (max - min) / median over repetitions
  double gflops = 0;
  Yardstick yardstick;
  // Tracked allocations per rank (maximum over ranks): the peak during the measured pass, and how
  // far it rose above what the rank held before (inputs, outputs, saved state).
  std::int64_t peak_mem_bytes = 0;
  std::int64_t extra_mem_bytes = 0;
  // The operating system's view: growth of the resident set during the pass (CPU, max over ranks).
  std::int64_t resident_extra_bytes = 0;
  std::int64_t bytes_sent = 0;        // per rank per pass, maximum over ranks
  double overlap = 1.0;               // fraction of communication time hidden behind computation
  double compute_max_s = 0;           // the slowest rank's compute time in one pass (median rep)
  double compute_min_s = 0;           // the fastest rank's
  std::optional<double> max_rel_err;  // against a single-rank run of the same inputs
};

// `self` is a communicator of this rank alone: --check runs the single-rank reference with it.
std::vector<BenchResult> run_bench(ComputeContext& context, Communicator& world, Communicator& self,
                                   const BenchConfig& config, const Yardstick& yardstick);

}  // namespace longseq
