// Linear attention (kernels/linear_attention.h): the chunked kernels against the quadratic
// reference (forward, backward, incoming and outgoing states) on every backend; the recurrent
// step run position by position against the same reference; any split of the sequence with state
// handoff against one pass, forward and backward; and the reference against finite differences.
// Each for the elu + 1 feature map and for given features (identity) with key log scales, the
// form the Performer uses (states compared as their true values exp(m) (S, z)).
#include "kernels/linear_attention.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

// Copies positions [source_begin, source_begin + count) of a contiguous CPU (B, H, N, D) tensor to
// positions from destination_begin of another with the same B, H, D and dtype.
void copy_positions(const Tensor& source, std::int64_t source_begin, const Tensor& destination,
                    std::int64_t destination_begin, std::int64_t count) {
  const std::size_t row = static_cast<std::size_t>(source.size(3)) * dtype_size(source.dtype());
  const auto* from = static_cast<const char*>(source.raw_data());
  auto* to = static_cast<char*>(destination.raw_data());
  for (std::int64_t o = 0; o < source.size(0) * source.size(1); ++o) {
    std::memcpy(to + (o * destination.size(2) + destination_begin) * row,
                from + (o * source.size(2) + source_begin) * row,
                static_cast<std::size_t>(count) * row);
  }
}

struct LinearParameters {
  std::int64_t batch = 2;
  std::int64_t heads = 2;
  std::int64_t length = 97;
  std::int64_t key_dim = 32;
  std::int64_t value_dim = 32;
  bool causal = true;
  bool with_states = true;  // an incoming state and a gradient of the final state
  std::uint64_t seed = 5;
  // Given positive features (identity map), key log scales in [-3, 3), eps = 0.
  bool scaled = false;
};

// Inputs: q, k, v, grad_out (dtype), and fp32 states: initial (S, z > 0), grad_final.
struct LinearInputs {
  Tensor q, k, v, grad_out;
  Tensor key_log_scale;  // (B, H, N) fp32 when scaled
  LinearAttentionState initial, grad_final;
};

Shape state_s_shape(const LinearParameters& p) {
  return {p.batch, p.heads, p.key_dim, p.value_dim};
}
Shape state_z_shape(const LinearParameters& p) { return {p.batch, p.heads, p.key_dim}; }

LinearInputs linear_inputs(const LinearParameters& p, DType dtype) {
  LinearInputs in;
  const Shape key_shape{p.batch, p.heads, p.length, p.key_dim};
  const Shape value_shape{p.batch, p.heads, p.length, p.value_dim};
  if (p.scaled) {
    in.q = random_uniform_tensor(key_shape, p.seed, 1, 0.05, 1.0, dtype);
    in.k = random_uniform_tensor(key_shape, p.seed, 2, 0.05, 1.0, dtype);
    in.key_log_scale =
        random_uniform_tensor({p.batch, p.heads, p.length}, p.seed, 9, -3.0, 3.0, DType::f32);
  } else {
    in.q = random_normal_tensor(key_shape, p.seed, 1, dtype);
    in.k = random_normal_tensor(key_shape, p.seed, 2, dtype);
  }
  in.v = random_normal_tensor(value_shape, p.seed, 3, dtype);
  in.grad_out = random_normal_tensor(value_shape, p.seed, 4, dtype);
  if (p.with_states) {
    const Shape heads{p.batch, p.heads};
    in.initial = {
        random_normal_tensor(state_s_shape(p), p.seed, 5, DType::f32, 3.0),
        random_uniform_tensor(state_z_shape(p), p.seed, 6, 5.0, 20.0, DType::f32),
        p.scaled ? random_uniform_tensor(heads, p.seed, 10, -2.0, 2.0, DType::f32) : Tensor()};
    in.grad_final = {
        random_normal_tensor(state_s_shape(p), p.seed, 7, DType::f32, 0.1),
        random_normal_tensor(state_z_shape(p), p.seed, 8, DType::f32, 0.1),
        p.scaled ? random_uniform_tensor(heads, p.seed, 11, -2.0, 2.0, DType::f32) : Tensor()};
  }
  return in;
}

