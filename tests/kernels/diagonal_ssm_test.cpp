// Diagonal state-space layers (kernels/diagonal_ssm.h): the FFT convolution with state handoff
// against the unrolled recurrence (the reference), forward and backward with every parameter
// gradient (finite differences of the fp64 reference) on every backend; the kernel K over many
// blocks against direct powers; any split of the sequence with state handoff against one pass,
// parameters too; causality with the padded FFT; DSS-exp = S4D-ZOH with a shared Lambda and
// scale 1; the recurrent step against the layer.
#include "kernels/diagonal_ssm.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference/diagonal_ssm.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct SsmProblem {
  DiagonalSsmKind kind = DiagonalSsmKind::s4d;
  std::int64_t batch = 2;
  std::int64_t channels = 3;
  std::int64_t length = 40;
  std::int64_t modes = 4;
  bool with_states = true;  // an incoming state and a gradient of the final state
  std::uint64_t seed = 11;
  double max_dt = 0.5;                     // dt log-uniform in [0.01 max_dt, max_dt]
  std::int64_t piece = kDiagonalSsmPiece;  // positions per FFT piece
};

const char* kind_name(DiagonalSsmKind kind) { return kind == DiagonalSsmKind::s4d ? "s4d" : "dss"; }

// The paper initialisation with B, C, log dt redrawn so that every parameter matters and the
// modes decay visibly within a short sequence: dt log-uniform in [0.01, 1] times max_dt.
DiagonalSsmParameters test_parameters(const SsmProblem& p) {
  DiagonalSsmParameters params = p.kind == DiagonalSsmKind::s4d
                                     ? make_s4d_parameters(p.channels, 2 * p.modes, p.seed)
                                     : make_dss_parameters(p.channels, p.modes, p.seed);
  const Shape complex_shape{p.channels, p.modes, 2};
  params.b = random_normal_tensor(complex_shape, p.seed, 21);
  params.c = random_normal_tensor(complex_shape, p.seed, 22, DType::f32, 0.5);
  params.log_dt = random_uniform_tensor({p.channels}, p.seed, 23, std::log(0.01 * p.max_dt),
                                        std::log(p.max_dt));
  return params;
}

struct SsmInputs {
  DiagonalSsmParameters parameters;
  Tensor u, grad_y, initial, grad_final;  // fp32 CPU; states undefined without states
};

Shape state_shape(const SsmProblem& p) { return {p.batch, p.channels, p.modes, 2}; }

SsmInputs ssm_inputs(const SsmProblem& p) {
  SsmInputs in;
  in.parameters = test_parameters(p);
  in.u = random_normal_tensor({p.batch, p.channels, p.length}, p.seed, 1);
  in.grad_y = random_normal_tensor({p.batch, p.channels, p.length}, p.seed, 2);
  if (p.with_states) {
    in.initial = random_normal_tensor(state_shape(p), p.seed, 3);
    in.grad_final = random_normal_tensor(state_shape(p), p.seed, 4);
  }
  return in;
}

DiagonalSsmParameters parameters_on(const DiagonalSsmParameters& p, Device device) {
  return {on_device(p.log_dt, device), on_device(p.lambda, device), on_device(p.b, device),
          on_device(p.c, device), on_device(p.d, device)};
}

DiagonalSsmParameters parameters_f64(const DiagonalSsmParameters& p) {
  return {as_f64(p.log_dt), as_f64(p.lambda), as_f64(p.b), as_f64(p.c), as_f64(p.d)};
}

Tensor optional_on(const Tensor& tensor, Device device) {
  return tensor.defined() ? on_device(tensor, device) : Tensor();
}

Tensor optional_f64(const Tensor& tensor) { return tensor.defined() ? as_f64(tensor) : Tensor(); }

const std::vector<std::string>& parameter_names() {
  static const std::vector<std::string> names{"grad_log_dt", "grad_lambda", "grad_b", "grad_c",
                                              "grad_d"};
  return names;
}

std::vector<Tensor> parameter_list(const DiagonalSsmParameters& p) {
  return {p.log_dt, p.lambda, p.b, p.c, p.d};
}

