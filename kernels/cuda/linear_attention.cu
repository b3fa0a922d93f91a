// cuda::linear_attention_forward / backward / step (kernels/linear_attention.h): a simple exact
// implementation, one thread block per (batch, head) scanning the positions in order. The
// augmented state S' = [S | z] (Dk x (Dv + 1), fp32) of each block lives in a global scratch
// buffer that only that block touches (L2-resident for the usual head dims); the feature rows of
// the current position sit in shared memory, and the block's threads split the Dk (Dv + 1) state
// entries for updates and the Dv + 1 (or Dk) columns for products. Inputs may be fp32, bf16 or
// fp16; features, states and sums are fp32. The readout math is shared with the CPU
// (kernels/common/linear_attention_math.h). The backward follows the same two scans as the CPU:
// forward (S_i, dq, 1 / den and dL/d den per position into scratch), then reverse (R_j, dk, dv).
// A step is the forward over one position with the state as both initial and final state. Both
// feature maps are supported; key log scales are not implemented here yet (a UserError says so).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/linear_attention_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;

struct Geometry {
  long long length;
  int dk;
  int dv;
  float eps;
  bool causal;
  LinearAttentionFeatureMap map;

  [[nodiscard]] __device__ int width() const { return dv + 1; }
};

// The fp32 views of one (batch, head): its augmented state, its optional external states.
struct BlockState {
  float* state;       // S' (Dk x (Dv + 1)), scratch
  const float* s_in;  // (Dk x Dv) or null
  const float* z_in;  // (Dk) or null
  float* s_out;       // (Dk x Dv) or null
  float* z_out;       // (Dk) or null
};

// Shared-memory rows of the current position.
struct Rows {
  float* features_q;  // Dk
  float* features_k;  // Dk
  float* values;      // Dv + 1: v and a trailing 1
  float* grad;        // Dv + 1: W' = [g / den | dL/d den]
  float* numerator;   // Dv + 1
};

__device__ Rows shared_rows(float* shared, const Geometry& g) {
  Rows rows;
  rows.features_q = shared;
  rows.features_k = rows.features_q + g.dk;
  rows.values = rows.features_k + g.dk;
  rows.grad = rows.values + g.width();
  rows.numerator = rows.grad + g.width();
  return rows;
}

std::size_t shared_bytes(const LinearAttentionShape& shape) {
  return static_cast<std::size_t>(2 * shape.key_dim + 3 * (shape.value_dim + 1)) * sizeof(float);
}

__device__ void load_state(const Geometry& g, const float* s, const float* z, float* state) {
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.dk * width; e += blockDim.x) {
    const int a = e / width;
    const int c = e % width;
    state[e] = s == nullptr ? 0.0f : (c < g.dv ? s[a * g.dv + c] : z[a]);
  }
  __syncthreads();
}

__device__ void store_state(const Geometry& g, const float* state, float* s, float* z) {
  __syncthreads();
  if (s == nullptr) {
    return;
  }
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.dk * width; e += blockDim.x) {
    const int a = e / width;
    const int c = e % width;
    if (c < g.dv) {
      s[a * g.dv + c] = state[e];
    } else {
      z[a] = state[e];
    }
  }
}

// rows.features_q / features_k = phi of position i; rows.values = [v_i | 1].
template <typename T>
__device__ void load_position(const Geometry& g, const T* q, const T* k, const T* v, long long i,
                              const Rows& rows) {
  for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
    rows.features_q[a] = key_feature(g.map, element_to_float(q[i * g.dk + a]));
    rows.features_k[a] = key_feature(g.map, element_to_float(k[i * g.dk + a]));
  }
  for (int c = static_cast<int>(threadIdx.x); c < g.width(); c += blockDim.x) {
    rows.values[c] = c < g.dv ? element_to_float(v[i * g.dv + c]) : 1.0f;
  }
  __syncthreads();
}

