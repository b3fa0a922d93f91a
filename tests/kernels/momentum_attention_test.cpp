// Momentum attention (kernels/momentum_attention.h): the chunked kernels against the quadratic
// reference (forward, backward, incoming and outgoing states) on every backend; the recurrent step
// against the same reference; the paper's recurrence (P_i = mu P_{i-1} - gamma phi(k_i) v_i^T,
// S_i = S_{i-1} - P_i) against the chunked and the quadratic forms at every position; any split
// of the sequence with state handoff against one pass, forward and backward; mu = 0, gamma = 1
// against linear attention; a long sequence of large inputs without NaN; and the reference
// against finite differences.
#include "kernels/momentum_attention.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/common/linear_attention_math.h"
#include "kernels/linear_attention.h"
#include "kernels/reference/momentum_attention.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct MomentumParameters {
  std::int64_t batch = 2;
  std::int64_t heads = 2;
  std::int64_t length = 97;
  std::int64_t key_dim = 32;
  std::int64_t value_dim = 32;
  float momentum = 0.5f;
  float step = 0.8f;
  bool with_states = true;  // an incoming state and a gradient of the final state
  std::uint64_t seed = 11;
};

// Inputs: q, k, v, grad_out (dtype), and fp32 states: initial (C, D, z > 0), grad_final.
struct MomentumInputs {
  Tensor q, k, v, grad_out;
  MomentumAttentionState initial, grad_final;
};

Shape matrix_shape(const MomentumParameters& p) {
  return {p.batch, p.heads, p.key_dim, p.value_dim};
}
Shape normaliser_shape(const MomentumParameters& p) { return {p.batch, p.heads, p.key_dim}; }

MomentumInputs momentum_inputs(const MomentumParameters& p, DType dtype) {
  MomentumInputs in;
  const Shape key_shape{p.batch, p.heads, p.length, p.key_dim};
  const Shape value_shape{p.batch, p.heads, p.length, p.value_dim};
  in.q = random_normal_tensor(key_shape, p.seed, 1, dtype);
  in.k = random_normal_tensor(key_shape, p.seed, 2, dtype);
  in.v = random_normal_tensor(value_shape, p.seed, 3, dtype);
  in.grad_out = random_normal_tensor(value_shape, p.seed, 4, dtype);
  if (p.with_states) {
    in.initial = {random_normal_tensor(matrix_shape(p), p.seed, 5, DType::f32, 3.0),
                  random_normal_tensor(matrix_shape(p), p.seed, 6, DType::f32, 2.0),
                  random_uniform_tensor(normaliser_shape(p), p.seed, 7, 5.0, 20.0, DType::f32)};
    in.grad_final = {random_normal_tensor(matrix_shape(p), p.seed, 8, DType::f32, 0.1),
                     random_normal_tensor(matrix_shape(p), p.seed, 9, DType::f32, 0.1),
                     random_normal_tensor(normaliser_shape(p), p.seed, 10, DType::f32, 0.1)};
  }
  return in;
}

MomentumAttentionState empty_state(const MomentumParameters& p, DType dtype, Device device) {
  return {Tensor::empty(matrix_shape(p), dtype, device),
          Tensor::empty(matrix_shape(p), dtype, device),
          Tensor::empty(normaliser_shape(p), dtype, device)};
}

MomentumAttentionState state_on(const MomentumAttentionState& state, Device device) {
  if (!state.defined()) {
    return {};
  }
  return {on_device(state.c, device), on_device(state.d, device), on_device(state.z, device)};
}

MomentumAttentionState state_f64(const MomentumAttentionState& state) {
  if (!state.defined()) {
    return {};
  }
  return {as_f64(state.c), as_f64(state.d), as_f64(state.z)};
}

MomentumAttentionOptions options_of(const MomentumParameters& p) {
  MomentumAttentionOptions options;
  options.momentum = p.momentum;
  options.step = p.step;
  return options;
}

