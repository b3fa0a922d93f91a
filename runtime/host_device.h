// Marks math shared by the CPU and CUDA implementations, so that the CPU tests exercise it too.
#pragma once

#if defined(__CUDACC__)
#define LONGSEQ_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LONGSEQ_HOST_DEVICE inline
#endif