// state += left right^T (Dk x (Dv + 1)).
__device__ void add_outer(const Geometry& g, const float* left, const float* right, float* state) {
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.dk * width; e += blockDim.x) {
    state[e] += left[e / width] * right[e % width];
  }
  __syncthreads();
}

// rows.numerator = phi(q_i)^T S'.
__device__ void numerator(const Geometry& g, const float* state, const Rows& rows) {
  const int width = g.width();
  for (int c = static_cast<int>(threadIdx.x); c < width; c += blockDim.x) {
    float sum = 0.0f;
    for (int a = 0; a < g.dk; ++a) {
      sum += rows.features_q[a] * state[a * width + c];
    }
    rows.numerator[c] = sum;
  }
  __syncthreads();
}

// rows.grad = W' of position i from 1 / den and dL/d den.
template <typename T>
__device__ void load_readout_grad(const Geometry& g, const T* grad_out, long long i,
                                  float inverse_den, float grad_den, const Rows& rows) {
  for (int c = static_cast<int>(threadIdx.x); c < g.width(); c += blockDim.x) {
    rows.grad[c] = c < g.dv ? element_to_float(grad_out[i * g.dv + c]) * inverse_den : grad_den;
  }
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Geometry g, const T* q, const T* k, const T* v, T* out, BlockState block) {
  extern __shared__ float shared[];
  const Rows rows = shared_rows(shared, g);
  const long long bh = blockIdx.x;
  const long long rows_k = bh * g.length * g.dk;
  const long long rows_v = bh * g.length * g.dv;
  float* state = block.state + bh * g.dk * g.width();
  const long long state_s = bh * g.dk * g.dv;
  const long long state_z = bh * g.dk;
  load_state(g, block.s_in == nullptr ? nullptr : block.s_in + state_s,
             block.z_in == nullptr ? nullptr : block.z_in + state_z, state);
  if (!g.causal || out == nullptr) {
    for (long long i = 0; i < g.length; ++i) {
      load_position(g, q + rows_k, k + rows_k, v + rows_v, i, rows);
      add_outer(g, rows.features_k, rows.values, state);
    }
  }
  if (out != nullptr) {
    for (long long i = 0; i < g.length; ++i) {
      load_position(g, q + rows_k, k + rows_k, v + rows_v, i, rows);
      if (g.causal) {
        add_outer(g, rows.features_k, rows.values, state);
      }
      numerator(g, state, rows);
      const float inverse = inverse_normaliser(rows.numerator[g.dv], g.eps);
      for (int c = static_cast<int>(threadIdx.x); c < g.dv; c += blockDim.x) {
        out[rows_v + i * g.dv + c] = element_from_float<T>(rows.numerator[c] * inverse);
      }
      __syncthreads();
    }
  }
  store_state(g, state, block.s_out == nullptr ? nullptr : block.s_out + state_s,
              block.z_out == nullptr ? nullptr : block.z_out + state_z);
}

