// Gradients against finite differences, on one rank: with loss = sum(out * W) for random W, the
// analytic gradients of backward (given W as the output gradients) w.r.t. every input and every
// learned parameter match central differences of the loss at randomly chosen elements.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <string>

#include "models/mixer_registry.h"
#include "runtime/philox.h"
#include "tests/conformance/conformance.h"

namespace longseq::conformance {
namespace {

constexpr int kSamplesPerInput = 12;
constexpr std::array<float, 3> kSteps{1e-2f, 1e-3f, 1e-4f};
// Central differences (at the first step) err by step^2 / 6 times the third derivative, about 1e-4
// of the gradient's scale for inputs in [-1, 1) (scores tau q.k stay O(1)); fp32 rounding of the
// perturbed outputs adds about sqrt(N D) * 6e-8 / (2 step) ~ 1e-4 (outputs the perturbation does
// not reach are bit-identical and cancel exactly). 2e-2 of the gradient scale leaves a wide margin,
// while a wrong gradient (a sign, a transpose, a missing 1/sqrt(D) scale, a missed mask) is off by
// O(1) of it.
constexpr double kTolerance = 2e-2;

double weighted_sum(const std::vector<Tensor>& outputs, const std::vector<Tensor>& weights) {
  double sum = 0.0;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::vector<double> out = to_double_vector(outputs[i]);
    const std::vector<double> w = to_double_vector(weights[i]);
    for (std::size_t e = 0; e < out.size(); ++e) {
      sum += out[e] * w[e];
    }
  }
  return sum;
}

// Compares `analytic` (the gradient of one tensor) with central differences of the loss at
// kSamplesPerInput random elements; `evaluate(element, value)` runs the forward pass with that
// element set to `value` (and everything else as in the analytic run) and returns the loss.
// A sample passes when the difference at one of kSteps agrees: the first step suits inputs in
// [-1, 1); parameters the output oscillates in (an SSM's log step size turns phases of hundreds of
// radians over a sequence) need smaller ones, where fp32 rounding of the loss grows instead. A
// wrong gradient disagrees with every step.
void expect_matches_finite_differences(
    const std::string& name, const Tensor& analytic, const Tensor& values, std::uint64_t stream,
    const std::function<double(std::int64_t element, float value)>& evaluate) {
  const float* analytic_values = analytic.data<float>();
  double scale = 0.0;
  for (std::int64_t e = 0; e < analytic.numel(); ++e) {
    scale = std::max(scale, std::abs(static_cast<double>(analytic_values[e])));
  }
  const auto difference_quotient = [&](std::int64_t element, float step) {
    const float x = values.data<float>()[element];
    const float x_plus = x + step;
    const float x_minus = x - step;
    // The step actually taken after rounding x +- step to fp32.
    return (evaluate(element, x_plus) - evaluate(element, x_minus)) /
           (static_cast<double>(x_plus) - static_cast<double>(x_minus));
  };
  std::vector<std::int64_t> samples;
  std::vector<std::vector<double>> numeric;  // per sample, per step tried
  for (int s = 0; s < kSamplesPerInput; ++s) {
    // random_uniform is in (0, 1]: its top value would index one past the end.
    const std::int64_t element = std::min(
        analytic.numel() - 1, static_cast<std::int64_t>(random_uniform(kSeed, stream, s) *
                                                        static_cast<float>(analytic.numel())));
    samples.push_back(element);
    numeric.push_back({difference_quotient(element, kSteps[0])});
    scale = std::max(scale, std::abs(numeric.back()[0]));
  }
  ASSERT_GT(scale, 0.0) << "the gradient of " << name << " is zero everywhere";
  for (std::size_t s = 0; s < samples.size(); ++s) {
    const double expected = analytic_values[samples[s]];
    for (std::size_t k = 1;
         k < kSteps.size() && std::abs(expected - numeric[s].back()) > kTolerance * scale; ++k) {
      numeric[s].push_back(difference_quotient(samples[s], kSteps[k]));
    }
    EXPECT_LE(std::abs(expected - numeric[s].back()), kTolerance * scale)
        << "d loss / d " << name << "[" << samples[s] << "]: analytic " << expected
        << ", finite differences " << testing::PrintToString(numeric[s]) << " at steps "
        << testing::PrintToString(kSteps) << " (gradient scale " << scale << ")";
  }
}

class GradientTest : public MixerTest {};

TEST_P(GradientTest, MatchesFiniteDifferences) {
  if (world_.size() > 1) {
    // Finite differences are a single-rank property; every rank would repeat the same work.
    GTEST_SKIP() << "finite differences run on one rank (conformance.np1)";
  }
  const MixerCase& c = GetParam();
  const MixerOptions options = mixer_options(c);
  const SequenceLayout whole(LayoutKind::contiguous, c.size.length, 1);
  ShardContext context{compute_, *self_, whole};
  std::unique_ptr<Mixer> mixer;
  Problem problem;
  PassResult analytic;
  if (const auto why = rejection([&] {
        mixer = make_mixer(c.mixer, options);
        problem = random_problem(*mixer, options, whole, 0, kSeed);
        analytic = run_forward_backward(*mixer, context, problem, options);
      })) {
    GTEST_SKIP() << *why;
  }
  const auto loss = [&](const std::vector<Tensor>& inputs) {
    return weighted_sum(run_forward(*mixer, context, inputs, options), problem.grad_outputs);
  };

  const std::vector<TensorSpec> input_specs = mixer->input_specs(c.size.length);
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    expect_matches_finite_differences(input_specs[i].name, analytic.grad_inputs[i],
                                      problem.inputs[i], 900 + i,
                                      [&](std::int64_t element, float value) {
                                        std::vector<Tensor> inputs = problem.inputs;
                                        inputs[i] = problem.inputs[i].clone();
                                        inputs[i].data<float>()[element] = value;
                                        return loss(inputs);
                                      });
  }
  // Learned parameters: perturbed in place in the mixer (CPU fp32 here), then restored.
  const std::vector<TensorSpec> parameter_specs = mixer->parameter_specs(c.size.length);
  const std::vector<Tensor> parameters = mixer->parameters();
  ASSERT_EQ(parameters.size(), parameter_specs.size());
  for (std::size_t p = 0; p < parameters.size(); ++p) {
    const Tensor saved = parameters[p].clone();
    expect_matches_finite_differences(parameter_specs[p].name, analytic.grad_parameters[p], saved,
                                      950 + p, [&](std::int64_t element, float value) {
                                        parameters[p].copy_from(saved);
                                        parameters[p].data<float>()[element] = value;
                                        return loss(problem.inputs);
                                      });
    parameters[p].copy_from(saved);
  }
}

INSTANTIATE_TEST_SUITE_P(Mixers, GradientTest,
                         testing::ValuesIn(mixer_cases({.every_strategy = false,
                                                        .sizes = {kEvenSize, kUnevenSize,
                                                                  kGroupedSize}})),
                         case_name);

}  // namespace
}  // namespace longseq::conformance
