// Fused decode-path kernels for F16 activations (see qmatvec_impl.h).
#include "qmatvec_impl.h"

namespace rocq::gpu {

template <>
const char* qmatvec_launch_dtype<(int)DType::F16>(int qtype, const void* x, int64_t M, const uint8_t* qw,
                                                 const uint8_t* sc, int64_t n, int64_t k, int64_t row_bytes,
                                                 const float* bias, void* y, bool fast, gpuStream_t stream) {
  return qmatvec_launch_impl<(int)DType::F16>(qtype, x, M, qw, sc, n, k, row_bytes, bias, y, fast, stream);
}

}  // namespace rocq::gpu