Results state_results(const std::string& prefix, const MomentumAttentionState& state) {
  return {{prefix + "_c", to_host(state.c)},
          {prefix + "_d", to_host(state.d)},
          {prefix + "_z", to_host(state.z)}};
}

void append(Results& results, const Results& more) {
  results.insert(results.end(), more.begin(), more.end());
}

// The reference forward and backward: out, final state, grads, grad of the initial state (f64).
Results reference_results(const MomentumParameters& p, const MomentumInputs& in) {
  const MomentumAttentionOptions options = options_of(p);
  const Tensor q = as_f64(in.q);
  const Tensor k = as_f64(in.k);
  const Tensor v = as_f64(in.v);
  const Tensor out = Tensor::empty(v.shape(), DType::f64);
  const MomentumAttentionState final = empty_state(p, DType::f64, Device::cpu);
  const MomentumAttentionState initial = state_f64(in.initial);
  reference::momentum_attention_forward(q, k, v, options, initial, out, final);
  const Tensor grad_q = Tensor::empty(q.shape(), DType::f64);
  const Tensor grad_k = Tensor::empty(k.shape(), DType::f64);
  const Tensor grad_v = Tensor::empty(v.shape(), DType::f64);
  const MomentumAttentionState grad_initial = empty_state(p, DType::f64, Device::cpu);
  reference::momentum_attention_backward(q, k, v, as_f64(in.grad_out), options, initial,
                                         state_f64(in.grad_final), grad_q, grad_k, grad_v,
                                         grad_initial);
  Results results{{"out", out}};
  append(results, state_results("final", final));
  append(results, {{"grad_q", grad_q}, {"grad_k", grad_k}, {"grad_v", grad_v}});
  append(results, state_results("grad_in", grad_initial));
  return results;
}

std::string momentum_tag(const MomentumParameters& p) {
  return fmt::format("mu{}_g{}", static_cast<int>(std::lround(p.momentum * 100)),
                     static_cast<int>(std::lround(p.step * 100)));
}

class MomentumAttentionCase final : public KernelCase {
 public:
  explicit MomentumAttentionCase(MomentumParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("momentum_b{}_h{}_n{}_dk{}_dv{}_{}{}", p_.batch, p_.heads, p_.length,
                       p_.key_dim, p_.value_dim, momentum_tag(p_), p_.with_states ? "_states" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return {DType::f32};
    }
    return {DType::f32, DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    const MomentumAttentionShape shape{p_.batch,     p_.heads,    p_.length, p_.key_dim,
                                       p_.value_dim, p_.momentum, p_.step,   1e-6f};
    return momentum_attention_forward_flops(shape) + momentum_attention_backward_flops(shape);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const MomentumInputs host = momentum_inputs(p_, dtype);
    const Tensor q = on_device(host.q, device);
    const Tensor k = on_device(host.k, device);
    const Tensor v = on_device(host.v, device);
    const MomentumAttentionState initial = state_on(host.initial, device);
    const MomentumAttentionOptions options = options_of(p_);
    const Tensor out = Tensor::empty(v.shape(), dtype, device);
    const MomentumAttentionState final = empty_state(p_, DType::f32, device);
    momentum_attention_forward(context, q, k, v, options, initial, out, final);
    const Tensor grad_q = Tensor::empty(q.shape(), dtype, device);
    const Tensor grad_k = Tensor::empty(k.shape(), dtype, device);
    const Tensor grad_v = Tensor::empty(v.shape(), dtype, device);
    const MomentumAttentionState grad_initial = empty_state(p_, DType::f32, device);
    momentum_attention_backward(context, q, k, v, on_device(host.grad_out, device), options,
                                initial, state_on(host.grad_final, device), grad_q, grad_k, grad_v,
                                grad_initial);
    context.synchronize();
    Results results{{"out", to_host(out)}};
    append(results, state_results("final", final));
    append(results,
           {{"grad_q", to_host(grad_q)}, {"grad_k", to_host(grad_k)}, {"grad_v", to_host(grad_v)}});
    append(results, state_results("grad_in", grad_initial));
    return results;
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    return reference_results(p_, momentum_inputs(p_, dtype));
  }

 private:
  MomentumParameters p_;
};

// Row i of a (B, H, N, D) tensor as a contiguous (B, H, D) tensor.
Tensor position(const Tensor& full, std::int64_t i) {
  return full.slice(2, i, i + 1).contiguous().reshape({full.size(0), full.size(1), full.size(3)});
}

// The recurrent form: momentum_attention_step over every position, from the incoming state; its
// outputs and final state against the reference forward.
class MomentumAttentionStepCase final : public KernelCase {
 public:
  explicit MomentumAttentionStepCase(MomentumParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("momentum_step_b{}_h{}_n{}_dk{}_dv{}_{}", p_.batch, p_.heads, p_.length,
                       p_.key_dim, p_.value_dim, momentum_tag(p_));
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    return device == Device::cpu ? std::vector<DType>{DType::f32}
                                 : std::vector<DType>{DType::f32, DType::bf16};
  }

