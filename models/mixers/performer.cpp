#include "models/mixers/performer.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_performer_mixer(const MixerOptions& /*options*/) {
  throw UserError("[performer] is not implemented yet");
}

}  // namespace longseq