// What the backward wants besides the state views.
struct BackwardOutputs {
  float* inverse_den;  // (B H, N) scratch
  float* grad_den;     // (B H, N) scratch
  float* grad_state;   // R' (B H, Dk, Dv + 1) scratch
  bool want_q;
  bool want_kv;
  bool want_initial;
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(Geometry g, const T* q, const T* k, const T* v, const T* grad_out, T* grad_q,
                    T* grad_k, T* grad_v, BlockState block, BlockState grad_block,
                    BackwardOutputs outputs) {
  extern __shared__ float shared[];
  const Rows rows = shared_rows(shared, g);
  const long long bh = blockIdx.x;
  const long long rows_k = bh * g.length * g.dk;
  const long long rows_v = bh * g.length * g.dv;
  const int width = g.width();
  float* state = block.state + bh * g.dk * width;
  float* grad_state = outputs.grad_state + bh * g.dk * width;
  float* inverse_den = outputs.inverse_den + bh * g.length;
  float* grad_den = outputs.grad_den + bh * g.length;
  const long long state_s = bh * g.dk * g.dv;
  const long long state_z = bh * g.dk;
  const T* qh = q + rows_k;
  const T* kh = k + rows_k;
  const T* vh = v + rows_v;
  const T* gh = grad_out + rows_v;
  // Forward scan: S_i (inclusive), W', dq.
  load_state(g, block.s_in == nullptr ? nullptr : block.s_in + state_s,
             block.z_in == nullptr ? nullptr : block.z_in + state_z, state);
  if (!g.causal) {
    for (long long i = 0; i < g.length; ++i) {
      load_position(g, qh, kh, vh, i, rows);
      add_outer(g, rows.features_k, rows.values, state);
    }
  }
  for (long long i = 0; i < g.length; ++i) {
    load_position(g, qh, kh, vh, i, rows);
    if (g.causal) {
      add_outer(g, rows.features_k, rows.values, state);
    }
    numerator(g, state, rows);
    if (threadIdx.x == 0) {
      const float inverse = inverse_normaliser(rows.numerator[g.dv], g.eps);
      float dot = 0.0f;
      for (int c = 0; c < g.dv; ++c) {
        dot += element_to_float(gh[i * g.dv + c]) * rows.numerator[c];
      }
      inverse_den[i] = inverse;
      grad_den[i] = normaliser_gradient(dot * inverse, inverse);
    }
    __syncthreads();
    load_readout_grad(g, gh, i, inverse_den[i], grad_den[i], rows);
    if (outputs.want_q) {
      for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
        float sum = 0.0f;
        for (int c = 0; c < width; ++c) {
          sum += state[a * width + c] * rows.grad[c];
        }
        const float x = element_to_float(qh[i * g.dk + a]);
        grad_q[rows_k + i * g.dk + a] =
            element_from_float<T>(sum * key_feature_derivative(g.map, x));
      }
    }
    __syncthreads();
  }
  // Reverse scan: R_j (inclusive), dk, dv; finally R' is the gradient of the initial state.
  load_state(g, grad_block.s_in == nullptr ? nullptr : grad_block.s_in + state_s,
             grad_block.z_in == nullptr ? nullptr : grad_block.z_in + state_z, grad_state);
  const bool sum_first = !g.causal || !outputs.want_kv;
  if (sum_first && (outputs.want_kv || outputs.want_initial)) {
    for (long long i = 0; i < g.length; ++i) {
      load_position(g, qh, kh, vh, i, rows);
      load_readout_grad(g, gh, i, inverse_den[i], grad_den[i], rows);
      add_outer(g, rows.features_q, rows.grad, grad_state);
    }
  }
  if (outputs.want_kv) {
    for (long long i = g.length - 1; i >= 0; --i) {
      load_position(g, qh, kh, vh, i, rows);
      load_readout_grad(g, gh, i, inverse_den[i], grad_den[i], rows);
      if (g.causal) {
        add_outer(g, rows.features_q, rows.grad, grad_state);
      }
      for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
        float sum = 0.0f;
        for (int c = 0; c < width; ++c) {
          sum += grad_state[a * width + c] * rows.values[c];
        }
        const float x = element_to_float(kh[i * g.dk + a]);
        grad_k[rows_k + i * g.dk + a] =
            element_from_float<T>(sum * key_feature_derivative(g.map, x));
      }
      for (int c = static_cast<int>(threadIdx.x); c < g.dv; c += blockDim.x) {
        float sum = 0.0f;
        for (int a = 0; a < g.dk; ++a) {
          sum += grad_state[a * width + c] * rows.features_k[a];
        }
        grad_v[rows_v + i * g.dv + c] = element_from_float<T>(sum);
      }
      __syncthreads();
    }
  }
  store_state(g, grad_state, grad_block.s_out == nullptr ? nullptr : grad_block.s_out + state_s,
              grad_block.z_out == nullptr ? nullptr : grad_block.z_out + state_z);
}