// The layer forward and backward on `device`: y, final, grad_u, the parameter gradients and
// grad_initial.
Results run_layer(ComputeContext& context, const SsmProblem& p, const SsmInputs& host,
                  Device device) {
  const DiagonalSsmParameters params = parameters_on(host.parameters, device);
  const Tensor u = on_device(host.u, device);
  const Tensor initial = optional_on(host.initial, device);
  const Tensor y = Tensor::empty(u.shape(), DType::f32, device);
  const Tensor final = Tensor::empty(state_shape(p), DType::f32, device);
  diagonal_ssm_forward(context, p.kind, params, u, initial, y, final, p.piece);
  const Tensor grad_u = Tensor::empty(u.shape(), DType::f32, device);
  const DiagonalSsmParameters grads = zeros_like(params);
  const Tensor grad_initial =
      p.with_states ? Tensor::empty(state_shape(p), DType::f32, device) : Tensor();
  diagonal_ssm_backward(context, p.kind, params, u, on_device(host.grad_y, device), initial,
                        optional_on(host.grad_final, device), grad_u, grads, grad_initial, p.piece);
  context.synchronize();
  Results results{{"y", to_host(y)}, {"final", to_host(final)}, {"grad_u", to_host(grad_u)}};
  const std::vector<Tensor> list = parameter_list(grads);
  for (std::size_t i = 0; i < list.size(); ++i) {
    results.push_back({parameter_names()[i], to_host(list[i])});
  }
  if (p.with_states) {
    results.push_back({"grad_initial", to_host(grad_initial)});
  }
  return results;
}

// The reference recurrence in fp64, and every gradient by central differences of
// loss = sum(y grad_y) + sum(final grad_final).
Results reference_layer(const SsmProblem& p, const SsmInputs& in) {
  const DiagonalSsmParameters params = parameters_f64(in.parameters);
  const Tensor u = as_f64(in.u);
  const Tensor initial = optional_f64(in.initial);
  const Tensor grad_y = as_f64(in.grad_y);
  const Tensor grad_final = optional_f64(in.grad_final);
  const Tensor y = Tensor::empty(u.shape(), DType::f64);
  const Tensor final = Tensor::empty(state_shape(p), DType::f64);
  const auto loss = [&] {
    reference::diagonal_ssm_forward(p.kind, params, u, initial, y, final);
    return weighted_sum(y, grad_y) + (grad_final.defined() ? weighted_sum(final, grad_final) : 0.0);
  };
  const auto gradient = [&](const Tensor& input) {
    const std::vector<double> numeric = finite_difference_gradient(input, loss);
    return tensor_from(numeric, input.shape());
  };
  Results results;
  results.push_back({"grad_u", gradient(u)});
  const std::vector<Tensor> list = parameter_list(params);
  for (std::size_t i = 0; i < list.size(); ++i) {
    results.push_back({parameter_names()[i], gradient(list[i])});
  }
  if (p.with_states) {
    results.push_back({"grad_initial", gradient(initial)});
  }
  loss();
  results.insert(results.begin(), {{"y", y.clone()}, {"final", final.clone()}});
  return results;
}

class DiagonalSsmCase final : public KernelCase {
 public:
  explicit DiagonalSsmCase(SsmProblem problem) : p_(problem) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("{}_b{}_h{}_n{}_m{}{}{}", kind_name(p_.kind), p_.batch, p_.channels,
                       p_.length, p_.modes, p_.with_states ? "_states" : "",
                       p_.piece < p_.length ? fmt::format("_pieces{}", p_.piece) : "");
  }
  [[nodiscard]] std::vector<DType> dtypes(Device /*device*/) const override { return {DType::f32}; }
  [[nodiscard]] double tolerance(DType /*dtype*/) const override { return 1e-4; }
  [[nodiscard]] double flops() const override {
    return diagonal_ssm_forward_flops(p_.batch, p_.channels, p_.length, p_.modes, p_.with_states,
                                      true, p_.piece) +
           diagonal_ssm_backward_flops(p_.batch, p_.channels, p_.length, p_.modes, p_.with_states,
                                       p_.with_states, p_.piece);
  }
  [[nodiscard]] Results run(ComputeContext& context, Device device,
                            DType /*dtype*/) const override {
    return run_layer(context, p_, ssm_inputs(p_), device);
  }
  [[nodiscard]] Results reference(DType /*dtype*/) const override {
    return reference_layer(p_, ssm_inputs(p_));
  }

 private:
  SsmProblem p_;
};

