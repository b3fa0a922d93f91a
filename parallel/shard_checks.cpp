#include "parallel/shard_checks.h"

#include "runtime/error.h"

namespace longseq {

void require_host_sequence_group(const char* op, const Communicator& communicator,
                                 const SequenceLayout& layout) {
  LONGSEQ_REQUIRE(layout.ranks() == communicator.size(),
                  "[{}] the {} layout is for {} ranks but the communicator has {}", op,
                  layout_name(layout.kind()), layout.ranks(), communicator.size());
  LONGSEQ_REQUIRE(communicator.device() == Device::cpu,
                  "[{}] the {} backend is not supported yet (host buffers only)", op,
                  communicator.backend());
}

bool is_cpu_shard(const Tensor& tensor, int rank, const SequenceLayout& layout) {
  return tensor.rank() == rank && tensor.size(2) == layout.shard_length() &&
         tensor.dtype() == DType::f32 && tensor.device() == Device::cpu && tensor.is_contiguous();
}

void require_qkv_cpu_shards(const char* op, const SequenceLayout& layout,
                            std::initializer_list<const Tensor*> qkv) {
  for (const Tensor* tensor : qkv) {
    LONGSEQ_REQUIRE(is_cpu_shard(*tensor, 4, layout),
                    "[{}] q, k, v must be contiguous fp32 CPU shards (B, H, {}, D), got {}", op,
                    layout.shard_length(), tensor->describe());
  }
}

}  // namespace longseq
