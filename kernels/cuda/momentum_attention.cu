// cuda::momentum_attention_forward / backward / step (kernels/momentum_attention.h): a simple
// exact implementation, one thread block per (batch, head) scanning the positions in order, as
// kernels/cuda/linear_attention.cu does for linear attention. The block's state, C' = [C | z] and
// D (each Dk x (Dv + 1), fp32; D's last column unused), lives in a global scratch buffer that only
// that block touches; the feature rows of the current position sit in shared memory, and the
// block's threads split the state entries for updates and the columns (or Dk rows) for products.
// Per position i (inclusive state):
//   C' += phi(k_i) [v_i | 1]^T,   D = mu D + phi(k_i) v_i^T,
//   num_i = phi(q_i)^T a (C - mu D),   den_i = phi(q_i)^T z + eps          (a = gamma / (1 - mu))
// The backward follows the same two scans as the CPU: forward (the state, dq, 1 / den and
// dL/d den per position into scratch), then reverse over the gradients of the inclusive state
// (RC', RD): add the readout of position i, take dk_i and dv_i, then RD *= mu to step back.
// Inputs may be fp32, bf16 or fp16; features, states and sums are fp32. The readout math is shared
// with the CPU (kernels/common/momentum_attention_math.h).
#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/momentum_attention_math.h"
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
  float momentum;
  float scale;  // a = gamma / (1 - mu)
  float eps;

  [[nodiscard]] __device__ int width() const { return dv + 1; }
  [[nodiscard]] __device__ int entries() const { return dk * width(); }
};

// The external states of all (batch, head) pairs: (B H, Dk, Dv) twice and (B H, Dk); null when
// undefined.
struct ExternalState {
  const float* c_in;
  const float* d_in;
  const float* z_in;
  float* c_out;
  float* d_out;
  float* z_out;
};

// Shared-memory rows of the current position.
struct Rows {
  float* features_q;  // Dk
  float* features_k;  // Dk
  float* values;      // Dv + 1: v and a trailing 1
  float* grad;        // Dv + 1: W' = [g / den | dL/d den]
  float* numerator;   // Dv + 1: [num | den - eps]
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

std::size_t shared_bytes(const MomentumAttentionShape& shape) {
  return static_cast<std::size_t>(2 * shape.key_dim + 3 * (shape.value_dim + 1)) * sizeof(float);
}

// plain = C' and decayed = D of head bh from the external state (zero when undefined).
__device__ void load_state(const Geometry& g, long long bh, const float* c, const float* d,
                           const float* z, float* plain, float* decayed) {
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.entries(); e += blockDim.x) {
    const int a = e / width;
    const int col = e % width;
    const long long matrix = (bh * g.dk + a) * g.dv + col;
    if (c == nullptr) {
      plain[e] = 0.0f;
      decayed[e] = 0.0f;
    } else if (col < g.dv) {
      plain[e] = c[matrix];
      decayed[e] = d[matrix];
    } else {
      plain[e] = z[bh * g.dk + a];
      decayed[e] = 0.0f;
    }
  }
  __syncthreads();
}

__device__ void store_state(const Geometry& g, long long bh, const float* plain,
                            const float* decayed, float* c, float* d, float* z) {
  __syncthreads();
  if (c == nullptr) {
    return;
  }
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.entries(); e += blockDim.x) {
    const int a = e / width;
    const int col = e % width;
    if (col < g.dv) {
      c[(bh * g.dk + a) * g.dv + col] = plain[e];
      d[(bh * g.dk + a) * g.dv + col] = decayed[e];
    } else {
      z[bh * g.dk + a] = plain[e];
    }
  }
}

// rows.features_q / features_k = phi of position i; rows.values = [v_i | 1].
template <typename T>
__device__ void load_position(const Geometry& g, const T* q, const T* k, const T* v, long long i,
                              const Rows& rows) {
  for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
    rows.features_q[a] = elu_feature(element_to_float(q[i * g.dk + a]));
    rows.features_k[a] = elu_feature(element_to_float(k[i * g.dk + a]));
  }
  for (int col = static_cast<int>(threadIdx.x); col < g.width(); col += blockDim.x) {
    rows.values[col] = col < g.dv ? element_to_float(v[i * g.dv + col]) : 1.0f;
  }
  __syncthreads();
}

