#include "models/mixers/diagonal_ssm.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_s4d_mixer(const MixerOptions& /*options*/) {
  throw UserError("[s4d] is not implemented yet");
}

std::unique_ptr<Mixer> make_dss_mixer(const MixerOptions& /*options*/) {
  throw UserError("[dss] is not implemented yet");
}

}  // namespace longseq
