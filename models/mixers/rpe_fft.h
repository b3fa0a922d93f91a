// The `rpe_fft` mixer: kernelized attention with relative positions by FFT.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_rpe_fft_mixer(const MixerOptions& options);

}  // namespace longseq
