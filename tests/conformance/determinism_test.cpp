// Determinism: the same inputs give the same bits, outputs and input gradients, on every rank of a
// distributed run: twice through one mixer (with another problem in between, so that state kept
// from an earlier call cannot leak into a later one) and through a second, fresh mixer.
#include <gtest/gtest.h>

#include "models/mixer_registry.h"
#include "tests/conformance/conformance.h"

namespace longseq::conformance {
namespace {

void expect_same_bits(const PassResult& actual, const PassResult& expected, const char* what) {
  for (std::size_t i = 0; i < expected.outputs.size(); ++i) {
    EXPECT_TRUE(same_bits(actual.outputs[i], expected.outputs[i])) << what << ": output " << i;
  }
  for (std::size_t i = 0; i < expected.grad_inputs.size(); ++i) {
    EXPECT_TRUE(same_bits(actual.grad_inputs[i], expected.grad_inputs[i]))
        << what << ": gradient of input " << i;
  }
  for (std::size_t i = 0; i < expected.grad_parameters.size(); ++i) {
    EXPECT_TRUE(same_bits(actual.grad_parameters[i], expected.grad_parameters[i]))
        << what << ": gradient of parameter " << i;
  }
}

class DeterminismTest : public MixerTest {};

TEST_P(DeterminismTest, SameInputsSameBits) {
  const MixerCase& c = GetParam();
  const MixerOptions options = mixer_options(c);
  const int rank = world_.rank();
  const SequenceLayout layout(c.layout, c.size.length, world_.size());
  ShardContext context{compute_, world_, layout};
  std::unique_ptr<Mixer> mixer;
  std::unique_ptr<Mixer> fresh;
  Problem problem;
  PassResult first;
  if (const auto why = rejection([&] {
        mixer = make_mixer(c.mixer, options);
        fresh = make_mixer(c.mixer, options);
        problem = random_problem(*mixer, options, layout, rank, kSeed);
        first = run_forward_backward(*mixer, context, problem, options);
      })) {
    GTEST_SKIP() << *why;
  }
  run_forward_backward(*mixer, context, random_problem(*mixer, options, layout, rank, kOtherSeed),
                       options);
  expect_same_bits(run_forward_backward(*mixer, context, problem, options), first,
                   "the same mixer again");
  expect_same_bits(run_forward_backward(*fresh, context, problem, options), first, "a fresh mixer");
}

INSTANTIATE_TEST_SUITE_P(Mixers, DeterminismTest,
                         testing::ValuesIn(mixer_cases({.layouts = {LayoutKind::zigzag},
                                                        .sizes = {kUnevenSize}})),
                         case_name);

}  // namespace
}  // namespace longseq::conformance
