#include "models/mixers/gss.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_gss_mixer(const MixerOptions& /*options*/) {
  throw UserError("[gss] is not implemented yet");
}

}  // namespace longseq
