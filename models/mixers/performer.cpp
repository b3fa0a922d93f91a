#include "models/mixers/performer.h"

#include <string>

#include "kernels/linear_attention.h"
#include "kernels/performer.h"
#include "models/mixers/mixer_support.h"
#include "parallel/linear_attention_parallel.h"

namespace longseq {

namespace {

class PerformerMixer final : public Mixer {
 public:
  explicit PerformerMixer(const MixerOptions& options) : options_(options) {
    config_.causal = options.causal;
    config_.strategy = state_scan_strategy_of("performer", options.strategy);
    config_.eps = 0.0f;
    config_.feature_map = LinearAttentionFeatureMap::identity;
    require_positive_dims("performer", options);
    require_kv_heads_equal_heads("performer", options);
    LONGSEQ_REQUIRE(options.features >= 1 && options.features <= kLinearAttentionMaxKeyDim,
                    "[performer] features must be 1-{}, got {}", kLinearAttentionMaxKeyDim,
                    options.features);
    LONGSEQ_REQUIRE(options.redraw_interval >= 0,
                    "[performer] redraw interval must not be negative, got {}",
                    options.redraw_interval);
    LONGSEQ_REQUIRE(options.dtype == DType::f32 && options.device == Device::cpu,
                    "[performer] runs in fp32 on the CPU (the state scan uses host buffers)");
  }

  [[nodiscard]] std::string name() const override { return "performer"; }

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
        "over the global sequence per (batch, head), m = {} features: the feature maps 2Nmd for q "
        "and for k (forward; the same again in backward), plus the linear attention products "
        "with Dk = m (chunk C = {}): causal forward 2N(C(m+D) + 2mD), backward 4N(2C(m+D) + 3mD); "
        "non-causal forward 4NmD, backward 12NmD; exponentials and per-shard summaries are not "
        "counted",
        options_.features, kLinearAttentionChunk);
  }

  void set_step(std::int64_t step) override {
    epoch_ = options_.redraw_interval > 0
                 ? static_cast<std::uint64_t>(step / options_.redraw_interval)
                 : 0;
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 3 && outputs.size() == 1,
                  "[performer] takes q, k, v and gives out");
    q_ = inputs[0];
    k_ = inputs[1];
    v_ = inputs[2];
    const Tensor& w = projection();
    features_q_ = features_of(context, q_, w, log_scale_q_);
    features_k_ = features_of(context, k_, w, log_scale_k_);
    DistributedAttentionStats stats;
    distributed_linear_attention_forward(context.compute, context.sequence_group, context.layout,
                                         config_, features_q_, features_k_, v_, log_scale_k_,
                                         outputs[0], &stats);
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 3,
                  "[performer] takes the gradient of out and gives those of q, k, v");
    LONGSEQ_CHECK(q_.defined(), "[performer] backward before forward");
    const Tensor grad_features_q = Tensor::empty(features_q_.shape(), DType::f32);
    const Tensor grad_features_k = Tensor::empty(features_k_.shape(), DType::f32);
    DistributedAttentionStats stats;
    distributed_linear_attention_backward(context.compute, context.sequence_group, context.layout,
                                          config_, features_q_, features_k_, v_, log_scale_k_,
                                          grad_outputs[0], grad_features_q, grad_features_k,
                                          grad_inputs[2], &stats);
    // The projection of forward (set_step between forward and backward does not change it).
    performer_features_backward(context.compute, q_, forward_projection_, features_q_,
                                grad_features_q, grad_inputs[0]);
    performer_features_backward(context.compute, k_, forward_projection_, features_k_,
                                grad_features_k, grad_inputs[1]);
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return feature_flops(length) + linear_attention_forward_flops(shape(length));
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return feature_flops(length) + linear_attention_backward_flops(shape(length));
  }

 private:
  // W of the current epoch, drawn when the epoch changes.
  const Tensor& projection() {
    if (!forward_projection_.defined() || drawn_epoch_ != epoch_) {
      forward_projection_ = performer_projection({.features = options_.features,
                                                  .head_dim = options_.head_dim,
                                                  .orthogonal = true,
                                                  .seed = options_.seed,
                                                  .epoch = epoch_});
      drawn_epoch_ = epoch_;
    }
    return forward_projection_;
  }

  // phi~(x) (B, H, S, m); log_scale receives s(x) (B, H, S).
  Tensor features_of(ShardContext& context, const Tensor& x, const Tensor& w,
                     Tensor& log_scale) const {
    const Tensor features =
        Tensor::empty({x.size(0), x.size(1), x.size(2), options_.features}, DType::f32);
    log_scale = Tensor::empty({x.size(0), x.size(1), x.size(2)}, DType::f32);
    performer_features_forward(context.compute, x, w, features, log_scale);
    return features;
  }

  [[nodiscard]] LinearAttentionShape shape(std::int64_t length) const {
    LinearAttentionShape shape{options_.batch,    options_.heads,  length, options_.features,
                               options_.head_dim, options_.causal, 0.0f};
    shape.feature_map = LinearAttentionFeatureMap::identity;
    shape.key_log_scale = true;
    return shape;
  }

  [[nodiscard]] double feature_flops(std::int64_t length) const {
    return 2.0 * performer_features_flops(options_.batch * options_.heads * length,
                                          options_.features, options_.head_dim);
  }

  MixerOptions options_;
  LinearAttentionParallelConfig config_;
  MixerStats stats_;
  std::uint64_t epoch_ = 0;
  std::uint64_t drawn_epoch_ = 0;
  Tensor forward_projection_;  // W (m, D) of the epoch drawn last
  // Saved by forward for backward: this rank's shards and their features.
  Tensor q_, k_, v_;
  Tensor features_q_, features_k_, log_scale_q_, log_scale_k_;
};

}  // namespace

std::unique_ptr<Mixer> make_performer_mixer(const MixerOptions& options) {
  return std::make_unique<PerformerMixer>(options);
}

}  // namespace longseq
