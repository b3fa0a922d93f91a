// Instantiations of launch_flash_backward_kv for head dims padded to 256 (bf16, fp16).
#include "kernels/cuda/flash_attention_kernels.cuh"

namespace longseq::cuda {

template void launch_flash_backward_kv<__nv_bfloat16, 256>(const FlashParams&, cudaStream_t);
template void launch_flash_backward_kv<__half, 256>(const FlashParams&, cudaStream_t);

}  // namespace longseq::cuda