// C' += phi(k) [v | 1]^T and D = mu D + phi(k) v^T.
__device__ void add_position(const Geometry& g, const Rows& rows, float* plain, float* decayed) {
  const int width = g.width();
  for (int e = static_cast<int>(threadIdx.x); e < g.entries(); e += blockDim.x) {
    const float update = rows.features_k[e / width] * rows.values[e % width];
    plain[e] += update;
    if (e % width < g.dv) {
      decayed[e] = g.momentum * decayed[e] + update;
    }
  }
  __syncthreads();
}

// Entry (a, col) of the readout matrix [a (C - mu D) | z].
__device__ float readout_entry(const Geometry& g, const float* plain, const float* decayed, int e) {
  return e % g.width() < g.dv ? momentum_readout(g.scale, g.momentum, plain[e], decayed[e])
                              : plain[e];
}

// rows.numerator = phi(q_i)^T [a (C - mu D) | z].
__device__ void numerator(const Geometry& g, const float* plain, const float* decayed,
                          const Rows& rows) {
  const int width = g.width();
  for (int col = static_cast<int>(threadIdx.x); col < width; col += blockDim.x) {
    float sum = 0.0f;
    for (int a = 0; a < g.dk; ++a) {
      sum += rows.features_q[a] * readout_entry(g, plain, decayed, a * width + col);
    }
    rows.numerator[col] = sum;
  }
  __syncthreads();
}

// rows.grad = W' of position i from 1 / den and dL/d den.
template <typename T>
__device__ void load_readout_grad(const Geometry& g, const T* grad_out, long long i,
                                  float inverse_den, float grad_den, const Rows& rows) {
  for (int col = static_cast<int>(threadIdx.x); col < g.width(); col += blockDim.x) {
    rows.grad[col] =
        col < g.dv ? element_to_float(grad_out[i * g.dv + col]) * inverse_den : grad_den;
  }
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Geometry g, const T* q, const T* k, const T* v, T* out, float* scratch,
                   ExternalState external) {
  extern __shared__ float shared[];
  const Rows rows = shared_rows(shared, g);
  const long long bh = blockIdx.x;
  const long long rows_k = bh * g.length * g.dk;
  const long long rows_v = bh * g.length * g.dv;
  float* plain = scratch + bh * 2 * g.entries();
  float* decayed = plain + g.entries();
  load_state(g, bh, external.c_in, external.d_in, external.z_in, plain, decayed);
  for (long long i = 0; i < g.length; ++i) {
    load_position(g, q + rows_k, k + rows_k, v + rows_v, i, rows);
    add_position(g, rows, plain, decayed);
    if (out != nullptr) {
      numerator(g, plain, decayed, rows);
      const float inverse = inverse_normaliser(rows.numerator[g.dv], g.eps);
      for (int col = static_cast<int>(threadIdx.x); col < g.dv; col += blockDim.x) {
        out[rows_v + i * g.dv + col] = element_from_float<T>(rows.numerator[col] * inverse);
      }
      __syncthreads();
    }
  }
  store_state(g, bh, plain, decayed, external.c_out, external.d_out, external.z_out);
}

