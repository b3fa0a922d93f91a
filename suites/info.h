// `longseq info`: what was built, what this machine has, and the yardsticks measured now.
#pragma once

#include <string>

#include "runtime/context.h"

namespace longseq {

std::string describe_build_and_machine(ComputeContext& context, bool json);

}  // namespace longseq
