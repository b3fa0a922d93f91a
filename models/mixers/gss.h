// The `gss` mixer: the Gated State Space block (models/gss_block.h), and with
// MixerOptions::local_chunk > 0 the hybrid, the GSS block followed by a block of chunked local
// causal softmax attention (models/local_attention_block.h) with chunks of local_chunk positions.
//
// Input x (B, N, E) and output out (B, N, E), the sequence at dimension 1, E = heads x head_dim
// (kv_heads is not used). Causal by construction: causal = false is rejected. The DSS state has
// 512 modes (the paper's) unless MixerOptions::state_size is set to something other than its
// default of 64, which is then used instead. Strategies: the state scan of the DSS layer, "chain"
// (default; "ring" means chain) or "allgather". fp32 on the CPU.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_gss_mixer(const MixerOptions& options);

}  // namespace longseq
