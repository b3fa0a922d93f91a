// The `gss` mixer: the gated state space block.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_gss_mixer(const MixerOptions& options);

}  // namespace longseq