  [[nodiscard]] double flops() const override {
    return 8.0 * static_cast<double>(p_.batch * p_.heads * p_.length * p_.key_dim * p_.value_dim);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const MomentumInputs host = momentum_inputs(p_, dtype);
    const Tensor out = Tensor::empty(host.v.shape(), dtype);
    const MomentumAttentionState state =
        state_on({host.initial.c.clone(), host.initial.d.clone(), host.initial.z.clone()}, device);
    for (std::int64_t i = 0; i < p_.length; ++i) {
      const Tensor q = on_device(position(host.q, i), device);
      const Tensor k = on_device(position(host.k, i), device);
      const Tensor v = on_device(position(host.v, i), device);
      const Tensor step_out = Tensor::empty(v.shape(), dtype, device);
      momentum_attention_step(context, q, k, v, options_of(p_), state, step_out);
      context.synchronize();
      out.slice(2, i, i + 1)
          .copy_from(to_host(step_out).reshape({p_.batch, p_.heads, 1, p_.value_dim}));
    }
    Results results{{"out", out}};
    append(results, state_results("final", state));
    return results;
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Results all = reference_results(p_, momentum_inputs(p_, dtype));
    return {all.begin(), all.begin() + 4};
  }

 private:
  MomentumParameters p_;
};

std::vector<KernelCasePtr> momentum_attention_cases() {
  std::vector<KernelCasePtr> cases;
  for (const bool with_states : {true, false}) {
    cases.push_back(std::make_shared<MomentumAttentionCase>(
        MomentumParameters{.length = 97, .with_states = with_states}));
  }
  cases.push_back(std::make_shared<MomentumAttentionCase>(MomentumParameters{
      .batch = 1, .heads = 3, .length = 113, .key_dim = 24, .value_dim = 40, .momentum = 0.1f}));
  cases.push_back(std::make_shared<MomentumAttentionCase>(MomentumParameters{.batch = 1,
                                                                             .heads = 1,
                                                                             .length = 200,
                                                                             .key_dim = 64,
                                                                             .value_dim = 15,
                                                                             .momentum = 0.9f,
                                                                             .step = 0.6f}));
  cases.push_back(std::make_shared<MomentumAttentionCase>(MomentumParameters{
      .batch = 1, .heads = 2, .length = 130, .key_dim = 16, .value_dim = 8, .momentum = 0.0f}));
  cases.push_back(std::make_shared<MomentumAttentionCase>(
      MomentumParameters{.batch = 1, .heads = 2, .length = 1, .key_dim = 7, .value_dim = 5}));
  cases.push_back(std::make_shared<MomentumAttentionStepCase>(
      MomentumParameters{.length = 70, .key_dim = 24, .value_dim = 40}));
  return cases;
}

INSTANTIATE_TEST_SUITE_P(MomentumAttention, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, momentum_attention_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(MomentumAttention, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, momentum_attention_cases())),
                         case_name);

// ---- the paper's recurrence = chunked = quadratic, at every position

