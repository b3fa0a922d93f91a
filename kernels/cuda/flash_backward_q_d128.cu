// Instantiations of launch_flash_backward_q for head dims padded to 128 (bf16, fp16).
#include "kernels/cuda/flash_attention_kernels.cuh"

namespace longseq::cuda {

template void launch_flash_backward_q<__nv_bfloat16, 128>(const FlashParams&, cudaStream_t);
template void launch_flash_backward_q<__half, 128>(const FlashParams&, cudaStream_t);

}  // namespace longseq::cuda
