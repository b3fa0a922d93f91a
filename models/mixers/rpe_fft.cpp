#include "models/mixers/rpe_fft.h"

#include "runtime/error.h"

namespace longseq {

std::unique_ptr<Mixer> make_rpe_fft_mixer(const MixerOptions& /*options*/) {
  throw UserError("[rpe_fft] is not implemented yet");
}

}  // namespace longseq
