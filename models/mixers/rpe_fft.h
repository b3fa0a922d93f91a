// The `rpe_fft` mixer: kernelized attention with relative-position weights applied by FFT
// (kernels/rpe_attention.h; distributed as a ring of key blocks,
// parallel/rpe_attention_parallel.h). Inputs q, k, v (B, H, N, D); output out (B, H, N, D); one
// learned parameter b (H, 2N - 1), the log-weights of the relative offsets, which depends on the
// global length N.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_rpe_fft_mixer(const MixerOptions& options);

}  // namespace longseq
