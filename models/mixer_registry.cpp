#include "models/mixer_registry.h"

#include <fmt/format.h>

#include "models/mixers/diagonal_ssm.h"
#include "models/mixers/exact_attention.h"
#include "models/mixers/gss.h"
#include "models/mixers/linear_attention.h"
#include "models/mixers/momentum_attention.h"
#include "models/mixers/performer.h"
#include "models/mixers/rpe_fft.h"
#include "models/mixers/s4.h"

namespace longseq {

namespace {

struct MixerEntry {
  const char* name;
  std::unique_ptr<Mixer> (*make)(const MixerOptions&);
};

// How to extend: one row per mixer.
constexpr MixerEntry kMixers[] = {
    {"softmax",
     [](const MixerOptions& options) {
       return make_exact_attention_mixer(AttentionKernel::softmax, options);
     }},
    {"flash",
     [](const MixerOptions& options) {
       return make_exact_attention_mixer(AttentionKernel::flash, options);
     }},
    {"linear", make_linear_attention_mixer},
    {"performer", make_performer_mixer},
    {"momentum", make_momentum_attention_mixer},
    {"rpe_fft", make_rpe_fft_mixer},
    {"s4", make_s4_mixer},
    {"s4d", make_s4d_mixer},
    {"dss", make_dss_mixer},
    {"gss", make_gss_mixer},
};

}  // namespace

std::vector<std::string> registered_mixers() {
  std::vector<std::string> names;
  for (const MixerEntry& entry : kMixers) {
    names.emplace_back(entry.name);
  }
  return names;
}

std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerOptions& options) {
  for (const MixerEntry& entry : kMixers) {
    if (name == entry.name) {
      return entry.make(options);
    }
  }
  throw UserError(
      fmt::format("unknown mixer '{}' (known: {})", name, fmt::join(registered_mixers(), ", ")));
}

}  // namespace longseq