// K over many blocks and groups of the Vandermonde product against exp(l dt Lambda) in double.
class DiagonalSsmKernelCase final : public KernelCase {
 public:
  explicit DiagonalSsmKernelCase(SsmProblem problem) : p_(problem) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("{}_kernel_h{}_n{}_m{}", kind_name(p_.kind), p_.channels, p_.length,
                       p_.modes);
  }
  [[nodiscard]] std::vector<DType> dtypes(Device /*device*/) const override { return {DType::f32}; }
  [[nodiscard]] double tolerance(DType /*dtype*/) const override { return 1e-5; }
  [[nodiscard]] double flops() const override {
    return 8.0 * static_cast<double>(p_.channels * p_.length * p_.modes);
  }
  [[nodiscard]] Results run(ComputeContext& context, Device device,
                            DType /*dtype*/) const override {
    const DiagonalSsmParameters params = parameters_on(small_dt(), device);
    const Tensor kernel = Tensor::empty({p_.channels, p_.length}, DType::f32, device);
    diagonal_ssm_kernel(context, p_.kind, params, kernel);
    context.synchronize();
    return {{"kernel", to_host(kernel)}};
  }
  [[nodiscard]] Results reference(DType /*dtype*/) const override {
    const Tensor kernel = Tensor::empty({p_.channels, p_.length}, DType::f64);
    reference::diagonal_ssm_kernel(p_.kind, parameters_f64(small_dt()), kernel);
    return {{"kernel", kernel}};
  }

 private:
  // The paper's dt range, so that modes live for thousands of positions.
  [[nodiscard]] DiagonalSsmParameters small_dt() const {
    DiagonalSsmParameters params = test_parameters(p_);
    params.log_dt =
        random_uniform_tensor({p_.channels}, p_.seed, 24, std::log(1e-3), std::log(1e-2));
    return params;
  }

  SsmProblem p_;
};

std::vector<KernelCasePtr> diagonal_ssm_cases() {
  using K = DiagonalSsmKind;
  std::vector<KernelCasePtr> cases;
  for (const K kind : {K::s4d, K::dss}) {
    for (const bool states : {true, false}) {
      cases.push_back(
          std::make_shared<DiagonalSsmCase>(SsmProblem{.kind = kind, .with_states = states}));
    }
    cases.push_back(std::make_shared<DiagonalSsmCase>(
        SsmProblem{.kind = kind, .batch = 1, .channels = 2, .length = 150, .modes = 5}));
    cases.push_back(std::make_shared<DiagonalSsmCase>(
        SsmProblem{.kind = kind, .batch = 1, .channels = 1, .length = 1, .modes = 3}));
    cases.push_back(std::make_shared<DiagonalSsmKernelCase>(
        SsmProblem{.kind = kind, .channels = 3, .length = 9000, .modes = 16}));
    // Pieces with the handoff between them, a short last piece, with and without states.
    for (const bool states : {true, false}) {
      cases.push_back(std::make_shared<DiagonalSsmCase>(
          SsmProblem{.kind = kind, .length = 45, .with_states = states, .piece = 16}));
    }
  }
  cases.push_back(std::make_shared<DiagonalSsmCase>(
      SsmProblem{.batch = 1, .channels = 1, .length = 4200, .modes = 2, .with_states = true}));
  cases.push_back(std::make_shared<DiagonalSsmCase>(SsmProblem{
      .batch = 1, .channels = 1, .length = 4200, .modes = 2, .with_states = true, .piece = 1000}));
  // The paper's state size (M = 32, phases up to 10 radians per step) and dt range.
  cases.push_back(std::make_shared<DiagonalSsmCase>(
      SsmProblem{.batch = 1, .channels = 2, .length = 64, .modes = 32, .max_dt = 0.1}));
  return cases;
}

INSTANTIATE_TEST_SUITE_P(DiagonalSsm, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, diagonal_ssm_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(DiagonalSsm, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, diagonal_ssm_cases())),
                         case_name);

// ---- properties on the CPU