LinearAttentionState empty_state(const LinearParameters& p, DType dtype, Device device) {
  return {Tensor::empty(state_s_shape(p), dtype, device),
          Tensor::empty(state_z_shape(p), dtype, device),
          p.scaled ? Tensor::empty({p.batch, p.heads}, dtype, device) : Tensor()};
}

Tensor optional_on(const Tensor& tensor, Device device) {
  return tensor.defined() ? on_device(tensor, device) : Tensor();
}

LinearAttentionState state_on(const LinearAttentionState& state, Device device) {
  if (!state.defined()) {
    return {};
  }
  return {on_device(state.s, device), on_device(state.z, device),
          optional_on(state.log_scale, device)};
}

LinearAttentionState state_f64(const LinearAttentionState& state) {
  if (!state.defined()) {
    return {};
  }
  return {as_f64(state.s), as_f64(state.z),
          state.log_scale.defined() ? as_f64(state.log_scale) : Tensor()};
}

// exp(log_scale) * part of a (B, H, ...) state part, as fp64 on the CPU (the part itself without a
// log scale).
Tensor true_values(const Tensor& part, const Tensor& log_scale) {
  const Tensor values = as_f64(to_host(part));
  if (!log_scale.defined()) {
    return values;
  }
  const Tensor scales = as_f64(to_host(log_scale));
  const std::int64_t per_head = values.numel() / scales.numel();
  for (std::int64_t e = 0; e < values.numel(); ++e) {
    values.data<double>()[e] *= std::exp(scales.data<double>()[e / per_head]);
  }
  return values;
}

LinearAttentionOptions options_of(const LinearParameters& p, const Tensor& key_log_scale) {
  LinearAttentionOptions options;
  options.causal = p.causal;
  if (p.scaled) {
    options.eps = 0.0f;
    options.feature_map = LinearAttentionFeatureMap::identity;
    options.key_log_scale = key_log_scale;
  }
  return options;
}

// The reference forward and backward: out, final state, grads, grad of the initial state (f64).
Results reference_results(const LinearParameters& p, const LinearInputs& in) {
  const LinearAttentionOptions options =
      options_of(p, in.key_log_scale.defined() ? as_f64(in.key_log_scale) : Tensor());
  const Tensor q = as_f64(in.q);
  const Tensor k = as_f64(in.k);
  const Tensor v = as_f64(in.v);
  const Tensor out = Tensor::empty(v.shape(), DType::f64);
  const LinearAttentionState final = empty_state(p, DType::f64, Device::cpu);
  const LinearAttentionState initial = state_f64(in.initial);
  reference::linear_attention_forward(q, k, v, options, initial, out, final);
  const Tensor grad_q = Tensor::empty(q.shape(), DType::f64);
  const Tensor grad_k = Tensor::empty(k.shape(), DType::f64);
  const Tensor grad_v = Tensor::empty(v.shape(), DType::f64);
  const LinearAttentionState grad_initial = empty_state(p, DType::f64, Device::cpu);
  reference::linear_attention_backward(q, k, v, as_f64(in.grad_out), options, initial,
                                       state_f64(in.grad_final), grad_q, grad_k, grad_v,
                                       grad_initial);
  return {{"out", out},
          {"final_s", true_values(final.s, final.log_scale)},
          {"final_z", true_values(final.z, final.log_scale)},
          {"grad_q", grad_q},
          {"grad_k", grad_k},
          {"grad_v", grad_v},
          {"grad_s_in", true_values(grad_initial.s, grad_initial.log_scale)},
          {"grad_z_in", true_values(grad_initial.z, grad_initial.log_scale)}};
}

