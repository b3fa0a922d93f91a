// What the mixers of models/mixers/ share: their option checks, the parsing of a state-passing
// mixer's strategy, the q, k, v -> out specs of an attention-shaped mixer, and MixerStats from the
// stats of a distributed call. `mixer` is the registered name, which every error message leads
// with ("[linear] ...").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/mixer.h"
#include "parallel/distributed_attention.h"
#include "parallel/state_scan.h"

namespace longseq {

// MixerOptions::strategy of a mixer that passes a recurrent state: "chain" or "allgather"; empty
// and "ring" (MixerOptions' generic default, which names no state-passing strategy) mean chain,
// so `longseq bench <mixer>` works without --strategy. Anything else: UserError naming `mixer`.
StateScanStrategy state_scan_strategy_of(std::string_view mixer, const std::string& strategy);

// The strategy names such a mixer offers (Mixer::strategies): chain, allgather.
std::vector<std::string> state_scan_strategy_names();

// Requires batch, heads and head_dim to be positive.
void require_positive_dims(std::string_view mixer, const MixerOptions& options);

// Requires kv_heads to be 0 or heads: for mixers without grouped key/value heads.
void require_kv_heads_equal_heads(std::string_view mixer, const MixerOptions& options);

// The key/value heads of the options: kv_heads, or heads where kv_heads is 0.
std::int64_t key_value_heads(const MixerOptions& options);

// q (B, H, N, D), k and v (B, Hkv, N, D), Hkv = key_value_heads(options), sequence dim 2.
std::vector<TensorSpec> attention_input_specs(const MixerOptions& options, std::int64_t length);

// out (B, H, N, D), sequence dim 2.
std::vector<TensorSpec> attention_output_specs(const MixerOptions& options, std::int64_t length);

// The stats of one distributed forward or backward call that did `flops` FLOPs.
MixerStats mixer_stats_of(const DistributedAttentionStats& stats, double flops);

}  // namespace longseq
