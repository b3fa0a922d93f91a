#include "models/mixers/s4.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_s4_mixer(const MixerOptions& /*options*/) {
  throw UserError("[s4] is not implemented yet");
}

}  // namespace longseq
