// The `s4d` and `dss` mixers: diagonal state-space layers (kernels/diagonal_ssm.h).
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_s4d_mixer(const MixerOptions& options);
std::unique_ptr<Mixer> make_dss_mixer(const MixerOptions& options);

}  // namespace longseq
