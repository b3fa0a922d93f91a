#include <cblas.h>

#include "kernels/gemm.h"

namespace longseq {

std::string cpu_blas_description() {
  return fmt::format("{} ({} threads)", openblas_get_config(), openblas_get_num_threads());
}

}  // namespace longseq
