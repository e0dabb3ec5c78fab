// qgemm tile kernels for BF16 activations (see qgemm_impl.h).
#include "qgemm_impl.h"

namespace rocq::gpu {

template <>
const char* qgemm_launch_dtype<(int)DType::BF16>(int qtype, const QgArgs& a, const QgemmPlan& p, gpuStream_t stream) {
  return qgemm_launch_impl<(int)DType::BF16>(qtype, a, p, stream);
}

}  // namespace rocq::gpu
