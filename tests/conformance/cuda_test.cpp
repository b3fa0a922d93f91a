// CPU against CUDA: on one rank, the mixer on a GPU (fp32) gives the outputs and input gradients of
// the mixer on the CPU. Skipped, with the reason, where no GPU is usable; a mixer without a CUDA
// path rejects the device with a UserError and is skipped with its message.
#include <gtest/gtest.h>

#include "models/mixer_registry.h"
#include "runtime/device.h"
#include "tests/conformance/conformance.h"

namespace longseq::conformance {
namespace {

// Both sides are fp32, but GPU kernels sum in other orders and tile sizes (and may use fused
// multiply-adds and fast exponentials): 1e-4 of the largest value.
constexpr double kTolerance = 1e-4;

class CudaTest : public MixerTest {};

TEST_P(CudaTest, CudaMatchesCpu) {
  if (cuda_device_count() == 0) {
    GTEST_SKIP() << "no usable GPU: " << cuda_unavailable_reason();
  }
  const MixerCase& c = GetParam();
  const MixerOptions cpu_options = mixer_options(c, Device::cpu);
  const MixerOptions cuda_options = mixer_options(c, Device::cuda);
  const SequenceLayout whole(LayoutKind::contiguous, c.size.length, 1);
  ShardContext context{compute_, *self_, whole};
  std::unique_ptr<Mixer> cpu_mixer;
  std::unique_ptr<Mixer> cuda_mixer;
  PassResult expected;
  PassResult actual;
  if (const auto why = rejection([&] {
        cpu_mixer = make_mixer(c.mixer, cpu_options);
        cuda_mixer = make_mixer(c.mixer, cuda_options);
        expected = run_forward_backward(*cpu_mixer, context,
                                        random_problem(*cpu_mixer, cpu_options, whole, 0, kSeed),
                                        cpu_options);
        actual = run_forward_backward(*cuda_mixer, context,
                                      random_problem(*cuda_mixer, cuda_options, whole, 0, kSeed),
                                      cuda_options);
      })) {
    GTEST_SKIP() << *why;
  }
  const std::vector<TensorSpec> output_specs = cpu_mixer->output_specs(c.size.length);
  for (std::size_t i = 0; i < output_specs.size(); ++i) {
    EXPECT_LE(shard_relative_error(actual.outputs[i], expected.outputs[i],
                                   output_specs[i].sequence_dim, whole, 0),
              kTolerance)
        << "output " << output_specs[i].name;
  }
  const std::vector<TensorSpec> input_specs = cpu_mixer->input_specs(c.size.length);
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    EXPECT_LE(shard_relative_error(actual.grad_inputs[i], expected.grad_inputs[i],
                                   input_specs[i].sequence_dim, whole, 0),
              kTolerance)
        << "gradient of " << input_specs[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mixers, CudaTest,
    testing::ValuesIn(mixer_cases({.every_strategy = false, .sizes = {kUnevenSize}})), case_name);

}  // namespace
}  // namespace longseq::conformance
