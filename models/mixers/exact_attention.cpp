#include "models/mixers/exact_attention.h"

#include <string>

#include "models/mixers/mixer_support.h"

namespace longseq {

namespace {

class ExactAttentionMixer final : public Mixer {
 public:
  ExactAttentionMixer(AttentionKernel kernel, const MixerOptions& options)
      : options_(options), kv_heads_(key_value_heads(options)) {
    config_.kernel = kernel;
    config_.causal = options.causal;
    config_.strategy = parse_strategy(options.strategy);
    LONGSEQ_REQUIRE(options.heads > 0 && kv_heads_ > 0 && options.heads % kv_heads_ == 0,
                    "[{}] heads ({}) must be a positive multiple of kv heads ({})", name(),
                    options.heads, kv_heads_);
    LONGSEQ_REQUIRE(options.batch > 0 && options.head_dim > 0,
                    "[{}] batch ({}) and head dim ({}) must be positive", name(), options.batch,
                    options.head_dim);
  }

  [[nodiscard]] std::string name() const override {
    return config_.kernel == AttentionKernel::flash ? "flash" : "softmax";
  }

  [[nodiscard]] std::vector<std::string> strategies() const override {
    std::vector<std::string> names;
    for (const AttentionStrategy strategy :
         {AttentionStrategy::ring, AttentionStrategy::all_to_all, AttentionStrategy::all_gather}) {
      names.emplace_back(strategy_name(strategy));
    }
    return names;
  }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return attention_input_specs(options_, length);
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return attention_output_specs(options_, length);
  }

  [[nodiscard]] std::string flop_convention() const override {
    return "attention forward 4*N^2*D FLOPs per (batch, head) over the global sequence, halved "
           "when "
           "causal; backward 2.5x forward";
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 3 && outputs.size() == 1, "[{}] takes q, k, v and gives out",
                  name());
    q_ = inputs[0];
    k_ = inputs[1];
    v_ = inputs[2];
    out_ = outputs[0];
    lse_ = Tensor::empty({options_.batch, options_.heads, context.layout.shard_length()},
                         DType::f32, q_.device());
    DistributedAttentionStats stats;
    distributed_attention_forward(context.compute, context.sequence_group, context.layout, config_,
                                  q_, k_, v_, out_, lse_, &stats);
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 3,
                  "[{}] takes the gradient of out and gives those of q, k, v", name());
    LONGSEQ_CHECK(lse_.defined(), "[{}] backward before forward", name());
    DistributedAttentionStats stats;
    distributed_attention_backward(context.compute, context.sequence_group, context.layout, config_,
                                   q_, k_, v_, out_, lse_, grad_outputs[0], grad_inputs[0],
                                   grad_inputs[1], grad_inputs[2], &stats);
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  // The whole problem's FLOPs, not a rank's share, so that GFLOP/s over the slowest rank's time is
  // the job's throughput.
  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    const double dense = 4.0 * static_cast<double>(length) * static_cast<double>(length) *
                         static_cast<double>(options_.head_dim) *
                         static_cast<double>(options_.batch * options_.heads);
    return options_.causal ? dense / 2.0 : dense;
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return 2.5 * forward_flops(length);
  }

 private:
  MixerOptions options_;
  std::int64_t kv_heads_;
  DistributedAttentionConfig config_;
  MixerStats stats_;
  // Saved by forward for backward: this rank's shards.
  Tensor q_, k_, v_, out_, lse_;
};

}  // namespace

std::unique_ptr<Mixer> make_exact_attention_mixer(AttentionKernel kernel,
                                                  const MixerOptions& options) {
  return std::make_unique<ExactAttentionMixer>(kernel, options);
}

}  // namespace longseq
