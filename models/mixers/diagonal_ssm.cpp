#include "models/mixers/diagonal_ssm.h"

#include <string>

#include "kernels/diagonal_ssm.h"
#include "models/mixers/mixer_support.h"
#include "parallel/diagonal_ssm_parallel.h"
#include "runtime/error.h"

namespace longseq {

namespace {

const char* kind_name(DiagonalSsmKind kind) { return kind == DiagonalSsmKind::s4d ? "s4d" : "dss"; }

// A diagonal SSM over C = heads * head_dim channels: u (B, C, N) -> y (B, C, N), with its
// parameters (kernels/diagonal_ssm.h) as learned parameters of the mixer.
class DiagonalSsmMixer final : public Mixer {
 public:
  DiagonalSsmMixer(const MixerOptions& options, DiagonalSsmKind kind)
      : options_(options), channels_(options.heads * options.head_dim) {
    const char* name = kind_name(kind);
    config_.kind = kind;
    config_.strategy = state_scan_strategy_of(name, options.strategy);
    LONGSEQ_REQUIRE(options.causal, "[{}] is causal (a recurrence): pass --causal", name);
    require_positive_dims(name, options);
    LONGSEQ_REQUIRE(options.dtype == DType::f32, "[{}] computes in fp32 only, got {}", name,
                    dtype_name(options.dtype));
    LONGSEQ_REQUIRE(options.device == Device::cpu,
                    "[{}] runs on the CPU: its state scan passes host buffers", name);
    parameters_ = kind == DiagonalSsmKind::s4d
                      ? make_s4d_parameters(channels_, options.state_size, options.seed)
                      : make_dss_parameters(channels_, options.state_size, options.seed);
    gradients_ = zeros_like(parameters_);
  }

  [[nodiscard]] std::string name() const override { return kind_name(config_.kind); }

  [[nodiscard]] std::vector<std::string> strategies() const override {
    return state_scan_strategy_names();
  }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return {{"u", {options_.batch, channels_, length}, 2, DType::f32}};
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return {{"y", {options_.batch, channels_, length}, 2, DType::f32}};
  }

  [[nodiscard]] std::string flop_convention() const override {
    return "FFT convolution by toeplitz_product (5 L log2 L per complex FFT, real FFTs half) plus "
           "kernel generation 8 L M H (one complex multiply-add per position, mode and channel); "
           "backward twice the transforms plus 16 L M H; over the global sequence, channels H = "
           "heads * head_dim, M modes; the per-shard state summaries and corrections of a "
           "multi-rank run are not counted";
  }

  [[nodiscard]] std::vector<TensorSpec> parameter_specs(
      std::int64_t /*sequence_length*/) const override {
    std::vector<TensorSpec> specs;
    const std::vector<Tensor> tensors = parameters();
    const char* names[] = {"log_dt", "lambda", "b", "c", "d"};
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      specs.push_back({names[i], tensors[i].shape(), -1, DType::f32});
    }
    return specs;
  }

  [[nodiscard]] std::vector<Tensor> parameters() const override { return list(parameters_); }
  [[nodiscard]] std::vector<Tensor> parameter_gradients() const override {
    return list(gradients_);
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 1 && outputs.size() == 1, "[{}] takes u and gives y", name());
    u_ = inputs[0];
    DistributedAttentionStats stats;
    distributed_diagonal_ssm_forward(context.compute, context.sequence_group, context.layout,
                                     config_, parameters_, u_, outputs[0], &stats);
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 1,
                  "[{}] takes the gradient of y and gives that of u", name());
    LONGSEQ_CHECK(u_.defined(), "[{}] backward before forward", name());
    DistributedAttentionStats stats;
    distributed_diagonal_ssm_backward(context.compute, context.sequence_group, context.layout,
                                      config_, parameters_, u_, grad_outputs[0], grad_inputs[0],
                                      gradients_, &stats);
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return diagonal_ssm_forward_flops(options_.batch, channels_, length, modes(), false, false);
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return diagonal_ssm_backward_flops(options_.batch, channels_, length, modes(), false, false);
  }

 private:
  static std::vector<Tensor> list(const DiagonalSsmParameters& p) {
    return {p.log_dt, p.lambda, p.b, p.c, p.d};
  }

  [[nodiscard]] std::int64_t modes() const { return parameters_.b.size(1); }

  MixerOptions options_;
  std::int64_t channels_;
  DiagonalSsmParallelConfig config_;
  DiagonalSsmParameters parameters_;
  DiagonalSsmParameters gradients_;
  MixerStats stats_;
  Tensor u_;  // saved by forward for backward: this rank's shard
};

}  // namespace

std::unique_ptr<Mixer> make_s4d_mixer(const MixerOptions& options) {
  return std::make_unique<DiagonalSsmMixer>(options, DiagonalSsmKind::s4d);
}

std::unique_ptr<Mixer> make_dss_mixer(const MixerOptions& options) {
  return std::make_unique<DiagonalSsmMixer>(options, DiagonalSsmKind::dss);
}

}  // namespace longseq
