// Softmax cross-entropy against the reference, forward (losses and LSE) and backward, with
// ignored rows; the reference against finite differences.
#include "kernels/cross_entropy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "runtime/philox.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct CrossEntropyParameters {
  std::int64_t rows = 37;
  std::int64_t vocabulary = 1000;
  float ignored_fraction = 0.2f;  // rows with target -1
  double logit_scale = 3.0;
  // Added to every logit: exp() of raw logits near 100 overflows fp32. (Much larger shifts make
  // the fp32 LSE handed from forward to backward lose digits: ulp(1000) = 6e-5.)
  double logit_shift = 0.0;
  std::uint64_t seed = 1;
};

class CrossEntropyCase final : public KernelCase {
 public:
  explicit CrossEntropyCase(CrossEntropyParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("cross_entropy_r{}_v{}_ignored{}{}", p_.rows, p_.vocabulary,
                       static_cast<int>(p_.ignored_fraction * 100.0f),
                       p_.logit_shift != 0.0 ? "_shifted" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device) const override { return {DType::f32}; }

  [[nodiscard]] double flops() const override {
    return 10.0 * static_cast<double>(p_.rows * p_.vocabulary);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Inputs host = inputs(dtype);
    const Tensor logits = on_device(host.logits, device);
    const Tensor targets = on_device(host.targets, device);
    const Tensor losses = Tensor::empty({p_.rows}, DType::f32, device);
    const Tensor lse = Tensor::empty({p_.rows}, DType::f32, device);
    const Tensor grad_logits = Tensor::empty(logits.shape(), dtype, device);
    cross_entropy_forward(context, logits, targets, losses, lse);
    cross_entropy_backward(context, on_device(host.grad_losses, device), logits, targets, lse,
                           grad_logits);
    context.synchronize();
    return {{"losses", to_host(losses)},
            {"lse", kept_rows(to_host(lse), host.targets)},
            {"grad_logits", to_host(grad_logits)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Inputs in = inputs(dtype);
    const Tensor losses = Tensor::empty({p_.rows}, DType::f64);
    const Tensor grad_logits = Tensor::empty(in.logits.shape(), DType::f64);
    reference::cross_entropy_forward(in.logits, in.targets, losses);
    reference::cross_entropy_backward(in.grad_losses, in.logits, in.targets, grad_logits);
    // LSE of a row = its loss + its target's logit.
    const std::vector<double> logits = to_double_vector(in.logits);
    const std::int32_t* targets = in.targets.data<std::int32_t>();
    std::vector<double> lse = to_double_vector(losses);
    for (std::int64_t r = 0; r < p_.rows; ++r) {
      lse[r] = targets[r] < 0 ? 0.0 : lse[r] + logits[r * p_.vocabulary + targets[r]];
    }
    return {{"losses", losses}, {"lse", tensor_from(lse, {p_.rows})}, {"grad_logits", grad_logits}};
  }

 private:
  struct Inputs {
    Tensor logits;       // (R, V)
    Tensor targets;      // (R) i32, -1 on ignored rows
    Tensor grad_losses;  // (R) fp32
  };

  [[nodiscard]] Inputs inputs(DType dtype) const {
    Inputs in;
    in.logits = random_normal_tensor({p_.rows, p_.vocabulary}, p_.seed, 1, dtype, p_.logit_scale,
                                     p_.logit_shift);
    in.targets = Tensor::empty({p_.rows}, DType::i32);
    for (std::int64_t r = 0; r < p_.rows; ++r) {
      const bool ignored =
          random_uniform(p_.seed, 2, static_cast<std::uint64_t>(r)) <= p_.ignored_fraction;
      const auto drawn =
          static_cast<std::int64_t>(random_uniform(p_.seed, 3, static_cast<std::uint64_t>(r)) *
                                    static_cast<float>(p_.vocabulary));
      const auto target = static_cast<std::int32_t>(std::min(drawn, p_.vocabulary - 1));
      in.targets.data<std::int32_t>()[r] = ignored ? -1 : target;
    }
    in.grad_losses = random_normal_tensor({p_.rows}, p_.seed, 4);
    return in;
  }

  // The LSE of ignored rows is unspecified: compare only the kept rows (ignored rows set to 0).
  static Tensor kept_rows(const Tensor& lse, const Tensor& targets) {
    std::vector<double> values = to_double_vector(lse);
    for (std::size_t r = 0; r < values.size(); ++r) {
      if (targets.data<std::int32_t>()[r] < 0) {
        values[r] = 0.0;
      }
    }
    return tensor_from(values, lse.shape());
  }

  CrossEntropyParameters p_;
};

std::vector<KernelCasePtr> cross_entropy_cases() {
  return {
      std::make_shared<CrossEntropyCase>(CrossEntropyParameters{.seed = 91}),
      std::make_shared<CrossEntropyCase>(CrossEntropyParameters{.rows = 16,
                                                                .vocabulary = 32003,
                                                                .ignored_fraction = 0.1f,
                                                                .logit_scale = 10.0,
                                                                .logit_shift = 100.0,
                                                                .seed = 92}),
      std::make_shared<CrossEntropyCase>(
          CrossEntropyParameters{.rows = 6, .vocabulary = 7, .ignored_fraction = 1.0f, .seed = 93}),
      std::make_shared<CrossEntropyCase>(CrossEntropyParameters{
          .rows = 128, .vocabulary = 2, .ignored_fraction = 0.0f, .seed = 94}),
  };
}

INSTANTIATE_TEST_SUITE_P(CrossEntropy, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, cross_entropy_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CrossEntropy, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, cross_entropy_cases())),
                         case_name);

TEST(ReferenceCrossEntropy, GradientMatchesFiniteDifferences) {
  const Tensor logits = random_normal_tensor({4, 6}, 95, 1, DType::f64, 2.0);
  const Tensor targets = Tensor::empty({4}, DType::i32);
  const std::int32_t target_values[4] = {2, -1, 0, 5};
  std::copy(target_values, target_values + 4, targets.data<std::int32_t>());
  const Tensor weights = random_normal_tensor({4}, 95, 2, DType::f64);
  const auto loss = [&] {
    const Tensor losses = Tensor::empty({4}, DType::f64);
    reference::cross_entropy_forward(logits, targets, losses);
    return weighted_sum(losses, weights);
  };
  const Tensor grad_logits = Tensor::empty({4, 6}, DType::f64);
  reference::cross_entropy_backward(weights, logits, targets, grad_logits);
  expect_gradient_matches("grad_logits", grad_logits, finite_difference_gradient(logits, loss),
                          1e-7);
  // The ignored row has no loss and no gradient.
  for (std::int64_t c = 0; c < 6; ++c) {
    EXPECT_EQ(grad_logits.data<double>()[6 + c], 0.0);
  }
}

}  // namespace
}  // namespace longseq::test