Geometry geometry_of(const char* op, const LinearAttentionShape& shape) {
  if (shape.key_log_scale) {
    throw UserError(LONGSEQ_FORMAT("[{}] key log scales are not implemented on CUDA yet", op));
  }
  return {shape.length,
          static_cast<int>(shape.key_dim),
          static_cast<int>(shape.value_dim),
          shape.eps,
          shape.causal,
          shape.feature_map};
}

const float* input_pointer(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<float>() : nullptr;
}
float* output_pointer(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<float>() : nullptr;
}

Tensor state_scratch(const LinearAttentionShape& shape) {
  return Tensor::empty({shape.batch * shape.heads * shape.key_dim * (shape.value_dim + 1)},
                       DType::f32, Device::cuda);
}

template <typename T>
T* optional_data(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

}  // namespace

void linear_attention_forward(ComputeContext& context, const LinearAttentionShape& shape,
                              const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& /*key_log_scale*/, const LinearAttentionState& initial,
                              const Tensor& out, const LinearAttentionState& final) {
  const Geometry geometry = geometry_of("linear_attention_forward", shape);
  const std::int64_t tasks = shape.batch * shape.heads;
  if (tasks == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  const Tensor scratch = state_scratch(shape);
  const BlockState block{scratch.data<float>(), input_pointer(initial.s), input_pointer(initial.z),
                         output_pointer(final.s), output_pointer(final.z)};
  dispatch_floating("linear_attention_forward", q.dtype(), [&](auto element) {
    using T = decltype(element);
    forward_kernel<T>
        <<<row_blocks("linear_attention_forward", tasks), kThreads, shared_bytes(shape), stream>>>(
            geometry, q.data<T>(), k.data<T>(), v.data<T>(), optional_data<T>(out), block);
    CUDA_CHECK_LAUNCH();
  });
  // The scratch state is freed on return; make sure the stream is done with it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void linear_attention_backward(ComputeContext& context, const LinearAttentionShape& shape,
                               const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& /*key_log_scale*/, const Tensor& grad_out,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial) {
  const Geometry geometry = geometry_of("linear_attention_backward", shape);
  const std::int64_t tasks = shape.batch * shape.heads;
  if (tasks == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  const Tensor scratch = state_scratch(shape);
  const Tensor grad_scratch = state_scratch(shape);
  const Tensor per_position = Tensor::empty({2, tasks * shape.length}, DType::f32, Device::cuda);
  const BlockState block{scratch.data<float>(), input_pointer(initial.s), input_pointer(initial.z),
                         nullptr, nullptr};
  const BlockState grad_block{grad_scratch.data<float>(), input_pointer(grad_final.s),
                              input_pointer(grad_final.z), output_pointer(grad_initial.s),
                              output_pointer(grad_initial.z)};
  const BackwardOutputs outputs{
      per_position.data<float>(), per_position.data<float>() + tasks * shape.length,
      grad_scratch.data<float>(), grad_q.defined(),
      grad_k.defined(),           grad_initial.defined()};
  dispatch_floating("linear_attention_backward", q.dtype(), [&](auto element) {
    using T = decltype(element);
    backward_kernel<T>
        <<<row_blocks("linear_attention_backward", tasks), kThreads, shared_bytes(shape), stream>>>(
            geometry, q.data<T>(), k.data<T>(), v.data<T>(), grad_out.data<T>(),
            optional_data<T>(grad_q), optional_data<T>(grad_k), optional_data<T>(grad_v), block,
            grad_block, outputs);
    CUDA_CHECK_LAUNCH();
  });
  // The scratch buffers are freed on return; make sure the stream is done with them.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void linear_attention_step(ComputeContext& context, const LinearAttentionShape& shape,
                           const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& key_log_scale, const LinearAttentionState& state,
                           const Tensor& out) {
  // Each block copies its state into scratch before it writes the updated one back, so the state
  // may be both the initial and the final state.
  linear_attention_forward(context, shape, q, k, v, key_log_scale, state, out, state);
}

}  // namespace longseq::cuda
