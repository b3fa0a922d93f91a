// The `momentum` mixer: Momentum Transformer attention.
#pragma once

#include <memory>

#include "models/mixer.h"

namespace longseq {

std::unique_ptr<Mixer> make_momentum_attention_mixer(const MixerOptions& options);

}  // namespace longseq
