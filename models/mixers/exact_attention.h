// The exact softmax attention mixers: `flash` (tiled, online softmax) and `softmax` (materialised
// scores, the memory baseline). Inputs q (B, H, N, D), k, v (B, Hkv, N, D); output out
// (B, H, N, D). Distributed by the strategy of MixerOptions (parallel/distributed_attention.h).
#pragma once

#include <memory>

#include "models/mixer.h"
#include "parallel/distributed_attention.h"

namespace longseq {

std::unique_ptr<Mixer> make_exact_attention_mixer(AttentionKernel kernel,
                                                  const MixerOptions& options);

}  // namespace longseq
