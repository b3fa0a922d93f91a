// The `performer` mixer: Performer (FAVOR+) attention (MECHANISMS.md section 5). Inputs q, k, v
// (B, H, N, D); output out (B, H, N, D); no learned parameters. q and k go through the positive
// random features of kernels/performer.h (m = MixerOptions::features, orthogonal blocks drawn from
// MixerOptions::seed and the redraw epoch step / redraw_interval), then through linear attention
// with the identity feature map, eps = 0 and the keys' log scales (kernels/linear_attention.h), so
// the mixer is exactly causal and equal for every layout and rank count. Distributed like `linear`
// (parallel/linear_attention_parallel.h), strategy "chain" (default; "ring" means it) or
// "allgather"; the features are computed locally on each shard, token by token.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_performer_mixer(const MixerOptions& options);

}  // namespace longseq