// out of P_i = mu P_{i-1} - gamma phi(k_i) v_i^T, S_i = S_{i-1} - P_i, z_i = z_{i-1} + phi(k_i)
// from zero, in double: the recurrence exactly as the paper writes it.
Tensor paper_recurrence(const Tensor& q, const Tensor& k, const Tensor& v, double mu, double gamma,
                        double eps) {
  const std::int64_t heads = q.size(0) * q.size(1);
  const std::int64_t n = q.size(2);
  const std::int64_t dk = q.size(3);
  const std::int64_t dv = v.size(3);
  const std::vector<double> qs = to_double_vector(q);
  const std::vector<double> ks = to_double_vector(k);
  const std::vector<double> vs = to_double_vector(v);
  std::vector<double> out(static_cast<std::size_t>(heads * n * dv));
  for (std::int64_t h = 0; h < heads; ++h) {
    std::vector<double> p(static_cast<std::size_t>(dk * dv), 0.0);
    std::vector<double> s(p.size(), 0.0);
    std::vector<double> z(static_cast<std::size_t>(dk), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t row = h * n + i;
      double den = eps;
      std::vector<double> num(static_cast<std::size_t>(dv), 0.0);
      for (std::int64_t a = 0; a < dk; ++a) {
        const double key = elu_feature(ks[row * dk + a]);
        const double query = elu_feature(qs[row * dk + a]);
        z[a] += key;
        den += query * z[a];
        for (std::int64_t c = 0; c < dv; ++c) {
          p[a * dv + c] = mu * p[a * dv + c] - gamma * key * vs[row * dv + c];
          s[a * dv + c] -= p[a * dv + c];
          num[c] += query * s[a * dv + c];
        }
      }
      for (std::int64_t c = 0; c < dv; ++c) {
        out[row * dv + c] = num[c] / den;
      }
    }
  }
  return tensor_from(out, v.shape());
}

TEST(MomentumAttentionForms, RecurrenceEqualsChunkedEqualsQuadratic) {
  ComputeContext context(kTestThreads);
  for (const float mu : {0.0f, 0.3f, 0.6f, 0.95f}) {
    const MomentumParameters p{.batch = 1,
                               .heads = 2,
                               .length = 150,
                               .key_dim = 12,
                               .value_dim = 20,
                               .momentum = mu,
                               .step = 0.7f,
                               .with_states = false};
    const MomentumInputs in = momentum_inputs(p, DType::f32);
    const Tensor recurrent = paper_recurrence(in.q, in.k, in.v, mu, 0.7f, 1e-6);
    const Tensor quadratic = Tensor::empty(in.v.shape(), DType::f64);
    reference::momentum_attention_forward(as_f64(in.q), as_f64(in.k), as_f64(in.v), options_of(p),
                                          {}, quadratic, {});
    const Tensor chunked = Tensor::empty(in.v.shape(), DType::f32);
    momentum_attention_forward(context, in.q, in.k, in.v, options_of(p), {}, chunked, {});
    const std::string what = fmt::format("mu = {}", mu);
    expect_close(what + " quadratic vs recurrence", quadratic, recurrent, 1e-10);
    expect_close(what + " chunked vs recurrence", chunked, recurrent, 1e-5);
    // Every prefix computes the same outputs as the whole sequence (no length-dependent weights).
    const std::int64_t prefix = 77;
    const Tensor prefix_out = Tensor::empty({1, 2, prefix, 20}, DType::f32);
    momentum_attention_forward(
        context, in.q.slice(2, 0, prefix).contiguous(), in.k.slice(2, 0, prefix).contiguous(),
        in.v.slice(2, 0, prefix).contiguous(), options_of(p), {}, prefix_out, {});
    expect_close(what + " prefix", prefix_out, chunked.slice(2, 0, prefix).contiguous(), 1e-6);
  }
}

// ---- a split sequence with state handoff equals one pass (CPU)

