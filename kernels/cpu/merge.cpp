// Log-sum-exp merge of partial attention results on the CPU (kernels/merge.h): rows are
// independent, so rows are split statically among the threads; within a row every partial is read
// before the output is written, so `out` may be one of the partials.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/softmax_math.h"

namespace longseq::cpu {

namespace {

// log sum_s exp(lses[s][row]), -inf when every partial is empty.
float merged_lse(const std::vector<const float*>& lses, std::int64_t row) {
  float high = negative_infinity();
  for (const float* part : lses) {
    high = std::max(high, part[row]);
  }
  if (high == negative_infinity()) {
    return high;
  }
  float sum = 0.0f;
  for (const float* part : lses) {
    sum += exp_shifted(part[row], high);
  }
  return finish_lse(high, sum);
}

template <typename Pointer>
std::vector<Pointer> float_pointers(std::span<const Tensor> tensors) {
  std::vector<Pointer> pointers;
  pointers.reserve(tensors.size());
  for (const Tensor& tensor : tensors) {
    pointers.push_back(tensor.data<float>());
  }
  return pointers;
}

}  // namespace

void merge_attention_forward(ComputeContext& context, std::span<const Tensor> outs,
                             std::span<const Tensor> lses, const Tensor& out, const Tensor& lse) {
  const std::vector<const float*> part_outs = float_pointers<const float*>(outs);
  const std::vector<const float*> part_lses = float_pointers<const float*>(lses);
  float* out_data = out.data<float>();
  float* lse_data = lse.data<float>();
  const std::int64_t rows = lse.numel();
  const std::int64_t head_dim = out.size(-1);
  const std::size_t parts = part_outs.size();

#pragma omp parallel num_threads(context.cpu_threads())
  {
    std::vector<float> weights(parts);
#pragma omp for schedule(static)
    for (std::int64_t row = 0; row < rows; ++row) {
      const float total = merged_lse(part_lses, row);
      for (std::size_t s = 0; s < parts; ++s) {
        // An empty row gets weight 0 from every partial and stays 0.
        weights[s] = total == negative_infinity() ? 0.0f : merge_weight(part_lses[s][row], total);
      }
      for (std::int64_t d = 0; d < head_dim; ++d) {
        const std::int64_t at = row * head_dim + d;
        float sum = 0.0f;
        for (std::size_t s = 0; s < parts; ++s) {
          // Skipping empty partials keeps a stray non-finite value in them from leaking in.
          sum += weights[s] == 0.0f ? 0.0f : weights[s] * part_outs[s][at];
        }
        out_data[at] = sum;
      }
      lse_data[row] = total;
    }
  }
}

void merge_attention_backward(ComputeContext& context, const Tensor& grad_out,
                              const Tensor& grad_lse, std::span<const Tensor> outs,
                              std::span<const Tensor> lses, const Tensor& out, const Tensor& lse,
                              std::span<const Tensor> grad_outs,
                              std::span<const Tensor> grad_lses) {
  const std::vector<const float*> part_outs = float_pointers<const float*>(outs);
  const std::vector<const float*> part_lses = float_pointers<const float*>(lses);
  const std::vector<float*> part_grad_outs = float_pointers<float*>(grad_outs);
  const std::vector<float*> part_grad_lses = float_pointers<float*>(grad_lses);
  const float* grad_out_data = grad_out.data<float>();
  const float* grad_lse_data = grad_lse.defined() ? grad_lse.data<float>() : nullptr;
  const float* out_data = out.data<float>();
  const float* lse_data = lse.data<float>();
  const std::int64_t rows = lse.numel();
  const std::int64_t head_dim = out.size(-1);
  const std::size_t parts = part_outs.size();

#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t row = 0; row < rows; ++row) {
    const float total = lse_data[row];
    const float grad_total = grad_lse_data != nullptr ? grad_lse_data[row] : 0.0f;
    const std::int64_t begin = row * head_dim;
    for (std::size_t s = 0; s < parts; ++s) {
      const float weight =
          total == negative_infinity() ? 0.0f : merge_weight(part_lses[s][row], total);
      // dLSE_s = w_s (<dO, O_s - O> + dLSE): how the merged output and lse move with LSE_s.
      float dot = 0.0f;
      for (std::int64_t d = 0; d < head_dim; ++d) {
        const float grad = grad_out_data[begin + d];
        dot += weight == 0.0f ? 0.0f : grad * (part_outs[s][begin + d] - out_data[begin + d]);
        part_grad_outs[s][begin + d] = weight * grad;
      }
      part_grad_lses[s][row] = weight * (dot + grad_total);
    }
  }
}

}  // namespace longseq::cpu