// Positions [begin, end) of a (B, H, L) tensor as a contiguous tensor.
Tensor positions(const Tensor& full, std::int64_t begin, std::int64_t end) {
  return full.slice(2, begin, end).contiguous();
}

Tensor concatenate(const Tensor& first, const Tensor& second) {
  const Tensor joined =
      Tensor::empty({first.size(0), first.size(1), first.size(2) + second.size(2)}, DType::f32);
  joined.slice(2, 0, first.size(2)).copy_from(first);
  joined.slice(2, first.size(2), joined.size(2)).copy_from(second);
  return joined;
}

// Splitting the sequence anywhere, the second piece starting from the first one's final state
// (and the first one's final state receiving the second one's initial-state gradient), gives the
// one-pass outputs, input gradients and parameter gradients.
TEST(DiagonalSsmHandoff, SplitAnywhereEqualsOnePass) {
  ComputeContext context(kTestThreads);
  for (const DiagonalSsmKind kind : {DiagonalSsmKind::s4d, DiagonalSsmKind::dss}) {
    const SsmProblem p{.kind = kind, .length = 97, .modes = 5, .with_states = false};
    const SsmInputs in = ssm_inputs(p);
    const Results whole = run_layer(context, p, in, Device::cpu);
    for (const std::int64_t split :
         {std::int64_t{1}, std::int64_t{40}, std::int64_t{64}, std::int64_t{96}}) {
      SCOPED_TRACE(fmt::format("{} split at {}", kind_name(kind), split));
      const Tensor u1 = positions(in.u, 0, split);
      const Tensor u2 = positions(in.u, split, p.length);
      const Tensor g1 = positions(in.grad_y, 0, split);
      const Tensor g2 = positions(in.grad_y, split, p.length);
      const Tensor y1 = Tensor::empty(u1.shape(), DType::f32);
      const Tensor y2 = Tensor::empty(u2.shape(), DType::f32);
      const Tensor handoff = Tensor::empty(state_shape(p), DType::f32);
      diagonal_ssm_forward(context, kind, in.parameters, u1, Tensor(), y1, handoff);
      diagonal_ssm_forward(context, kind, in.parameters, u2, handoff, y2, Tensor());
      expect_close("y", concatenate(y1, y2), whole[0].tensor, 1e-5);

      const DiagonalSsmParameters grads = zeros_like(in.parameters);
      const Tensor grad_u1 = Tensor::empty(u1.shape(), DType::f32);
      const Tensor grad_u2 = Tensor::empty(u2.shape(), DType::f32);
      const Tensor grad_handoff = Tensor::empty(state_shape(p), DType::f32);
      diagonal_ssm_backward(context, kind, in.parameters, u2, g2, handoff, Tensor(), grad_u2, grads,
                            grad_handoff);
      diagonal_ssm_backward(context, kind, in.parameters, u1, g1, Tensor(), grad_handoff, grad_u1,
                            grads, Tensor());
      expect_close("grad_u", concatenate(grad_u1, grad_u2), whole[2].tensor, 1e-5);
      const std::vector<Tensor> list = parameter_list(grads);
      for (std::size_t i = 0; i < list.size(); ++i) {
        expect_close(parameter_names()[i], list[i], whole[3 + i].tensor, 1e-5);
      }
    }
  }
}

// The FFT runs on length >= 2L - 1, so nothing wraps: perturbing u_t leaves y_{<t} unchanged up
// to FFT rounding, while y_{>=t} moves by O(1).
TEST(DiagonalSsmHandoff, PaddedConvolutionIsCausal) {
  ComputeContext context(kTestThreads);
  const SsmProblem p{.batch = 1, .channels = 2, .length = 128, .with_states = false};
  const SsmInputs in = ssm_inputs(p);
  const Tensor y = Tensor::empty(in.u.shape(), DType::f32);
  diagonal_ssm_forward(context, p.kind, in.parameters, in.u, Tensor(), y, Tensor());
  for (const std::int64_t t : {std::int64_t{1}, std::int64_t{64}, std::int64_t{127}}) {
    const Tensor perturbed = in.u.clone();
    for (std::int64_t h = 0; h < p.channels; ++h) {
      perturbed.data<float>()[h * p.length + t] += 10.0f;
    }
    const Tensor y2 = Tensor::empty(in.u.shape(), DType::f32);
    diagonal_ssm_forward(context, p.kind, in.parameters, perturbed, Tensor(), y2, Tensor());
    double past = 0.0;
    double future = 0.0;
    for (std::int64_t h = 0; h < p.channels; ++h) {
      for (std::int64_t l = 0; l < p.length; ++l) {
        const std::int64_t e = h * p.length + l;
        const double change = std::abs(y2.data<float>()[e] - y.data<float>()[e]);
        (l < t ? past : future) = std::max(l < t ? past : future, change);
      }
    }
    EXPECT_LT(past, 1e-4) << "t = " << t;
    EXPECT_GT(future, 1e-1) << "t = " << t;
  }
}

