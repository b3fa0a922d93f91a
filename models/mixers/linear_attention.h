// The `linear` mixer: linear attention with the elu + 1 feature map (kernels/linear_attention.h).
// Inputs q, k, v (B, H, N, D); output out (B, H, N, D). Distributed by recurrent state handoff
// (parallel/linear_attention_parallel.h) with MixerOptions::strategy "chain" (the default) or
// "allgather"; the generic default "ring" of MixerOptions, which names no state-passing strategy,
// means the default here, so `longseq bench linear` works without --strategy.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_linear_attention_mixer(const MixerOptions& options);

}  // namespace longseq
