// Causality (MECHANISMS.md test 11) for every mixer that accepts causal = true: changing every
// input at positions after t leaves the outputs at positions up to t unchanged; dually, changing
// the output gradients at positions up to t leaves the input gradients after t unchanged (input s
// reaches only outputs at s and later). Checked on one rank and distributed (zigzag, where a rank
// holds positions on both sides of t and the exchange must respect global positions).
#include <gtest/gtest.h>

#include "models/mixer_registry.h"
#include "tests/conformance/conformance.h"

namespace longseq::conformance {
namespace {

// Masked terms contribute exact zeros, so the kept outputs are expected to be bit-identical; the
// tolerance only admits a mixer whose stabilisers (e.g. a running maximum) reassociate its sums.
constexpr double kTolerance = 1e-6;

// A cut at the start, one inside a zigzag chunk, one near the end.
std::vector<std::int64_t> cut_positions(std::int64_t length) {
  return {0, length / 2 - 3, length - 2};
}

// Runs the causality checks for `layout` over `communicator`.
void check_causality(Mixer& mixer, const MixerOptions& options, ComputeContext& compute,
                     Communicator& communicator, const SequenceLayout& layout) {
  const int rank = communicator.rank();
  const std::int64_t length = layout.global_length();
  ShardContext context{compute, communicator, layout};
  const Problem base = random_problem(mixer, options, layout, rank, kSeed);
  const Problem other = random_problem(mixer, options, layout, rank, kOtherSeed);
  const PassResult reference = run_forward_backward(mixer, context, base, options);
  const std::vector<TensorSpec> input_specs = mixer.input_specs(length);
  const std::vector<TensorSpec> output_specs = mixer.output_specs(length);

  for (const std::int64_t t : cut_positions(length)) {
    SCOPED_TRACE(testing::Message() << layout_name(layout.kind()) << " over " << layout.ranks()
                                    << " ranks, cut after position " << t << ", rank " << rank);
    Problem future_changed;
    for (std::size_t i = 0; i < input_specs.size(); ++i) {
      future_changed.inputs.push_back(splice_after(base.inputs[i], other.inputs[i], t,
                                                   input_specs[i].sequence_dim, layout, rank));
    }
    const std::vector<Tensor> outputs = run_forward(mixer, context, future_changed.inputs, options);
    for (std::size_t i = 0; i < output_specs.size(); ++i) {
      EXPECT_LE(shard_relative_error(outputs[i], reference.outputs[i], output_specs[i].sequence_dim,
                                     layout, rank, {0, t + 1}),
                kTolerance)
          << "output " << output_specs[i].name << " up to the cut";
    }

    Problem past_weights_changed;
    past_weights_changed.inputs = base.inputs;
    for (std::size_t i = 0; i < output_specs.size(); ++i) {
      // Up to t from `other`, after t from `base`.
      past_weights_changed.grad_outputs.push_back(
          splice_after(other.grad_outputs[i], base.grad_outputs[i], t, output_specs[i].sequence_dim,
                       layout, rank));
    }
    const PassResult result = run_forward_backward(mixer, context, past_weights_changed, options);
    for (std::size_t i = 0; i < input_specs.size(); ++i) {
      EXPECT_LE(shard_relative_error(result.grad_inputs[i], reference.grad_inputs[i],
                                     input_specs[i].sequence_dim, layout, rank, {t + 1, length}),
                kTolerance)
          << "gradient of " << input_specs[i].name << " after the cut";
    }
  }
}

class CausalityTest : public MixerTest {};

TEST_P(CausalityTest, PastIgnoresFuture) {
  const MixerCase& c = GetParam();
  const MixerOptions options = mixer_options(c);
  std::unique_ptr<Mixer> mixer;
  if (const auto why = rejection([&] { mixer = make_mixer(c.mixer, options); })) {
    GTEST_SKIP() << *why;
  }
  const SequenceLayout whole(LayoutKind::contiguous, c.size.length, 1);
  if (const auto why =
          rejection([&] { check_causality(*mixer, options, compute_, *self_, whole); })) {
    GTEST_SKIP() << *why;
  }
  const SequenceLayout layout(c.layout, c.size.length, world_.size());
  if (const auto why =
          rejection([&] { check_causality(*mixer, options, compute_, world_, layout); })) {
    GTEST_SKIP() << *why;
  }
}

INSTANTIATE_TEST_SUITE_P(Mixers, CausalityTest,
                         testing::ValuesIn(mixer_cases({.causal_only = true,
                                                        .layouts = {LayoutKind::zigzag},
                                                        .sizes = {kUnevenSize}})),
                         case_name);

}  // namespace
}  // namespace longseq::conformance