// DSS-exp is S4D with zero-order hold, a Lambda shared by the channels and no factor 2.
TEST(DiagonalSsmIdentity, DssExpEqualsS4dZohWithSharedLambda) {
  ComputeContext context(kTestThreads);
  const SsmProblem p{.kind = DiagonalSsmKind::dss, .channels = 3, .length = 200, .modes = 6};
  const DiagonalSsmParameters dss = test_parameters(p);
  DiagonalSsmParameters s4d = dss;
  s4d.lambda = Tensor::empty({p.channels, p.modes, 2}, DType::f32);
  for (std::int64_t h = 0; h < p.channels; ++h) {
    s4d.lambda.slice(0, h, h + 1).copy_from(dss.lambda);
  }
  const Tensor k_dss = Tensor::empty({p.channels, p.length}, DType::f32);
  const Tensor k_s4d = Tensor::empty({p.channels, p.length}, DType::f32);
  diagonal_ssm_kernel(context, DiagonalSsmKind::dss, dss, k_dss);
  diagonal_ssm_kernel(context, DiagonalSsmKind::s4d, s4d, k_s4d);
  for (std::int64_t e = 0; e < k_s4d.numel(); ++e) {
    k_s4d.data<float>()[e] *= 0.5f;
  }
  expect_close("K", k_dss, k_s4d, 1e-6);
  // The shared Lambda's gradient is the sum of the per-channel ones.
  const Tensor grad_k = random_normal_tensor({p.channels, p.length}, p.seed, 9);
  const DiagonalSsmParameters grad_dss = zeros_like(dss);
  const DiagonalSsmParameters grad_s4d = zeros_like(s4d);
  diagonal_ssm_kernel_backward(context, DiagonalSsmKind::dss, dss, grad_k, grad_dss);
  diagonal_ssm_kernel_backward(context, DiagonalSsmKind::s4d, s4d, grad_k, grad_s4d);
  const Tensor summed = Tensor::zeros({1, p.modes, 2}, DType::f32);
  for (std::int64_t e = 0; e < grad_s4d.lambda.numel(); ++e) {
    summed.data<float>()[e % summed.numel()] += 0.5f * grad_s4d.lambda.data<float>()[e];
  }
  expect_close("grad_lambda", grad_dss.lambda, summed, 1e-5);
}

// The recurrent step over every position gives the layer's outputs and final state.
TEST(DiagonalSsmStep, StepsEqualTheLayer) {
  ComputeContext context(kTestThreads);
  const SsmProblem p{.length = 50};
  const SsmInputs in = ssm_inputs(p);
  const Tensor y = Tensor::empty(in.u.shape(), DType::f32);
  const Tensor final = Tensor::empty(state_shape(p), DType::f32);
  diagonal_ssm_forward(context, p.kind, in.parameters, in.u, in.initial, y, final);
  const Tensor state = in.initial.clone();
  const Tensor stepped = Tensor::empty(in.u.shape(), DType::f32);
  for (std::int64_t l = 0; l < p.length; ++l) {
    const Tensor u = positions(in.u, l, l + 1).reshape({p.batch, p.channels});
    const Tensor out = Tensor::empty({p.batch, p.channels}, DType::f32);
    diagonal_ssm_step(context, p.kind, in.parameters, u, state, out);
    stepped.slice(2, l, l + 1).copy_from(out.reshape({p.batch, p.channels, 1}));
  }
  expect_close("y", stepped, y, 1e-5);
  expect_close("final", state, final, 1e-5);
}

}  // namespace
}  // namespace longseq::test
