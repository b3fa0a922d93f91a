// The `momentum` mixer: Momentum Transformer attention (kernels/momentum_attention.h) with
// momentum mu = MixerOptions::momentum and step gamma = MixerOptions::momentum_step. Inputs q, k, v
// (B, H, N, D); output out (B, H, N, D). Causal only (momentum accumulates along the sequence): a
// non-causal configuration is rejected. Distributed by recurrent state handoff of (C, D, z)
// (parallel/momentum_attention_parallel.h) with MixerOptions::strategy "chain" (the default) or
// "allgather"; the generic default "ring" means the default here.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_momentum_attention_mixer(const MixerOptions& options);

}  // namespace longseq
