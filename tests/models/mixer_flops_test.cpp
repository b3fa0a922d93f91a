// Mixer::forward_flops / backward_flops predict exactly what last_stats().flops reports: for every
// registered mixer (causal and not, where it accepts both; the hybrid GSS with and without its
// local attention), a forward then a backward pass on the world communicator, with a length that
// leaves padding on every rank count above one. The prediction does not depend on the rank count,
// so the same numbers hold under mpirun -np 1 and -np 3.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/mixer_inputs.h"
#include "models/mixer_registry.h"
#include "parallel/mpi_communicator.h"
#include "runtime/error.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeed = 31;
constexpr std::int64_t kLength = 23;
constexpr double kRelativeTolerance = 1e-12;

MixerOptions small_options(bool causal) {
  MixerOptions options;
  options.batch = 1;
  options.heads = 2;
  options.head_dim = 4;
  options.causal = causal;
  options.features = 8;
  options.state_size = 8;
  options.seed = kSeed;
  return options;
}

// The tensors of this rank's shard of every spec: random for inputs, empty for outputs.
std::vector<Tensor> shards(const std::vector<TensorSpec>& specs, const SequenceLayout& layout,
                           int rank, bool random, std::uint64_t stream) {
  std::vector<Tensor> tensors;
  for (const TensorSpec& spec : specs) {
    if (random) {
      tensors.push_back(random_shard(spec, layout, rank, kSeed, stream++));
    } else {
      Shape shape = spec.shape;
      shape[static_cast<std::size_t>(spec.sequence_dim)] = layout.shard_length();
      tensors.push_back(Tensor::empty(shape, DType::f32));
    }
  }
  return tensors;
}

void expect_relatively_equal(double actual, double expected, const char* what) {
  EXPECT_GT(expected, 0.0) << what;
  EXPECT_LE(std::abs(actual - expected), kRelativeTolerance * std::abs(expected))
      << what << ": reported " << actual << ", predicted " << expected;
}

class MixerFlopsTest : public ::testing::Test {
 protected:
  // Runs forward then backward of `mixer` with `options` over the world and compares the stats
  // with the predictions. Returns false where the mixer refuses the options (nothing to compare).
  bool check(const std::string& mixer_name, const MixerOptions& options) {
    std::unique_ptr<Mixer> mixer;
    try {
      mixer = make_mixer(mixer_name, options);
    } catch (const UserError&) {
      return false;
    }
    const int rank = world_.rank();
    const SequenceLayout layout(LayoutKind::contiguous, kLength, world_.size());
    const std::vector<Tensor> inputs = shards(mixer->input_specs(kLength), layout, rank, true, 1);
    const std::vector<Tensor> outputs =
        shards(mixer->output_specs(kLength), layout, rank, false, 0);
    const std::vector<Tensor> grad_outputs =
        shards(mixer->output_specs(kLength), layout, rank, true, 100);
    const std::vector<Tensor> grad_inputs =
        shards(mixer->input_specs(kLength), layout, rank, false, 0);
    ShardContext context{compute_, world_, layout};

    mixer->forward(context, inputs, outputs);
    expect_relatively_equal(mixer->last_stats().flops, mixer->forward_flops(kLength), "forward");
    mixer->backward(context, grad_outputs, grad_inputs);
    expect_relatively_equal(mixer->last_stats().flops, mixer->backward_flops(kLength), "backward");
    return true;
  }

  ComputeContext compute_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", 60s};
};

TEST_F(MixerFlopsTest, StatsEqualPredictionForEveryMixer) {
  for (const std::string& name : registered_mixers()) {
    int checked = 0;
    for (const bool causal : {true, false}) {
      SCOPED_TRACE(name + (causal ? " causal" : " non-causal"));
      checked += check(name, small_options(causal)) ? 1 : 0;
    }
    EXPECT_GT(checked, 0) << name << " refused every configuration";
  }
}

TEST_F(MixerFlopsTest, GssHybridWithLocalAttention) {
  MixerOptions options = small_options(true);
  options.local_chunk = 5;
  EXPECT_TRUE(check("gss", options));
}

TEST_F(MixerFlopsTest, PredictionScalesWithLength) {
  for (const std::string& name : registered_mixers()) {
    SCOPED_TRACE(name);
    const std::unique_ptr<Mixer> mixer = make_mixer(name, small_options(true));
    EXPECT_LT(mixer->forward_flops(64), mixer->forward_flops(128));
    EXPECT_LT(mixer->backward_flops(64), mixer->backward_flops(128));
  }
}

}  // namespace
}  // namespace longseq