TEST(MomentumAttentionSplit, HandoffEqualsOnePass) {
  ComputeContext context(kTestThreads);
  const MomentumParameters p{
      .batch = 1, .heads = 2, .length = 193, .key_dim = 16, .value_dim = 24, .momentum = 0.7f};
  const MomentumInputs in = momentum_inputs(p, DType::f32);
  const MomentumAttentionOptions options = options_of(p);
  const auto rows_of = [](const Tensor& full, std::int64_t begin, std::int64_t end) {
    return full.slice(2, begin, end).contiguous();
  };
  const auto put_rows = [](const Tensor& part, const Tensor& full, std::int64_t begin) {
    full.slice(2, begin, begin + part.size(2)).copy_from(part);
  };
  // One pass.
  const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
  const MomentumAttentionState final = empty_state(p, DType::f32, Device::cpu);
  momentum_attention_forward(context, in.q, in.k, in.v, options, in.initial, out, final);
  const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
  const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
  const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
  const MomentumAttentionState grad_initial = empty_state(p, DType::f32, Device::cpu);
  momentum_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                              in.grad_final, grad_q, grad_k, grad_v, grad_initial);
  for (const std::vector<std::int64_t>& cuts : {std::vector<std::int64_t>{0, 1, 193},
                                                {0, 64, 128, 193},
                                                {0, 17, 100, 101, 193},
                                                {0, 193, 193}}) {
    const std::size_t pieces = cuts.size() - 1;
    // Forward: each piece starts from the previous piece's final state.
    std::vector<MomentumAttentionState> states{in.initial};
    const Tensor split_out = Tensor::empty(in.v.shape(), DType::f32);
    for (std::size_t s = 0; s < pieces; ++s) {
      const Tensor piece_out = rows_of(out, cuts[s], cuts[s + 1]);
      states.push_back(empty_state(p, DType::f32, Device::cpu));
      momentum_attention_forward(
          context, rows_of(in.q, cuts[s], cuts[s + 1]), rows_of(in.k, cuts[s], cuts[s + 1]),
          rows_of(in.v, cuts[s], cuts[s + 1]), options, states[s], piece_out, states[s + 1]);
      put_rows(piece_out, split_out, cuts[s]);
    }
    const std::string what = fmt::format("{} pieces", pieces);
    expect_close(what + " out", split_out, out, 1e-5);
    expect_close(what + " final C", states[pieces].c, final.c, 1e-5);
    expect_close(what + " final D", states[pieces].d, final.d, 1e-5);
    expect_close(what + " final z", states[pieces].z, final.z, 1e-5);
    // Backward: each piece takes the gradient of its final state from the next piece.
    MomentumAttentionState grad_after = in.grad_final;
    const Tensor split_grad_q = Tensor::empty(in.q.shape(), DType::f32);
    const Tensor split_grad_k = Tensor::empty(in.k.shape(), DType::f32);
    const Tensor split_grad_v = Tensor::empty(in.v.shape(), DType::f32);
    for (std::size_t s = pieces; s-- > 0;) {
      const Tensor piece_q = rows_of(in.q, cuts[s], cuts[s + 1]);
      const Tensor piece_k = rows_of(in.k, cuts[s], cuts[s + 1]);
      const Tensor piece_v = rows_of(in.v, cuts[s], cuts[s + 1]);
      const Tensor piece_grad_q = Tensor::empty(piece_q.shape(), DType::f32);
      const Tensor piece_grad_k = Tensor::empty(piece_k.shape(), DType::f32);
      const Tensor piece_grad_v = Tensor::empty(piece_v.shape(), DType::f32);
      const MomentumAttentionState grad_before = empty_state(p, DType::f32, Device::cpu);
      momentum_attention_backward(
          context, piece_q, piece_k, piece_v, rows_of(in.grad_out, cuts[s], cuts[s + 1]), options,
          states[s], grad_after, piece_grad_q, piece_grad_k, piece_grad_v, grad_before);
      put_rows(piece_grad_q, split_grad_q, cuts[s]);
      put_rows(piece_grad_k, split_grad_k, cuts[s]);
      put_rows(piece_grad_v, split_grad_v, cuts[s]);
      grad_after = grad_before;
    }
    expect_close(what + " grad_q", split_grad_q, grad_q, 1e-5);
    expect_close(what + " grad_k", split_grad_k, grad_k, 1e-5);
    expect_close(what + " grad_v", split_grad_v, grad_v, 1e-5);
    expect_close(what + " grad C_in", grad_after.c, grad_initial.c, 1e-5);
    expect_close(what + " grad D_in", grad_after.d, grad_initial.d, 1e-5);
    expect_close(what + " grad z_in", grad_after.z, grad_initial.z, 1e-5);
  }
}

