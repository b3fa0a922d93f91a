// S4 (kernels/s4.h) over a sequence sharded across the ranks of a communicator: the FFT
// convolution inside each chunk of consecutive positions, the complex state carried across chunks
// by an affine exclusive scan (parallel/state_scan.h): chunk c ends in
// x_c = Abar^(L_c) x_{c-1} + x_local,c. A scan element is the flat fp32 buffer
// [L, x (B, H, M, 2)]: Abar^L depends only on L, so the length stands for the matrix and each rank
// forms the power it needs (repeated squaring of the dense N x N Abar, O(N^3 log L) per channel).
// Each chunk adds the response 2 Re(C Abar^(l+1) x_in) of its incoming state by the DPLR
// recurrence (O(L M) per row). Backward: the gradient each chunk's incoming state receives from
// its own outputs is scanned in reverse (g_out <- (Abar^T)^L g_out + g_local), then every chunk
// runs the backward of its piece from (x_in, g_out); parameter gradients are summed over chunks
// and all-reduced. Striped layouts go through the contiguous one. Always causal. Padding
// positions contribute nothing and get zero output and gradients.
#pragma once

#include "kernels/s4.h"
#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "parallel/state_scan.h"
#include "runtime/context.h"

namespace longseq {

struct S4ParallelConfig {
  StateScanStrategy strategy = StateScanStrategy::chain;
};

// u, y: this rank's shards (B, H, S) fp32 CPU, S = layout.shard_length().
void distributed_s4_forward(ComputeContext& context, Communicator& communicator,
                            const SequenceLayout& layout, const S4ParallelConfig& config,
                            const S4Parameters& parameters, const Tensor& u, const Tensor& y,
                            DistributedAttentionStats* stats = nullptr);

// grad_u (B, H, S) is overwritten; grad_parameters (shapes of `parameters`) are overwritten with
// dL/d parameters over the whole sequence, summed across the communicator.
void distributed_s4_backward(ComputeContext& context, Communicator& communicator,
                             const SequenceLayout& layout, const S4ParallelConfig& config,
                             const S4Parameters& parameters, const Tensor& u, const Tensor& grad_y,
                             const Tensor& grad_u, const S4Parameters& grad_parameters,
                             DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