// What the backward wants besides the state views.
struct BackwardOutputs {
  float* inverse_den;  // (B H, N) scratch
  float* grad_den;     // (B H, N) scratch
  bool want_q;
  bool want_kv;
  bool want_initial;
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(Geometry g, const T* q, const T* k, const T* v, const T* grad_out, T* grad_q,
                    T* grad_k, T* grad_v, float* scratch, ExternalState external,
                    ExternalState grad_external, BackwardOutputs outputs) {
  extern __shared__ float shared[];
  const Rows rows = shared_rows(shared, g);
  const long long bh = blockIdx.x;
  const long long rows_k = bh * g.length * g.dk;
  const long long rows_v = bh * g.length * g.dv;
  const int width = g.width();
  float* plain = scratch + bh * 4 * g.entries();
  float* decayed = plain + g.entries();
  float* grad_plain = decayed + g.entries();
  float* grad_decayed = grad_plain + g.entries();
  float* inverse_den = outputs.inverse_den + bh * g.length;
  float* grad_den = outputs.grad_den + bh * g.length;
  const T* qh = q + rows_k;
  const T* kh = k + rows_k;
  const T* vh = v + rows_v;
  const T* gh = grad_out + rows_v;
  // Forward scan: the inclusive state, W', dq = [a (C - mu D) | z] W'.
  load_state(g, bh, external.c_in, external.d_in, external.z_in, plain, decayed);
  for (long long i = 0; i < g.length; ++i) {
    load_position(g, qh, kh, vh, i, rows);
    add_position(g, rows, plain, decayed);
    numerator(g, plain, decayed, rows);
    if (threadIdx.x == 0) {
      const float inverse = inverse_normaliser(rows.numerator[g.dv], g.eps);
      float dot = 0.0f;
      for (int col = 0; col < g.dv; ++col) {
        dot += element_to_float(gh[i * g.dv + col]) * rows.numerator[col];
      }
      inverse_den[i] = inverse;
      grad_den[i] = normaliser_gradient(dot * inverse, inverse);
    }
    __syncthreads();
    load_readout_grad(g, gh, i, inverse_den[i], grad_den[i], rows);
    if (outputs.want_q) {
      for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
        float sum = 0.0f;
        for (int col = 0; col < width; ++col) {
          sum += readout_entry(g, plain, decayed, a * width + col) * rows.grad[col];
        }
        const float x = element_to_float(qh[i * g.dk + a]);
        grad_q[rows_k + i * g.dk + a] = element_from_float<T>(sum * elu_feature_derivative(x));
      }
    }
    __syncthreads();
  }
  // Reverse scan over the gradients of the inclusive state: the readout of i, then dk_i, dv_i,
  // then one step back (RD *= mu). Finally the gradient of the initial state.
  load_state(g, bh, grad_external.c_in, grad_external.d_in, grad_external.z_in, grad_plain,
             grad_decayed);
  if (outputs.want_kv || outputs.want_initial) {
    for (long long i = g.length - 1; i >= 0; --i) {
      load_position(g, qh, kh, vh, i, rows);
      load_readout_grad(g, gh, i, inverse_den[i], grad_den[i], rows);
      for (int e = static_cast<int>(threadIdx.x); e < g.entries(); e += blockDim.x) {
        const float query = rows.features_q[e / width];
        const int col = e % width;
        if (col < g.dv) {
          grad_plain[e] += g.scale * query * rows.grad[col];
          grad_decayed[e] -= g.scale * g.momentum * query * rows.grad[col];
        } else {
          grad_plain[e] += query * rows.grad[col];
        }
      }
      __syncthreads();
      if (outputs.want_kv) {
        for (int a = static_cast<int>(threadIdx.x); a < g.dk; a += blockDim.x) {
          float sum = 0.0f;
          for (int col = 0; col < width; ++col) {
            sum += grad_plain[a * width + col] * rows.values[col];
          }
          for (int col = 0; col < g.dv; ++col) {
            sum += grad_decayed[a * width + col] * rows.values[col];
          }
          const float x = element_to_float(kh[i * g.dk + a]);
          grad_k[rows_k + i * g.dk + a] = element_from_float<T>(sum * elu_feature_derivative(x));
        }
        for (int col = static_cast<int>(threadIdx.x); col < g.dv; col += blockDim.x) {
          float sum = 0.0f;
          for (int a = 0; a < g.dk; ++a) {
            sum +=
                (grad_plain[a * width + col] + grad_decayed[a * width + col]) * rows.features_k[a];
          }
          grad_v[rows_v + i * g.dv + col] = element_from_float<T>(sum);
        }
      }
      __syncthreads();
      for (int e = static_cast<int>(threadIdx.x); e < g.entries(); e += blockDim.x) {
        grad_decayed[e] *= g.momentum;
      }
      __syncthreads();
    }
  }
  store_state(g, bh, grad_plain, grad_decayed, grad_external.c_out, grad_external.d_out,
              grad_external.z_out);
}

