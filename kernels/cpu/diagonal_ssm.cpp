// The two Vandermonde products behind the diagonal state-space layer on the CPU
// (kernels/diagonal_ssm.h; the dispatcher kernels/diagonal_ssm.cpp does the per-mode algebra):
//
//   eval   out_l = Re(sum_m coef_m exp(l z_m)) (+ direct at l = 0)        l = 0 .. L-1
//   sums   S_m = sum_l s_l exp(l z_m),   S'_m = sum_l l s_l exp(l z_m)
//
// per (row r, channel h), with z = dt Lambda (H, M) in double. A position is split as
// l = base + g T + t (T = kDiagonalSsmBlock positions per block, G = kBlocksPerGroup blocks per
// group) and exp(l z) = exp(base z) exp(g T z) exp(t z), each factor computed directly
// (kernels/common/diagonal_ssm_math.h): no power is ever formed by repeated multiplication, and
// over a group the products become matrix products on the tile micro-kernel:
//   eval   OUT (G x T) = V (G x 2M) E (2M x T),   V_g = [Re | Im] coef exp(base z) exp(g T z),
//                                                E = [Re exp(t z) ; -Im exp(t z)]
//   sums   P (G x 4M') = SIG (G x T) F (T x 4M'), F = [Re, Im, t Re, t Im] of exp(t z)
// and the G rows of P are folded into S, S' in double with exp(base z) exp(g T z). Nothing of
// size L x M is ever held: per thread, a group's G x T and G x 4M' tiles.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/diagonal_ssm_math.h"
#include "kernels/cpu/tile_product.h"

namespace longseq::cpu {

namespace {

constexpr std::int64_t kBlock = kDiagonalSsmBlock;
constexpr std::int64_t kBlocksPerGroup = 64;
constexpr std::int64_t kGroup = kBlock * kBlocksPerGroup;
static_assert(kBlock % kTileColumnMultiple == 0);

std::int64_t padded(std::int64_t columns) {
  return (columns + kTileColumnMultiple - 1) / kTileColumnMultiple * kTileColumnMultiple;
}

// The modes z of one channel and the directly computed powers every group shares.
class ChannelPowers {
 public:
  ChannelPowers(const double* modes, std::int64_t count) : count_(count) {
    z_.assign(modes, modes + 2 * count);
    block_.resize(static_cast<std::size_t>(kBlocksPerGroup * count));
    within_.resize(static_cast<std::size_t>(kBlock * count));
    for (std::int64_t m = 0; m < count; ++m) {
      for (std::int64_t g = 0; g < kBlocksPerGroup; ++g) {
        block_[g * count + m] = mode_power_f64(static_cast<double>(g * kBlock), re(m), im(m));
      }
      for (std::int64_t t = 0; t < kBlock; ++t) {
        within_[t * count + m] = mode_power(static_cast<double>(t), re(m), im(m));
      }
    }
  }

  [[nodiscard]] std::int64_t count() const { return count_; }
  [[nodiscard]] double re(std::int64_t m) const { return z_[2 * m]; }
  [[nodiscard]] double im(std::int64_t m) const { return z_[2 * m + 1]; }
  // exp(g T z_m).
  [[nodiscard]] SsmComplex<double> block(std::int64_t g, std::int64_t m) const {
    return block_[g * count_ + m];
  }
  // exp(t z_m), t < T.
  [[nodiscard]] SsmComplex<float> within(std::int64_t t, std::int64_t m) const {
    return within_[t * count_ + m];
  }
  // exp(base z_m).
  [[nodiscard]] SsmComplex<double> base(std::int64_t base, std::int64_t m) const {
    return mode_power_f64(static_cast<double>(base), re(m), im(m));
  }

 private:
  std::int64_t count_;
  std::vector<double> z_;
  std::vector<SsmComplex<double>> block_;
  std::vector<SsmComplex<float>> within_;
};

// Index of position l in a row of `length` positions read or written in order or reversed.
std::int64_t position(std::int64_t l, std::int64_t length, bool reversed) {
  return reversed ? length - 1 - l : l;
}

// Blocks of the group at `base` that hold positions below `length`.
std::int64_t blocks_in_group(std::int64_t base, std::int64_t length) {
  return std::min(kBlocksPerGroup, (length - base + kBlock - 1) / kBlock);
}

}  // namespace

void diagonal_ssm_vandermonde_eval(ComputeContext& context, const Tensor& modes,
                                   const Tensor& coefficients, const Tensor& direct,
                                   std::int64_t length, bool reversed, const Tensor& out,
                                   bool accumulate) {
  // modes (H, M, 2) f64; coefficients (R, H, M, 2) f32; direct (R, H) or undefined; out (R, H, W).
  const std::int64_t rows = coefficients.size(0);
  const std::int64_t channels = coefficients.size(1);
  const std::int64_t count = coefficients.size(2);
  const std::int64_t width = out.size(2);
  const std::int64_t inner = 2 * count;
  const double* z = modes.data<double>();
  const float* coef = coefficients.data<float>();
  const float* direct_data = direct.defined() ? direct.data<float>() : nullptr;
  float* out_data = out.data<float>();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    std::vector<float> powers(static_cast<std::size_t>(inner * kBlock));           // E (2M x T)
    std::vector<float> values(static_cast<std::size_t>(kBlocksPerGroup * inner));  // V (G x 2M)
    std::vector<float> tile(static_cast<std::size_t>(kGroup));                     // (G x T)
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < rows * channels; ++task) {
      const std::int64_t h = task % channels;
      const ChannelPowers channel(z + h * inner, count);
      for (std::int64_t m = 0; m < count; ++m) {
        for (std::int64_t t = 0; t < kBlock; ++t) {
          const SsmComplex<float> e = channel.within(t, m);
          powers[m * kBlock + t] = e.re;
          powers[(count + m) * kBlock + t] = -e.im;
        }
      }
      const float* c = coef + task * inner;
      float* row = out_data + task * width;
      for (std::int64_t base = 0; base < length; base += kGroup) {
        const std::int64_t blocks = blocks_in_group(base, length);
        for (std::int64_t m = 0; m < count; ++m) {
          const SsmComplex<double> scaled =
              SsmComplex<double>{c[2 * m], c[2 * m + 1]} * channel.base(base, m);
          for (std::int64_t g = 0; g < blocks; ++g) {
            const SsmComplex<double> v = scaled * channel.block(g, m);
            values[g * inner + m] = static_cast<float>(v.re);
            values[g * inner + count + m] = static_cast<float>(v.im);
          }
        }
        tile_product(blocks, kBlock, inner, {values.data(), inner, 1}, powers.data(), kBlock,
                     {tile.data(), kBlock}, false);
        const std::int64_t end = std::min(length, base + kGroup);
        for (std::int64_t l = base; l < end; ++l) {
          float value = tile[l - base];
          if (l == 0 && direct_data != nullptr) {
            value += direct_data[task];
          }
          float& destination = row[position(l, length, reversed)];
          destination = accumulate ? destination + value : value;
        }
      }
    }
  }
}

