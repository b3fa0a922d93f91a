// Toeplitz products by direct double loops (kernels/toeplitz.h): O(n_out n_in) per column, no FFT,
// so they share no code path with the backends.
#include "kernels/toeplitz.h"

#include <cstdint>
#include <vector>

#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

struct Geometry {
  std::int64_t batch, groups, n_out, n_in, columns;

  [[nodiscard]] std::int64_t offsets() const { return n_out + n_in - 1; }
  // Index of t[g, j - i + n_out - 1].
  [[nodiscard]] std::int64_t t_index(std::int64_t g, std::int64_t i, std::int64_t j) const {
    return g * offsets() + j - i + n_out - 1;
  }
  [[nodiscard]] std::int64_t x_index(std::int64_t b, std::int64_t g, std::int64_t j,
                                     std::int64_t f) const {
    return ((b * groups + g) * n_in + j) * columns + f;
  }
  [[nodiscard]] std::int64_t y_index(std::int64_t b, std::int64_t g, std::int64_t i,
                                     std::int64_t f) const {
    return ((b * groups + g) * n_out + i) * columns + f;
  }
};

Geometry geometry_of(const char* op, const Tensor& t, const Tensor& x, const Tensor& y) {
  const Geometry g{x.size(0), x.size(1), y.size(2), x.size(2), x.size(3)};
  check_shape(op, "t", t, {g.groups, g.offsets()});
  check_shape(op, "y", y, {g.batch, g.groups, g.n_out, g.columns});
  return g;
}

// `values` stored into `destination`, added to its contents when accumulating.
void store_or_add(const char* op, const Tensor& destination, std::vector<double> values,
                  bool accumulate) {
  if (accumulate) {
    const std::vector<double> before = values_of(op, destination);
    for (std::size_t e = 0; e < values.size(); ++e) {
      values[e] += before[e];
    }
  }
  store(op, destination, values);
}

}  // namespace

void toeplitz_product(const Tensor& t, const Tensor& x, const Tensor& y, bool accumulate) {
  constexpr const char* kOp = "reference::toeplitz_product";
  const Geometry g = geometry_of(kOp, t, x, y);
  const std::vector<double> tv = values_of(kOp, t);
  const std::vector<double> xv = values_of(kOp, x);
  std::vector<double> yv(static_cast<std::size_t>(y.numel()), 0.0);
  for (std::int64_t b = 0; b < g.batch; ++b) {
    for (std::int64_t h = 0; h < g.groups; ++h) {
      for (std::int64_t i = 0; i < g.n_out; ++i) {
        for (std::int64_t f = 0; f < g.columns; ++f) {
          double sum = 0.0;
          for (std::int64_t j = 0; j < g.n_in; ++j) {
            sum += tv[g.t_index(h, i, j)] * xv[g.x_index(b, h, j, f)];
          }
          yv[g.y_index(b, h, i, f)] = sum;
        }
      }
    }
  }
  store_or_add(kOp, y, std::move(yv), accumulate);
}

void toeplitz_product_backward(const Tensor& t, const Tensor& x, const Tensor& grad_y,
                               const Tensor& grad_x, const Tensor& grad_t, bool accumulate) {
  constexpr const char* kOp = "reference::toeplitz_product_backward";
  const Geometry g = geometry_of(kOp, t, x, grad_y);
  const std::vector<double> tv = values_of(kOp, t);
  const std::vector<double> xv = values_of(kOp, x);
  const std::vector<double> gy = values_of(kOp, grad_y);
  std::vector<double> gx(static_cast<std::size_t>(x.numel()), 0.0);
  std::vector<double> gt(static_cast<std::size_t>(t.numel()), 0.0);
  for (std::int64_t b = 0; b < g.batch; ++b) {
    for (std::int64_t h = 0; h < g.groups; ++h) {
      for (std::int64_t i = 0; i < g.n_out; ++i) {
        for (std::int64_t j = 0; j < g.n_in; ++j) {
          for (std::int64_t f = 0; f < g.columns; ++f) {
            const double dy = gy[g.y_index(b, h, i, f)];
            gx[g.x_index(b, h, j, f)] += tv[g.t_index(h, i, j)] * dy;
            gt[g.t_index(h, i, j)] += dy * xv[g.x_index(b, h, j, f)];
          }
        }
      }
    }
  }
  if (grad_x.defined()) {
    check_shape(kOp, "grad_x", grad_x, x.shape());
    store_or_add(kOp, grad_x, std::move(gx), accumulate);
  }
  if (grad_t.defined()) {
    check_shape(kOp, "grad_t", grad_t, t.shape());
    store_or_add(kOp, grad_t, std::move(gt), accumulate);
  }
}

}  // namespace longseq::reference
