// The `s4` mixer: S4 (DPLR state-space layer).
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_s4_mixer(const MixerOptions& options);

}  // namespace longseq
