// Mixers by the name used on the command line and in YAML suites.
//
// How to extend: implement Mixer (models/mixer.h) in models/mixers/<name>.cpp and add one entry
// to the table in models/mixer_registry.cpp. The conformance tests run over every registered
// mixer, so a new mixer is covered by registering it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/mixer.h"

namespace longseq {

// Throws UserError naming the known mixers for an unknown name, or for options the mixer rejects.
std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerOptions& options);
std::vector<std::string> registered_mixers();

}  // namespace longseq
