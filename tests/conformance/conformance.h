// What the conformance tests share: the cases (every registered mixer x causal x strategy x
// problem size), running a mixer's forward and backward on this rank's shard, and comparing shards.
//
// How to extend: nothing to do for a new mixer. Registering it in models/mixer_registry.cpp adds
// it to every case list here; a configuration it rejects with a UserError (at construction or at
// its first forward) is skipped with the mixer's message.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "models/mixer.h"
#include "parallel/mpi_communicator.h"
#include "parallel/sequence_layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq::conformance {

// Small problems: attention-like inputs are (B, H, N, D). N = 64 divides among 1..4 ranks, 61
// leaves padding for every rank count above one; grouped key/value heads where a mixer has them.
struct ProblemSize {
  std::int64_t length;
  std::int64_t batch;
  std::int64_t heads;
  std::int64_t head_dim;
  std::int64_t kv_heads = 0;  // 0: as many as heads
};
inline constexpr ProblemSize kEvenSize{64, 1, 2, 16};
inline constexpr ProblemSize kUnevenSize{61, 2, 4, 32};
inline constexpr ProblemSize kGroupedSize{61, 1, 4, 16, 2};

// Seeds of the random problems (models/mixer_inputs.h); kOtherSeed draws different values.
inline constexpr std::uint64_t kSeed = 2024;
inline constexpr std::uint64_t kOtherSeed = 4202;

// A hung exchange becomes an error naming the operation instead of a stalled CTest run.
inline constexpr std::chrono::milliseconds kCommunicationTimeout{60'000};

struct MixerCase {
  std::string mixer;
  bool causal = false;
  std::string strategy;  // empty: the mixer has no strategies and runs with its default options
  LayoutKind layout = LayoutKind::contiguous;  // of the distributed run
  ProblemSize size{};
};

struct CaseSelection {
  bool every_strategy = true;  // false: only the mixer's first strategy (or its default)
  bool causal_only = false;    // the causality test needs causal mixers only
  std::vector<LayoutKind> layouts{LayoutKind::contiguous};
  std::vector<ProblemSize> sizes{kEvenSize, kUnevenSize};
};

// Every registered mixer x {non-causal, causal} x its strategies x layouts x sizes.
std::vector<MixerCase> mixer_cases(const CaseSelection& selection);
std::string case_name(const testing::TestParamInfo<MixerCase>& info);
void PrintTo(const MixerCase& c, std::ostream* os);

MixerOptions mixer_options(const MixerCase& c, Device device = Device::cpu);

// A test over the cases: this rank's compute context, the world and a communicator of this rank
// alone (for single-rank references). Every rank runs every case, so collectives line up.
class MixerTest : public testing::TestWithParam<MixerCase> {
 protected:
  ComputeContext compute_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", kCommunicationTimeout};
  std::unique_ptr<MpiCommunicator> self_ = world_.split(world_.rank(), 0, "self");
};

// Runs `action`; returns the message of a UserError it throws (the mixer rejecting the
// configuration), nothing when it completes. Other exceptions propagate and fail the test.
std::optional<std::string> rejection(const std::function<void()>& action);

// One problem on this rank: inputs and output gradients (the weights W of loss = sum(out * W)),
// this rank's shards on the mixer's device and dtype.
struct Problem {
  std::vector<Tensor> inputs;
  std::vector<Tensor> grad_outputs;
};
// The suite's random problem for `layout`; `seed` selects the draw.
Problem random_problem(const Mixer& mixer, const MixerOptions& options,
                       const SequenceLayout& layout, int rank, std::uint64_t seed);

// What one forward and backward produced, as contiguous fp32 CPU tensors in spec order: outputs,
// input gradients, and the gradients of the mixer's learned parameters (none for most mixers).
struct PassResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grad_inputs;
  std::vector<Tensor> grad_parameters;
};

// Outputs and input gradients start as NaN, so that any element the mixer should write and does
// not shows up (input gradients are overwritten by contract).
std::vector<Tensor> run_forward(Mixer& mixer, ShardContext& context,
                                const std::vector<Tensor>& inputs, const MixerOptions& options);
PassResult run_forward_backward(Mixer& mixer, ShardContext& context, const Problem& problem,
                                const MixerOptions& options);
// The case's problem (seed kSeed) over the whole sequence on one rank.
PassResult single_rank_result(Mixer& mixer, ComputeContext& compute, Communicator& self,
                              const MixerOptions& options, std::int64_t length);

// Calls visit(global_position, index) for every element of a contiguous shard whose dimension
// `sequence_dim` holds the layout's local positions of `rank`.
void for_each_element(const Shape& shape, int sequence_dim, const SequenceLayout& layout, int rank,
                      const std::function<void(std::int64_t, std::int64_t)>& visit);

// Global positions [begin, end), clipped to the non-padding ones.
struct PositionRange {
  std::int64_t begin = 0;
  std::int64_t end = std::numeric_limits<std::int64_t>::max();
};

// max |actual - expected| / max |expected| over the elements of `rank`'s shards (contiguous fp32
// CPU) at global positions in `range`; a NaN in `actual` counts as an infinite error.
double shard_relative_error(const Tensor& actual, const Tensor& expected, int sequence_dim,
                            const SequenceLayout& layout, int rank, PositionRange range = {});
// `base` where the global position is <= last, `replacement` after it (shards of `rank`).
Tensor splice_after(const Tensor& base, const Tensor& replacement, std::int64_t last,
                    int sequence_dim, const SequenceLayout& layout, int rank);
// Padding elements of the shard that are not exactly zero.
std::int64_t nonzero_padding(const Tensor& shard, int sequence_dim, const SequenceLayout& layout,
                             int rank);
// max |actual - expected| / max |expected| over whole tensors (parameters and their gradients);
// a NaN in `actual` counts as an infinite error.
double relative_error(const Tensor& actual, const Tensor& expected);
// Whether two tensors hold the same bytes.
bool same_bits(const Tensor& a, const Tensor& b);

}  // namespace longseq::conformance