// Asking for part of the backward gives the same values as asking for all of it.
TEST(MomentumAttentionSplit, PartialBackwardMatchesFull) {
  ComputeContext context(kTestThreads);
  const MomentumParameters p{.batch = 1, .heads = 2, .length = 150, .key_dim = 16, .value_dim = 8};
  const MomentumInputs in = momentum_inputs(p, DType::f32);
  const MomentumAttentionOptions options = options_of(p);
  const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
  const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
  const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
  const MomentumAttentionState grad_initial = empty_state(p, DType::f32, Device::cpu);
  momentum_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                              in.grad_final, grad_q, grad_k, grad_v, grad_initial);
  const MomentumAttentionState only_initial = empty_state(p, DType::f32, Device::cpu);
  momentum_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                              in.grad_final, Tensor(), Tensor(), Tensor(), only_initial);
  expect_close("grad C_in alone", only_initial.c, grad_initial.c, 1e-6);
  expect_close("grad D_in alone", only_initial.d, grad_initial.d, 1e-6);
  expect_close("grad z_in alone", only_initial.z, grad_initial.z, 1e-6);
  const MomentumAttentionState only_final = empty_state(p, DType::f32, Device::cpu);
  const MomentumAttentionState final = empty_state(p, DType::f32, Device::cpu);
  momentum_attention_forward(context, in.q, in.k, in.v, options, in.initial, Tensor(), only_final);
  const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
  momentum_attention_forward(context, in.q, in.k, in.v, options, in.initial, out, final);
  expect_close("final C alone", only_final.c, final.c, 1e-6);
  expect_close("final D alone", only_final.d, final.d, 1e-6);
}

// ---- mu = 0, gamma = 1 is linear attention

TEST(MomentumAttentionIdentity, NoMomentumIsLinearAttention) {
  ComputeContext context(kTestThreads);
  const MomentumParameters p{.batch = 2,
                             .heads = 2,
                             .length = 141,
                             .key_dim = 16,
                             .value_dim = 24,
                             .momentum = 0.0f,
                             .step = 1.0f,
                             .with_states = false};
  const MomentumInputs in = momentum_inputs(p, DType::f32);
  LinearAttentionOptions linear;
  linear.causal = true;
  const Tensor linear_out = Tensor::empty(in.v.shape(), DType::f32);
  linear_attention_forward(context, in.q, in.k, in.v, linear, {}, linear_out, {});
  const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
  momentum_attention_forward(context, in.q, in.k, in.v, options_of(p), {}, out, {});
  expect_close("out", out, linear_out, 1e-6);
  const Tensor linear_grads[3] = {Tensor::empty(in.q.shape(), DType::f32),
                                  Tensor::empty(in.k.shape(), DType::f32),
                                  Tensor::empty(in.v.shape(), DType::f32)};
  linear_attention_backward(context, in.q, in.k, in.v, in.grad_out, linear, {}, {}, linear_grads[0],
                            linear_grads[1], linear_grads[2], {});
  const Tensor grads[3] = {Tensor::empty(in.q.shape(), DType::f32),
                           Tensor::empty(in.k.shape(), DType::f32),
                           Tensor::empty(in.v.shape(), DType::f32)};
  momentum_attention_backward(context, in.q, in.k, in.v, in.grad_out, options_of(p), {}, {},
                              grads[0], grads[1], grads[2], {});
  expect_close("grad_q", grads[0], linear_grads[0], 1e-5);
  expect_close("grad_k", grads[1], linear_grads[1], 1e-5);
  expect_close("grad_v", grads[2], linear_grads[2], 1e-5);
}

