// A diagonal state-space layer (kernels/diagonal_ssm.h) over a sequence sharded across the ranks
// of a communicator: FFT convolution inside each chunk of consecutive positions, the complex state
// carried across chunks by an affine exclusive scan (parallel/state_scan.h): chunk c ends in
// x_c = Abar^(L_c) x_{c-1} + x_local,c. Results equal the single-rank layer up to floating-point
// reassociation for every layout and rank count (striped through the contiguous layout).
// Always causal (a recurrence). Padding positions get zero output and gradients.
#pragma once

#include "kernels/diagonal_ssm.h"
#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "parallel/state_scan.h"
#include "runtime/context.h"

namespace longseq {

struct DiagonalSsmParallelConfig {
  DiagonalSsmKind kind = DiagonalSsmKind::s4d;
  StateScanStrategy strategy = StateScanStrategy::chain;
};

// u, y: this rank's shards (B, H, S) fp32 CPU, S = layout.shard_length().
void distributed_diagonal_ssm_forward(ComputeContext& context, Communicator& communicator,
                                      const SequenceLayout& layout,
                                      const DiagonalSsmParallelConfig& config,
                                      const DiagonalSsmParameters& parameters, const Tensor& u,
                                      const Tensor& y, DistributedAttentionStats* stats = nullptr);

// grad_u (B, H, S) is overwritten; grad_parameters (shapes of `parameters`) are overwritten with
// dL/d parameters over the whole sequence, summed across the communicator (the same on every rank).
void distributed_diagonal_ssm_backward(ComputeContext& context, Communicator& communicator,
                                       const SequenceLayout& layout,
                                       const DiagonalSsmParallelConfig& config,
                                       const DiagonalSsmParameters& parameters, const Tensor& u,
                                       const Tensor& grad_y, const Tensor& grad_u,
                                       const DiagonalSsmParameters& grad_parameters,
                                       DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
