// qgemm tile kernels for F16 activations (see qgemm_impl.h).
#include "qgemm_impl.h"

namespace rocq::gpu {

template <>
const char* qgemm_launch_dtype<(int)DType::F16>(int qtype, const QgArgs& a, const QgemmPlan& p, gpuStream_t stream) {
  return qgemm_launch_impl<(int)DType::F16>(qtype, a, p, stream);
}

}  // namespace rocq::gpu
