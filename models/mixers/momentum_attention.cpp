#include "models/mixers/momentum_attention.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_momentum_attention_mixer(const MixerOptions& /*options*/) {
  throw UserError("[momentum] is not implemented yet");
}

}  // namespace longseq