Geometry geometry_of(const MomentumAttentionShape& shape) {
  return {shape.length,
          static_cast<int>(shape.key_dim),
          static_cast<int>(shape.value_dim),
          shape.momentum,
          momentum_scale(shape.momentum, shape.step),
          shape.eps};
}

const float* input_pointer(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<float>() : nullptr;
}
float* output_pointer(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<float>() : nullptr;
}

ExternalState external_of(const MomentumAttentionState& in, const MomentumAttentionState& out) {
  return {input_pointer(in.c),   input_pointer(in.d),   input_pointer(in.z),
          output_pointer(out.c), output_pointer(out.d), output_pointer(out.z)};
}

// `matrices` state matrices of Dk x (Dv + 1) per (batch, head).
Tensor state_scratch(const MomentumAttentionShape& shape, int matrices) {
  return Tensor::empty(
      {shape.batch * shape.heads * matrices * shape.key_dim * (shape.value_dim + 1)}, DType::f32,
      Device::cuda);
}

template <typename T>
T* optional_data(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

}  // namespace

void momentum_attention_forward(ComputeContext& context, const MomentumAttentionShape& shape,
                                const Tensor& q, const Tensor& k, const Tensor& v,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final) {
  const std::int64_t tasks = shape.batch * shape.heads;
  if (tasks == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  const Tensor scratch = state_scratch(shape, 2);
  dispatch_floating("momentum_attention_forward", q.dtype(), [&](auto element) {
    using T = decltype(element);
    forward_kernel<T>
        <<<row_blocks("momentum_attention_forward", tasks), kThreads, shared_bytes(shape),
           stream>>>(geometry_of(shape), q.data<T>(), k.data<T>(), v.data<T>(),
                     optional_data<T>(out), scratch.data<float>(), external_of(initial, final));
    CUDA_CHECK_LAUNCH();
  });
  // The scratch state is freed on return; make sure the stream is done with it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void momentum_attention_backward(ComputeContext& context, const MomentumAttentionShape& shape,
                                 const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& grad_out, const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial) {
  const std::int64_t tasks = shape.batch * shape.heads;
  if (tasks == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  const Tensor scratch = state_scratch(shape, 4);
  const Tensor per_position =
      Tensor::empty({2, tasks * std::max<std::int64_t>(shape.length, 1)}, DType::f32, Device::cuda);
  const BackwardOutputs outputs{per_position.data<float>(),
                                per_position.data<float>() + tasks * shape.length, grad_q.defined(),
                                grad_k.defined(), grad_initial.defined()};
  dispatch_floating("momentum_attention_backward", q.dtype(), [&](auto element) {
    using T = decltype(element);
    backward_kernel<T>
        <<<row_blocks("momentum_attention_backward", tasks), kThreads, shared_bytes(shape),
           stream>>>(geometry_of(shape), q.data<T>(), k.data<T>(), v.data<T>(), grad_out.data<T>(),
                     optional_data<T>(grad_q), optional_data<T>(grad_k), optional_data<T>(grad_v),
                     scratch.data<float>(), external_of(initial, {}),
                     external_of(grad_final, grad_initial), outputs);
    CUDA_CHECK_LAUNCH();
  });
  // The scratch buffers are freed on return; make sure the stream is done with them.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void momentum_attention_step(ComputeContext& context, const MomentumAttentionShape& shape,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const MomentumAttentionState& state, const Tensor& out) {
  // Each block copies its state into scratch before it writes the updated one back, so the state
  // may be both the initial and the final state.
  momentum_attention_forward(context, shape, q, k, v, state, out, state);
}

}  // namespace longseq::cuda
