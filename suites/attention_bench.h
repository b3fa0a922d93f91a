// `longseq bench` for the exact-attention mixers (softmax = materialised, flash = tiled): one
// measurement per (mixer, sequence length, pass), as a ratio to the yardstick of the same run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/context.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "suites/yardstick.h"

namespace longseq {

struct AttentionBenchConfig {
  std::string mixer = "flash";  // softmax | flash
  std::int64_t seq = 4096;
  std::int64_t batch = 1;
  std::int64_t heads = 8;
  std::int64_t kv_heads = 0;  // 0: equal to heads
  std::int64_t head_dim = 64;
  bool causal = false;
  std::string layout = "contiguous";
  std::string strategy = "ring";
  DType dtype = DType::f32;
  Device device = Device::cpu;
  std::string pass = "both";  // fwd | bwd | both (both reports fwd and bwd separately)
  int reps = 5;
  int warmup = 1;
  bool check = false;
  std::uint64_t seed = 1;
};

struct BenchResult {
  AttentionBenchConfig config;
  std::string pass;  // fwd | bwd
  int ranks = 1;
  double median_s = 0;
  double spread = 0;
  double gflops = 0;
  Yardstick yardstick;
  // Tracked allocations of the benchmark's device: peak during the measured pass, and how far
  // that peak rose above the inputs and outputs already allocated.
  std::int64_t peak_mem_bytes = 0;
  std::int64_t extra_mem_bytes = 0;
  // The operating system's view (CPU runs): resident-set growth during the measured pass.
  std::int64_t resident_extra_bytes = 0;
  std::int64_t bytes_sent = 0;
  double overlap = 1.0;  // fraction of communication hidden: 1 when nothing is communicated
  std::optional<double> max_rel_err;
};

// The mixers `longseq bench` knows.
const std::vector<std::string>& attention_bench_mixers();

// Validates the configuration (UserError naming the flag on bad values), runs it, and returns one
// result per measured pass.
std::vector<BenchResult> run_attention_bench(ComputeContext& context,
                                             const AttentionBenchConfig& config,
                                             const Yardstick& yardstick);

// "attention forward 4*N^2*D FLOPs per (batch, head), halved when causal; backward 2.5x forward"
const char* attention_flop_convention();

}  // namespace longseq