void diagonal_ssm_vandermonde_sums(ComputeContext& context, const Tensor& modes,
                                   const Tensor& signal, std::int64_t length, bool reversed,
                                   const Tensor& sums, const Tensor& weighted_sums,
                                   const Tensor& first) {
  // modes (H, M, 2) f64; signal (R, H, W); sums, weighted_sums (R, H, M, 2); first (R, H).
  const std::int64_t rows = signal.size(0);
  const std::int64_t channels = signal.size(1);
  const std::int64_t width = signal.size(2);
  const std::int64_t count = modes.size(1);
  const std::int64_t columns = padded(4 * count);
  const double* z = modes.data<double>();
  const float* signal_data = signal.data<float>();
  float* sums_data = sums.data<float>();
  float* weighted_data = weighted_sums.defined() ? weighted_sums.data<float>() : nullptr;
  float* first_data = first.defined() ? first.data<float>() : nullptr;
#pragma omp parallel num_threads(context.cpu_threads())
  {
    std::vector<float> powers(static_cast<std::size_t>(kBlock * columns), 0.0f);   // F (T x 4M')
    std::vector<float> samples(static_cast<std::size_t>(kGroup));                  // SIG (G x T)
    std::vector<float> tile(static_cast<std::size_t>(kBlocksPerGroup * columns));  // P (G x 4M')
    std::vector<SsmComplex<double>> total(static_cast<std::size_t>(count));
    std::vector<SsmComplex<double>> weighted(static_cast<std::size_t>(count));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < rows * channels; ++task) {
      const std::int64_t h = task % channels;
      const ChannelPowers channel(z + h * 2 * count, count);
      for (std::int64_t t = 0; t < kBlock; ++t) {
        for (std::int64_t m = 0; m < count; ++m) {
          const SsmComplex<float> e = channel.within(t, m);
          float* row = powers.data() + t * columns;
          row[m] = e.re;
          row[count + m] = e.im;
          row[2 * count + m] = static_cast<float>(t) * e.re;
          row[3 * count + m] = static_cast<float>(t) * e.im;
        }
      }
      std::fill(total.begin(), total.end(), SsmComplex<double>{0.0, 0.0});
      std::fill(weighted.begin(), weighted.end(), SsmComplex<double>{0.0, 0.0});
      const float* source = signal_data + task * width;
      for (std::int64_t base = 0; base < length; base += kGroup) {
        const std::int64_t blocks = blocks_in_group(base, length);
        const std::int64_t end = std::min(length, base + blocks * kBlock);
        for (std::int64_t l = base; l < base + blocks * kBlock; ++l) {
          samples[l - base] = l < end ? source[position(l, length, reversed)] : 0.0f;
        }
        tile_product(blocks, columns, kBlock, {samples.data(), kBlock, 1}, powers.data(), columns,
                     {tile.data(), columns}, false);
        for (std::int64_t m = 0; m < count; ++m) {
          const SsmComplex<double> at_base = channel.base(base, m);
          for (std::int64_t g = 0; g < blocks; ++g) {
            const float* p = tile.data() + g * columns;
            const SsmComplex<double> factor = at_base * channel.block(g, m);
            const double start = static_cast<double>(base + g * kBlock);
            const SsmComplex<double> plain{p[m], p[count + m]};
            const SsmComplex<double> ramp{start * p[m] + p[2 * count + m],
                                          start * p[count + m] + p[3 * count + m]};
            total[m] = total[m] + factor * plain;
            weighted[m] = weighted[m] + factor * ramp;
          }
        }
      }
      for (std::int64_t m = 0; m < count; ++m) {
        sums_data[(task * count + m) * 2] = static_cast<float>(total[m].re);
        sums_data[(task * count + m) * 2 + 1] = static_cast<float>(total[m].im);
        if (weighted_data != nullptr) {
          weighted_data[(task * count + m) * 2] = static_cast<float>(weighted[m].re);
          weighted_data[(task * count + m) * 2 + 1] = static_cast<float>(weighted[m].im);
        }
      }
      if (first_data != nullptr) {
        first_data[task] = length > 0 ? source[position(0, length, reversed)] : 0.0f;
      }
    }
  }
}

}  // namespace longseq::cpu
