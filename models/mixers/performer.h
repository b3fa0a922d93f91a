// The `performer` mixer: Performer (FAVOR+) attention.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_performer_mixer(const MixerOptions& options);

}  // namespace longseq
