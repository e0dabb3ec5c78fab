// qmma kernels for BF16 activations (see qmma_impl.h).
#include "qmma_impl.h"

namespace rocq::gpu {
ROCQ_QMMA_INSTANTIATE((int)DType::BF16)
}  // namespace rocq::gpu
