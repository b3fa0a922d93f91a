#include "models/mixers/s4.h"

#include <string>

#include "kernels/s4.h"
#include "models/mixers/mixer_support.h"
#include "parallel/s4_parallel.h"

namespace longseq {

namespace {

// u (B, C, N) -> y (B, C, N) with C = heads * head_dim independent channels.
class S4Mixer final : public Mixer {
 public:
  explicit S4Mixer(const MixerOptions& options)
      : options_(options), channels_(options.heads * options.head_dim) {
    LONGSEQ_REQUIRE(options.causal, "[s4] is causal (a recurrence): pass --causal");
    LONGSEQ_REQUIRE(options.batch > 0 && channels_ > 0,
                    "[s4] batch ({}) and heads x head dim ({}) must be positive", options.batch,
                    channels_);
    LONGSEQ_REQUIRE(options.device == Device::cpu && options.dtype == DType::f32,
                    "[s4] runs fp32 on the CPU for now (the CUDA path computes only the kernel)");
    config_.strategy = state_scan_strategy_of("s4", options.strategy);
    parameters_ = make_s4_parameters(channels_, options.state_size, options.seed);
    gradients_ = zeros_like(parameters_);
  }

  [[nodiscard]] std::string name() const override { return "s4"; }

  [[nodiscard]] std::vector<std::string> strategies() const override {
    return state_scan_strategy_names();
  }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return {{"u", {options_.batch, channels_, length}, 2, options_.dtype}};
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return {{"y", {options_.batch, channels_, length}, 2, options_.dtype}};
  }

  [[nodiscard]] std::vector<TensorSpec> parameter_specs(std::int64_t /*length*/) const override {
    const std::int64_t modes = options_.state_size / 2;
    const Shape complex{channels_, modes, 2};
    return {{"log_dt", {channels_}, -1}, {"lambda", complex, -1}, {"p", complex, -1},
            {"b", complex, -1},          {"c", complex, -1},      {"d", {channels_}, -1}};
  }
  [[nodiscard]] std::vector<Tensor> parameters() const override { return parameters_.list(); }
  [[nodiscard]] std::vector<Tensor> parameter_gradients() const override {
    return gradients_.list();
  }

  [[nodiscard]] std::string flop_convention() const override {
    return "per (batch, channel) over the global sequence N with M = state_size/2 modes: forward "
           "= the kernel (2 (N/2+1) M Cauchy terms x 40 flops + 2.5 N log2 N, once per channel) "
           "+ the Toeplitz product by FFT (kernels/toeplitz.h convention) + 2N for D u; backward "
           "= the DPLR recurrence and its adjoint (48 M per position) + the rank-1 gradient of "
           "Abar (4 (2M)^2 per position); the chunk summaries and state responses of a "
           "multi-rank run are not counted";
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 1 && outputs.size() == 1, "[s4] takes u and gives y");
    u_ = inputs[0];
    DistributedAttentionStats stats;
    distributed_s4_forward(context.compute, context.sequence_group, context.layout, config_,
                           parameters_, u_, outputs[0], &stats);
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 1,
                  "[s4] takes the gradient of y and gives that of u");
    LONGSEQ_CHECK(u_.defined(), "[s4] backward before forward");
    DistributedAttentionStats stats;
    distributed_s4_backward(context.compute, context.sequence_group, context.layout, config_,
                            parameters_, u_, grad_outputs[0], grad_inputs[0], gradients_, &stats);
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return s4_forward_flops(options_.batch, channels_, length, options_.state_size / 2);
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return s4_backward_flops(options_.batch, channels_, length, options_.state_size / 2);
  }

 private:
  MixerOptions options_;
  std::int64_t channels_;
  S4ParallelConfig config_;
  S4Parameters parameters_;
  S4Parameters gradients_;
  MixerStats stats_;
  Tensor u_;  // saved by forward: this rank's shard (incoming states are recomputed)
};

}  // namespace

std::unique_ptr<Mixer> make_s4_mixer(const MixerOptions& options) {
  return std::make_unique<S4Mixer>(options);
}

}  // namespace longseq
