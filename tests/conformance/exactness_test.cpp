// Exactness (DESIGN.md, "A mixer"): for every rank count, layout and strategy, each rank's shards
// of the outputs and input gradients equal those of the same mixer run on one rank over the whole
// sequence, up to floating-point reassociation. Every rank draws the same global problem and
// computes the single-rank result itself, then compares its own shard; nothing is gathered.
#include <gtest/gtest.h>

#include "models/mixer_registry.h"
#include "tests/conformance/conformance.h"

namespace longseq::conformance {
namespace {

// fp32 results differ only in the order of their sums (ring steps merge partial results in
// another order than one pass does): a few ulps of the largest value, far below 1e-5.
constexpr double kTolerance = 1e-5;
// A parameter's gradient sums over every position of the sequence, in chunks and then across ranks
// (an all-reduce), instead of in one pass: more terms reassociate than for any one output element.
constexpr double kParameterTolerance = 1e-4;

class ExactnessTest : public MixerTest {};

TEST_P(ExactnessTest, ShardsEqualSingleRankResult) {
  const MixerCase& c = GetParam();
  const MixerOptions options = mixer_options(c);
  const int rank = world_.rank();
  std::unique_ptr<Mixer> reference_mixer;
  std::unique_ptr<Mixer> mixer;
  PassResult reference;
  if (const auto why = rejection([&] {
        reference_mixer = make_mixer(c.mixer, options);
        mixer = make_mixer(c.mixer, options);
        reference = single_rank_result(*reference_mixer, compute_, *self_, options, c.size.length);
      })) {
    GTEST_SKIP() << *why;
  }

  const SequenceLayout layout(c.layout, c.size.length, world_.size());
  ShardContext context{compute_, world_, layout};
  PassResult result;
  if (const auto why = rejection([&] {
        result = run_forward_backward(
            *mixer, context, random_problem(*mixer, options, layout, rank, kSeed), options);
      })) {
    GTEST_SKIP() << *why;
  }

  const std::vector<TensorSpec> output_specs = mixer->output_specs(c.size.length);
  for (std::size_t i = 0; i < output_specs.size(); ++i) {
    const int dim = output_specs[i].sequence_dim;
    const Tensor expected = scatter_shard(reference.outputs[i], layout, rank, dim);
    EXPECT_LE(shard_relative_error(result.outputs[i], expected, dim, layout, rank), kTolerance)
        << "output " << output_specs[i].name << ", rank " << rank;
  }
  const std::vector<TensorSpec> input_specs = mixer->input_specs(c.size.length);
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    const int dim = input_specs[i].sequence_dim;
    const Tensor expected = scatter_shard(reference.grad_inputs[i], layout, rank, dim);
    EXPECT_LE(shard_relative_error(result.grad_inputs[i], expected, dim, layout, rank), kTolerance)
        << "gradient of " << input_specs[i].name << ", rank " << rank;
    // Padding is no token: a gradient there would leak into whatever consumes the shard.
    EXPECT_EQ(nonzero_padding(result.grad_inputs[i], dim, layout, rank), 0)
        << "padding of the gradient of " << input_specs[i].name << ", rank " << rank;
  }
  // Parameters are replicated: every rank holds the single-rank values and, after backward, the
  // gradient over the whole sequence.
  const std::vector<TensorSpec> parameter_specs = mixer->parameter_specs(c.size.length);
  const std::vector<Tensor> parameters = mixer->parameters();
  const std::vector<Tensor> reference_parameters = reference_mixer->parameters();
  ASSERT_EQ(parameters.size(), parameter_specs.size());
  ASSERT_EQ(result.grad_parameters.size(), parameter_specs.size());
  for (std::size_t i = 0; i < parameter_specs.size(); ++i) {
    EXPECT_TRUE(same_bits(parameters[i].to(Device::cpu).contiguous(),
                          reference_parameters[i].to(Device::cpu).contiguous()))
        << "parameter " << parameter_specs[i].name << " differs from one rank's, rank " << rank;
    EXPECT_LE(relative_error(result.grad_parameters[i], reference.grad_parameters[i]),
              kParameterTolerance)
        << "gradient of parameter " << parameter_specs[i].name << ", rank " << rank;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mixers, ExactnessTest,
    testing::ValuesIn(mixer_cases({.layouts = {LayoutKind::contiguous, LayoutKind::zigzag,
                                               LayoutKind::striped},
                                   .sizes = {kEvenSize, kUnevenSize, kGroupedSize}})),
    case_name);

}  // namespace
}  // namespace longseq::conformance
