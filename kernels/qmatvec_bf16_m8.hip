// Fused decode-path kernels: BF16 activations, up to 8 row(s) of x per launch (qmatvec_impl.h).
#include "qmatvec_impl.h"

namespace rocq::gpu {
ROCQ_QMV_INSTANTIATE((int)DType::BF16, 8)
}  // namespace rocq::gpu