class LinearAttentionCase final : public KernelCase {
 public:
  explicit LinearAttentionCase(LinearParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("linear_b{}_h{}_n{}_dk{}_dv{}_{}{}{}", p_.batch, p_.heads, p_.length,
                       p_.key_dim, p_.value_dim, p_.causal ? "causal" : "full",
                       p_.with_states ? "_states" : "", p_.scaled ? "_scaled" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return {DType::f32};
    }
    return {DType::f32, DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    const LinearAttentionShape shape{p_.batch,     p_.heads,  p_.length, p_.key_dim,
                                     p_.value_dim, p_.causal, 1e-6f};
    return linear_attention_forward_flops(shape) + linear_attention_backward_flops(shape);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const LinearInputs host = linear_inputs(p_, dtype);
    const Tensor q = on_device(host.q, device);
    const Tensor k = on_device(host.k, device);
    const Tensor v = on_device(host.v, device);
    const LinearAttentionState initial = state_on(host.initial, device);
    const LinearAttentionOptions options = options_of(p_, optional_on(host.key_log_scale, device));
    const Tensor out = Tensor::empty(v.shape(), dtype, device);
    const LinearAttentionState final = empty_state(p_, DType::f32, device);
    linear_attention_forward(context, q, k, v, options, initial, out, final);
    const Tensor grad_q = Tensor::empty(q.shape(), dtype, device);
    const Tensor grad_k = Tensor::empty(k.shape(), dtype, device);
    const Tensor grad_v = Tensor::empty(v.shape(), dtype, device);
    const LinearAttentionState grad_initial = empty_state(p_, DType::f32, device);
    linear_attention_backward(context, q, k, v, on_device(host.grad_out, device), options, initial,
                              state_on(host.grad_final, device), grad_q, grad_k, grad_v,
                              grad_initial);
    context.synchronize();
    return {{"out", to_host(out)},
            {"final_s", true_values(final.s, final.log_scale)},
            {"final_z", true_values(final.z, final.log_scale)},
            {"grad_q", to_host(grad_q)},
            {"grad_k", to_host(grad_k)},
            {"grad_v", to_host(grad_v)},
            {"grad_s_in", true_values(grad_initial.s, grad_initial.log_scale)},
            {"grad_z_in", true_values(grad_initial.z, grad_initial.log_scale)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    return reference_results(p_, linear_inputs(p_, dtype));
  }

 private:
  LinearParameters p_;
};

// The recurrent form: linear_attention_step over every position, from the incoming state; its
// outputs and final state against the reference forward.
class LinearAttentionStepCase final : public KernelCase {
 public:
  explicit LinearAttentionStepCase(LinearParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("linear_step_b{}_h{}_n{}_dk{}_dv{}{}", p_.batch, p_.heads, p_.length,
                       p_.key_dim, p_.value_dim, p_.scaled ? "_scaled" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    return device == Device::cpu ? std::vector<DType>{DType::f32}
                                 : std::vector<DType>{DType::f32, DType::bf16};
  }

  [[nodiscard]] double flops() const override {
    return 4.0 * static_cast<double>(p_.batch * p_.heads * p_.length * p_.key_dim * p_.value_dim);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const LinearInputs host = linear_inputs(p_, dtype);
    const Tensor out = Tensor::empty(host.v.shape(), dtype);
    const LinearAttentionState state =
        state_on({host.initial.s.clone(), host.initial.z.clone(),
                  host.initial.log_scale.defined() ? host.initial.log_scale.clone() : Tensor()},
                 device);
    for (std::int64_t i = 0; i < p_.length; ++i) {
      const Tensor q = on_device(position(host.q, i), device);
      const Tensor k = on_device(position(host.k, i), device);
      const Tensor v = on_device(position(host.v, i), device);
      const Tensor step_out = Tensor::empty(v.shape(), dtype, device);
      const Tensor key_log_scale =
          p_.scaled
              ? on_device(
                    position(host.key_log_scale.reshape({p_.batch, p_.heads, p_.length, 1}), i),
                    device)
                    .reshape({p_.batch, p_.heads})
              : Tensor();
      linear_attention_step(context, q, k, v, options_of(p_, key_log_scale), state, step_out);
      context.synchronize();
      copy_positions(to_host(step_out).reshape({p_.batch, p_.heads, 1, p_.value_dim}), 0, out, i,
                     1);
    }
    return {{"out", out},
            {"final_s", true_values(state.s, state.log_scale)},
            {"final_z", true_values(state.z, state.log_scale)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    Results all = reference_results(p_, linear_inputs(p_, dtype));
    return {all[0], all[1], all[2]};
  }

 private:
  // Row i of a (B, H, N, D) tensor as a contiguous (B, H, D) tensor.
  static Tensor position(const Tensor& full, std::int64_t i) {
    const Tensor row = Tensor::empty({full.size(0), full.size(1), 1, full.size(3)}, full.dtype());
    copy_positions(full, i, row, 0, 1);
    return row.reshape({full.size(0), full.size(1), full.size(3)});
  }

  LinearParameters p_;
};

std::vector<KernelCasePtr> linear_attention_cases() {
  std::vector<KernelCasePtr> cases;
  for (const bool causal : {true, false}) {
    for (const bool with_states : {true, false}) {
      for (const bool scaled : {false, true}) {
        cases.push_back(std::make_shared<LinearAttentionCase>(LinearParameters{
            .length = 97, .causal = causal, .with_states = with_states, .scaled = scaled}));
      }
    }
    cases.push_back(std::make_shared<LinearAttentionCase>(LinearParameters{.batch = 1,
                                                                           .heads = 2,
                                                                           .length = 300,
                                                                           .key_dim = 80,
                                                                           .value_dim = 24,
                                                                           .causal = causal,
                                                                           .scaled = true}));
    cases.push_back(std::make_shared<LinearAttentionCase>(LinearParameters{
        .batch = 1, .heads = 3, .length = 113, .key_dim = 24, .value_dim = 40, .causal = causal}));
    cases.push_back(std::make_shared<LinearAttentionCase>(LinearParameters{
        .batch = 1, .heads = 1, .length = 200, .key_dim = 64, .value_dim = 15, .causal = causal}));
    cases.push_back(std::make_shared<LinearAttentionCase>(LinearParameters{
        .batch = 1, .heads = 2, .length = 1, .key_dim = 7, .value_dim = 5, .causal = causal}));
  }
  cases.push_back(std::make_shared<LinearAttentionStepCase>(
      LinearParameters{.length = 70, .key_dim = 24, .value_dim = 40}));
  cases.push_back(std::make_shared<LinearAttentionStepCase>(
      LinearParameters{.length = 70, .key_dim = 24, .value_dim = 40, .scaled = true}));
  return cases;
}

INSTANTIATE_TEST_SUITE_P(LinearAttention, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, linear_attention_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(LinearAttention, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, linear_attention_cases())),
                         case_name);

// ---- a split sequence with state handoff equals one pass (causal, CPU)

// Rows [begin, end) of a (B, H, N, D) tensor, contiguous.
Tensor rows_of(const Tensor& full, std::int64_t begin, std::int64_t end) {
  const Tensor part =
      Tensor::empty({full.size(0), full.size(1), end - begin, full.size(3)}, full.dtype());
  copy_positions(full, begin, part, 0, end - begin);
  return part;
}

void put_rows(const Tensor& part, const Tensor& full, std::int64_t begin) {
  copy_positions(part, 0, full, begin, part.size(2));
}

// The options of positions [begin, end): their key log scales.
LinearAttentionOptions piece_options(const LinearParameters& p, const LinearInputs& in,
                                     std::int64_t begin, std::int64_t end) {
  if (!p.scaled) {
    return options_of(p, Tensor());
  }
  const Tensor scales = in.key_log_scale.reshape({p.batch, p.heads, p.length, 1});
  return options_of(p, rows_of(scales, begin, end).reshape({p.batch, p.heads, end - begin}));
}

class LinearAttentionSplit : public testing::TestWithParam<bool> {};

TEST_P(LinearAttentionSplit, HandoffEqualsOnePass) {
  ComputeContext context(kTestThreads);
  const LinearParameters p{
      .batch = 1, .heads = 2, .length = 193, .key_dim = 16, .value_dim = 24, .scaled = GetParam()};
  const LinearInputs in = linear_inputs(p, DType::f32);
  const LinearAttentionOptions options = options_of(p, in.key_log_scale);
  // One pass.
  const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
  const LinearAttentionState final = empty_state(p, DType::f32, Device::cpu);
  linear_attention_forward(context, in.q, in.k, in.v, options, in.initial, out, final);
  const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
  const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
  const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
  const LinearAttentionState grad_initial = empty_state(p, DType::f32, Device::cpu);
  linear_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                            in.grad_final, grad_q, grad_k, grad_v, grad_initial);
  for (const std::vector<std::int64_t>& cuts : {std::vector<std::int64_t>{0, 1, 193},
                                                {0, 64, 128, 193},
                                                {0, 17, 100, 101, 193},
                                                {0, 193, 193}}) {
    const std::size_t pieces = cuts.size() - 1;
    // Forward: each piece starts from the previous piece's final state.
    std::vector<LinearAttentionState> states{in.initial};
    const Tensor split_out = Tensor::empty(in.v.shape(), DType::f32);
    for (std::size_t s = 0; s < pieces; ++s) {
      const Tensor piece_out = rows_of(out, cuts[s], cuts[s + 1]);
      states.push_back(empty_state(p, DType::f32, Device::cpu));
      linear_attention_forward(
          context, rows_of(in.q, cuts[s], cuts[s + 1]), rows_of(in.k, cuts[s], cuts[s + 1]),
          rows_of(in.v, cuts[s], cuts[s + 1]), piece_options(p, in, cuts[s], cuts[s + 1]),
          states[s], piece_out, states[s + 1]);
      put_rows(piece_out, split_out, cuts[s]);
    }
    const std::string what = fmt::format("{} pieces", pieces);
    expect_close(what + " out", split_out, out, 1e-5);
    expect_close(what + " final S", true_values(states[pieces].s, states[pieces].log_scale),
                 true_values(final.s, final.log_scale), 1e-5);
    expect_close(what + " final z", true_values(states[pieces].z, states[pieces].log_scale),
                 true_values(final.z, final.log_scale), 1e-5);
    // Backward: each piece takes the gradient of its final state from the next piece.
    LinearAttentionState grad_after = in.grad_final;
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
      const LinearAttentionState grad_before = empty_state(p, DType::f32, Device::cpu);
      linear_attention_backward(context, piece_q, piece_k, piece_v,
                                rows_of(in.grad_out, cuts[s], cuts[s + 1]),
                                piece_options(p, in, cuts[s], cuts[s + 1]), states[s], grad_after,
                                piece_grad_q, piece_grad_k, piece_grad_v, grad_before);
      put_rows(piece_grad_q, split_grad_q, cuts[s]);
      put_rows(piece_grad_k, split_grad_k, cuts[s]);
      put_rows(piece_grad_v, split_grad_v, cuts[s]);
      grad_after = grad_before;
    }
    expect_close(what + " grad_q", split_grad_q, grad_q, 1e-5);
    expect_close(what + " grad_k", split_grad_k, grad_k, 1e-5);
    expect_close(what + " grad_v", split_grad_v, grad_v, 1e-5);
    expect_close(what + " grad S_in", true_values(grad_after.s, grad_after.log_scale),
                 true_values(grad_initial.s, grad_initial.log_scale), 1e-5);
    expect_close(what + " grad z_in", true_values(grad_after.z, grad_after.log_scale),
                 true_values(grad_initial.z, grad_initial.log_scale), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(FeatureMaps, LinearAttentionSplit, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "identity_scaled" : "elu");
                         });

// Asking for part of the backward gives the same values as asking for all of it.
TEST_P(LinearAttentionSplit, PartialBackwardMatchesFull) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const LinearParameters p{.batch = 1,
                             .heads = 2,
                             .length = 150,
                             .key_dim = 16,
                             .value_dim = 8,
                             .causal = causal,
                             .scaled = GetParam()};
    const LinearInputs in = linear_inputs(p, DType::f32);
    const LinearAttentionOptions options = options_of(p, in.key_log_scale);
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
    const LinearAttentionState grad_initial = empty_state(p, DType::f32, Device::cpu);
    linear_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                              in.grad_final, grad_q, grad_k, grad_v, grad_initial);
    const LinearAttentionState only_initial = empty_state(p, DType::f32, Device::cpu);
    linear_attention_backward(context, in.q, in.k, in.v, in.grad_out, options, in.initial,
                              in.grad_final, Tensor(), Tensor(), Tensor(), only_initial);
    expect_close("grad S_in alone", true_values(only_initial.s, only_initial.log_scale),
                 true_values(grad_initial.s, grad_initial.log_scale), 1e-6);
    expect_close("grad z_in alone", true_values(only_initial.z, only_initial.log_scale),
                 true_values(grad_initial.z, grad_initial.log_scale), 1e-6);
    const LinearAttentionState only_final = empty_state(p, DType::f32, Device::cpu);
    const LinearAttentionState final = empty_state(p, DType::f32, Device::cpu);
    linear_attention_forward(context, in.q, in.k, in.v, options, in.initial, Tensor(), only_final);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
    linear_attention_forward(context, in.q, in.k, in.v, options, in.initial, out, final);
    expect_close("final S alone", only_final.s, final.s, 1e-6);
  }
}

// ---- the reference against finite differences (fp64)

TEST_P(LinearAttentionSplit, ReferenceGradientsMatchFiniteDifferences) {
  for (const bool causal : {true, false}) {
    const LinearParameters p{.batch = 1,
                             .heads = 1,
                             .length = 6,
                             .key_dim = 3,
                             .value_dim = 2,
                             .causal = causal,
                             .scaled = GetParam()};
    const LinearInputs in = linear_inputs(p, DType::f64);
    // Finite differences in S and z are those in the true state at log scale 0.
    LinearAttentionState initial = state_f64(in.initial);
    if (p.scaled) {
      initial.log_scale = tensor_from({0.0}, {1, 1}, DType::f64);
    }
    const LinearAttentionOptions options =
        options_of(p, p.scaled ? as_f64(in.key_log_scale) : Tensor());
    const Tensor out_weights = random_normal_tensor(in.v.shape(), 9, 1, DType::f64);
    const Tensor s_weights = as_f64(in.grad_final.s);
    const Tensor z_weights = as_f64(in.grad_final.z);
    // The loss weighs the true final state; its gradient at log scale 0.
    const Tensor zero_log_scale = p.scaled ? tensor_from({0.0}, {1, 1}, DType::f64) : Tensor();
    const auto loss = [&] {
      const Tensor out = Tensor::empty(in.v.shape(), DType::f64);
      const LinearAttentionState final = empty_state(p, DType::f64, Device::cpu);
      reference::linear_attention_forward(in.q, in.k, in.v, options, initial, out, final);
      return weighted_sum(out, out_weights) +
             weighted_sum(true_values(final.s, final.log_scale), s_weights) +
             weighted_sum(true_values(final.z, final.log_scale), z_weights);
    };
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f64);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f64);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f64);
    const LinearAttentionState grad_initial = empty_state(p, DType::f64, Device::cpu);
    reference::linear_attention_backward(in.q, in.k, in.v, out_weights, options, initial,
                                         {s_weights, z_weights, zero_log_scale}, grad_q, grad_k,
                                         grad_v, grad_initial);
    expect_gradient_matches("grad_q", grad_q, finite_difference_gradient(in.q, loss), 1e-7);
    expect_gradient_matches("grad_k", grad_k, finite_difference_gradient(in.k, loss), 1e-7);
    expect_gradient_matches("grad_v", grad_v, finite_difference_gradient(in.v, loss), 1e-7);
    expect_gradient_matches("grad S_in", grad_initial.s,
                            finite_difference_gradient(initial.s, loss), 1e-7);
    expect_gradient_matches("grad z_in", grad_initial.z,
                            finite_difference_gradient(initial.z, loss), 1e-7);
  }
}

}  // namespace
}  // namespace longseq::test
