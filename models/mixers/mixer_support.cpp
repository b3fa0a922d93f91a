#include "models/mixers/mixer_support.h"

#include "runtime/error.h"

namespace longseq {

StateScanStrategy state_scan_strategy_of(std::string_view mixer, const std::string& strategy) {
  if (strategy.empty() || strategy == "ring") {
    return StateScanStrategy::chain;
  }
  try {
    return parse_state_scan(strategy);
  } catch (const UserError&) {
    throw UserError(
        LONGSEQ_FORMAT("[{}] unknown strategy '{}' (expected chain or allgather; ring means chain)",
                       mixer, strategy));
  }
}

std::vector<std::string> state_scan_strategy_names() {
  return {std::string(state_scan_name(StateScanStrategy::chain)),
          std::string(state_scan_name(StateScanStrategy::all_gather))};
}

void require_positive_dims(std::string_view mixer, const MixerOptions& options) {
  LONGSEQ_REQUIRE(options.batch > 0 && options.heads > 0 && options.head_dim > 0,
                  "[{}] batch ({}), heads ({}) and head dim ({}) must be positive", mixer,
                  options.batch, options.heads, options.head_dim);
}

void require_kv_heads_equal_heads(std::string_view mixer, const MixerOptions& options) {
  LONGSEQ_REQUIRE(options.kv_heads == 0 || options.kv_heads == options.heads,
                  "[{}] takes as many key/value heads as heads ({}), got {}", mixer, options.heads,
                  options.kv_heads);
}

std::int64_t key_value_heads(const MixerOptions& options) {
  return options.kv_heads > 0 ? options.kv_heads : options.heads;
}

std::vector<TensorSpec> attention_input_specs(const MixerOptions& options, std::int64_t length) {
  const Shape q_shape{options.batch, options.heads, length, options.head_dim};
  const Shape kv_shape{options.batch, key_value_heads(options), length, options.head_dim};
  return {{"q", q_shape, 2, options.dtype},
          {"k", kv_shape, 2, options.dtype},
          {"v", kv_shape, 2, options.dtype}};
}

std::vector<TensorSpec> attention_output_specs(const MixerOptions& options, std::int64_t length) {
  return {{"out", {options.batch, options.heads, length, options.head_dim}, 2, options.dtype}};
}

MixerStats mixer_stats_of(const DistributedAttentionStats& stats, double flops) {
  MixerStats result;
  result.flops = flops;
  result.bytes_sent = stats.bytes_sent;
  result.compute_seconds = stats.compute_seconds;
  result.communication_seconds = stats.communication_seconds;
  result.exposed_communication_seconds = stats.exposed_communication_seconds;
  return result;
}

}  // namespace longseq
