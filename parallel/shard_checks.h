// The argument checks the distributed mixers share: they exchange host buffers, so the sequence
// group must pass them and the shards must be contiguous fp32 CPU tensors. `op` names the
// distributed operation in the messages ("[distributed_linear_attention] ...").
#pragma once

#include <initializer_list>

#include "parallel/communicator.h"
#include "parallel/sequence_layout.h"
#include "runtime/tensor.h"

namespace longseq {

// Requires `layout` to be for as many ranks as `communicator` has, and the communicator to pass
// host buffers.
void require_host_sequence_group(const char* op, const Communicator& communicator,
                                 const SequenceLayout& layout);

// Whether `tensor` is a contiguous fp32 CPU shard of `rank` dimensions with layout.shard_length()
// positions at dimension 2.
bool is_cpu_shard(const Tensor& tensor, int rank, const SequenceLayout& layout);

// Requires q, k and v to be contiguous fp32 CPU shards (B, H, shard length, D).
void require_qkv_cpu_shards(const char* op, const SequenceLayout& layout,
                            std::initializer_list<const Tensor*> qkv);

}  // namespace longseq
