// launch_qmatvec: picks the activation dtype and the fast or simple kernel (qmatvec_impl.h).
#include "qmatvec_impl.h"

namespace rocq::gpu {

bool qmatvec_fast_path(int qtype, const void* x, const uint8_t* qweight, int64_t k, int64_t row_bytes) {
  const FormatInfo* f = find_format(qtype);
  if (!f) return false;
  const int unit_elems = f->block_elems == 1 ? 8 : f->block_elems;
  return row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(qweight) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(x) % 16 == 0 && k % 8 == 0 && k % unit_elems == 0;
}

const char* launch_qmatvec(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                           const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias,
                           void* y, void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  const bool fast = qmatvec_fast_path(qtype, x, qweight, k, row_bytes);
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  switch (dtype) {
    case DType::F32:
      return qmatvec_launch_dtype<(int)DType::F32>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
    case DType::F16:
      return qmatvec_launch_dtype<(int)DType::F16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
    case DType::BF16:
      return qmatvec_launch_dtype<(int)DType::BF16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
  }
  return "rocq qmatvec: unknown activation dtype";
}

}  // namespace rocq::gpu
