#include "models/mixers/momentum_attention.h"

#include <string>

#include "kernels/momentum_attention.h"
#include "models/mixers/mixer_support.h"
#include "parallel/momentum_attention_parallel.h"

namespace longseq {

namespace {

class MomentumAttentionMixer final : public Mixer {
 public:
  explicit MomentumAttentionMixer(const MixerOptions& options) : options_(options) {
    LONGSEQ_REQUIRE(options.causal,
                    "[momentum] is causal (momentum accumulates along the sequence); use --causal");
    require_positive_dims("momentum", options);
    require_kv_heads_equal_heads("momentum", options);
    LONGSEQ_REQUIRE(options.momentum >= 0.0 && options.momentum < 1.0,
                    "[momentum] momentum mu must be in [0, 1), got {}", options.momentum);
    config_.strategy = state_scan_strategy_of("momentum", options.strategy);
    config_.momentum = static_cast<float>(options.momentum);
    config_.step = static_cast<float>(options.momentum_step);
  }

  [[nodiscard]] std::string name() const override { return "momentum"; }

  [[nodiscard]] std::vector<std::string> strategies() const override {
    return state_scan_strategy_names();
  }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return attention_input_specs(options_, length);
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return attention_output_specs(options_, length);
  }

  [[nodiscard]] std::string flop_convention() const override {
    return LONGSEQ_FORMAT(
        "matrix products of the chunked algorithm (chunk C = {}), 2mnk each, over the global "
        "sequence per (batch, head): forward 2N(C(Dk+Dv) + 4DkDv), backward "
        "4N(2C(Dk+Dv) + 6DkDv); the per-shard summaries of a multi-rank run are not counted",
        kMomentumAttentionChunk);
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 3 && outputs.size() == 1,
                  "[momentum] takes q, k, v and gives out");
    q_ = inputs[0];
    k_ = inputs[1];
    v_ = inputs[2];
    DistributedAttentionStats stats;
    distributed_momentum_attention_forward(context.compute, context.sequence_group, context.layout,
                                           config_, q_, k_, v_, outputs[0], &stats);
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 3,
                  "[momentum] takes the gradient of out and gives those of q, k, v");
    LONGSEQ_CHECK(q_.defined(), "[momentum] backward before forward");
    DistributedAttentionStats stats;
    distributed_momentum_attention_backward(context.compute, context.sequence_group, context.layout,
                                            config_, q_, k_, v_, grad_outputs[0], grad_inputs[0],
                                            grad_inputs[1], grad_inputs[2], &stats);
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return momentum_attention_forward_flops(shape(length));
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return momentum_attention_backward_flops(shape(length));
  }

 private:
  [[nodiscard]] MomentumAttentionShape shape(std::int64_t length) const {
    return {options_.batch,    options_.heads,   length,       options_.head_dim,
            options_.head_dim, config_.momentum, config_.step, config_.eps};
  }

  MixerOptions options_;
  MomentumAttentionParallelConfig config_;
  MixerStats stats_;
  // Saved by forward for backward: this rank's shards (the incoming states are recomputed).
  Tensor q_, k_, v_;
};

}  // namespace

std::unique_ptr<Mixer> make_momentum_attention_mixer(const MixerOptions& options) {
  return std::make_unique<MomentumAttentionMixer>(options);
}

}  // namespace longseq