// ---- a long sequence of large inputs: fp32 sums stay finite

TEST(MomentumAttentionStress, LongSequenceHasNoNaN) {
  ComputeContext context(kTestThreads);
  const MomentumParameters p{.batch = 1,
                             .heads = 1,
                             .length = 16384,
                             .key_dim = 16,
                             .value_dim = 16,
                             .momentum = 0.9f,
                             .with_states = false};
  const Shape key_shape{1, 1, p.length, p.key_dim};
  const Shape value_shape{1, 1, p.length, p.value_dim};
  const Tensor q = random_normal_tensor(key_shape, 3, 1, DType::f32, 4.0);
  const Tensor k = random_normal_tensor(key_shape, 3, 2, DType::f32, 4.0);
  const Tensor v = random_normal_tensor(value_shape, 3, 3, DType::f32, 10.0);
  const Tensor out = Tensor::empty(value_shape, DType::f32);
  momentum_attention_forward(context, q, k, v, options_of(p), {}, out, {});
  const Tensor grads[3] = {Tensor::empty(key_shape, DType::f32),
                           Tensor::empty(key_shape, DType::f32),
                           Tensor::empty(value_shape, DType::f32)};
  momentum_attention_backward(context, q, k, v, v, options_of(p), {}, {}, grads[0], grads[1],
                              grads[2], {});
  for (const Tensor& tensor : {out, grads[0], grads[1], grads[2]}) {
    for (const double x : to_double_vector(tensor)) {
      ASSERT_TRUE(std::isfinite(x));
    }
  }
}

// ---- the reference against finite differences (fp64)

TEST(MomentumAttentionReference, GradientsMatchFiniteDifferences) {
  const MomentumParameters p{
      .batch = 1, .heads = 1, .length = 6, .key_dim = 3, .value_dim = 2, .momentum = 0.4f};
  const MomentumInputs in = momentum_inputs(p, DType::f64);
  const MomentumAttentionState initial = state_f64(in.initial);
  const MomentumAttentionOptions options = options_of(p);
  const Tensor out_weights = random_normal_tensor(in.v.shape(), 9, 1, DType::f64);
  const MomentumAttentionState weights = state_f64(in.grad_final);
  const auto loss = [&] {
    const Tensor out = Tensor::empty(in.v.shape(), DType::f64);
    const MomentumAttentionState final = empty_state(p, DType::f64, Device::cpu);
    reference::momentum_attention_forward(in.q, in.k, in.v, options, initial, out, final);
    return weighted_sum(out, out_weights) + weighted_sum(final.c, weights.c) +
           weighted_sum(final.d, weights.d) + weighted_sum(final.z, weights.z);
  };
  const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f64);
  const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f64);
  const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f64);
  const MomentumAttentionState grad_initial = empty_state(p, DType::f64, Device::cpu);
  reference::momentum_attention_backward(in.q, in.k, in.v, out_weights, options, initial, weights,
                                         grad_q, grad_k, grad_v, grad_initial);
  expect_gradient_matches("grad_q", grad_q, finite_difference_gradient(in.q, loss), 1e-7);
  expect_gradient_matches("grad_k", grad_k, finite_difference_gradient(in.k, loss), 1e-7);
  expect_gradient_matches("grad_v", grad_v, finite_difference_gradient(in.v, loss), 1e-7);
  expect_gradient_matches("grad C_in", grad_initial.c, finite_difference_gradient(initial.c, loss),
                          1e-7);
  expect_gradient_matches("grad D_in", grad_initial.d, finite_difference_gradient(initial.d, loss),
                          1e-7);
  expect_gradient_matches("grad z_in", grad_initial.z, finite_difference_gradient(initial.z, loss),
                          1e-7);
}

}  // namespace
}  // namespace longseq::test
