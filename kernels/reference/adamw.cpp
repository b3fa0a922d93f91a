// Reference AdamW step in double, with bias correction and decoupled weight decay.
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                const AdamWOptions& options) {
  const char* op = "reference::adamw_step";
  check_shape(op, "grad", grad, param.shape());
  check_shape(op, "m", m, param.shape());
  check_shape(op, "v", v, param.shape());
  LONGSEQ_CHECK(options.step >= 1, "[{}] step must count from 1, got {}", op, options.step);
  std::vector<double> param_values = values_of(op, param);
  const std::vector<double> grad_values = values_of(op, grad);
  std::vector<double> m_values = values_of(op, m);
  std::vector<double> v_values = values_of(op, v);
  const double beta1 = options.beta1;
  const double beta2 = options.beta2;
  const double step = static_cast<double>(options.step);
  const double first_correction = 1.0 - std::pow(beta1, step);
  const double second_correction = 1.0 - std::pow(beta2, step);
  for (std::size_t i = 0; i < param_values.size(); ++i) {
    m_values[i] = beta1 * m_values[i] + (1.0 - beta1) * grad_values[i];
    v_values[i] = beta2 * v_values[i] + (1.0 - beta2) * grad_values[i] * grad_values[i];
    const double adaptive =
        (m_values[i] / first_correction) /
        (std::sqrt(v_values[i] / second_correction) + static_cast<double>(options.eps));
    // The decay uses the parameter before this step, like the gradient term.
    param_values[i] -= static_cast<double>(options.learning_rate) *
                       (adaptive + static_cast<double>(options.weight_decay) * param_values[i]);
  }
  store(op, param, param_values);
  store(op, m, m_values);
  store(op, v, v_values);
}

}  // namespace longseq::reference
