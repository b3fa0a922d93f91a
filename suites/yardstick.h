// The yardsticks every throughput figure is a ratio to, measured in the same process as the
// figure: OpenBLAS sgemm on the CPU, cuBLAS GEMM (in the benchmark's dtype) on the GPU.
#pragma once

#include "parallel/communicator.h"
#include "runtime/context.h"
#include "runtime/device.h"
#include "runtime/dtype.h"

namespace longseq {

struct Yardstick {
  double gflops = 0;
  // "OpenBLAS sgemm n=2048" or "cuBLAS bf16 GEMM n=8192".
  const char* name = "";
  int n = 0;
};

// Square GEMM of size n (2 n^3 FLOPs), median of `reps` timed runs after one warm-up.
Yardstick measure_yardstick(ComputeContext& context, Device device, DType dtype, int n = 0,
                            int reps = 5);

// The yardstick of a multi-rank measurement: rank 0 alone measures it (the other ranks wait, so
// that P ranks on one machine do not contend for its cores) and every rank receives it.
Yardstick measure_shared_yardstick(ComputeContext& context, Communicator& world, Device device,
                                   DType dtype);

}  // namespace longseq
