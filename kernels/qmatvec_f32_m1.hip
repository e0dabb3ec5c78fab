// Fused decode-path kernels: F32 activations, up to 1 row(s) of x per launch (qmatvec_impl.h).
#include "qmatvec_impl.h"

namespace rocq::gpu {
ROCQ_QMV_INSTANTIATE((int)DType::F32, 1)
}  // namespace rocq::gpu
