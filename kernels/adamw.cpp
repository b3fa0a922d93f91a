#include "kernels/adamw.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

void adamw_step(ComputeContext& context, const Tensor& param, const Tensor& grad, const Tensor& m,
                const Tensor& v, const AdamWOptions& options) {
  LONGSEQ_CHECK(param.dtype() == DType::f32 && param.is_contiguous(),
                "[adamw_step] param must be a contiguous fp32 tensor, got {}", param.describe());
  check_like("adamw_step", "grad", grad, param);
  check_like("adamw_step", "m", m, param);
  check_like("adamw_step", "v", v, param);
  LONGSEQ_CHECK(options.step >= 1, "[adamw_step] step counts from 1, got {}", options.step);
  LONGSEQ_REQUIRE(options.learning_rate >= 0.0f, "[adamw_step] learning rate must be >= 0, got {}",
                  options.learning_rate);
  LONGSEQ_REQUIRE(options.beta1 >= 0.0f && options.beta1 < 1.0f && options.beta2 >= 0.0f &&
                      options.beta2 < 1.0f,
                  "[adamw_step] beta1 and beta2 must lie in [0, 1), got {} and {}", options.beta1,
                  options.beta2);
  LONGSEQ_REQUIRE(options.eps > 0.0f, "[adamw_step] eps must be positive, got {}", options.eps);
  LONGSEQ_REQUIRE(options.weight_decay >= 0.0f, "[adamw_step] weight decay must be >= 0, got {}",
                  options.weight_decay);
  if (param.device() == Device::cpu) {
    cpu::adamw_step(context, param, grad, m, v, options);
  } else {
    cuda::adamw_step(context, param, grad, m, v, options);
  }
}

}  // namespace longseq
