// The operating system's view of this process's memory (resident set), which also counts what
// libraries allocate behind the tracked allocator.
#pragma once

#include <cstdint>

namespace longseq {

struct ResidentMemory {
  std::int64_t current_bytes = 0;  // VmRSS
  std::int64_t peak_bytes = 0;     // VmHWM: high-water mark since start or the last reset
};

ResidentMemory resident_memory();
// Resets the high-water mark to the current resident size (Linux clear_refs); returns false when
// the kernel does not allow it, in which case the peak stays the peak since process start.
bool reset_resident_peak();

}  // namespace longseq
