// CPU quantizer for the planar OCP MX formats: a loop over the 32-element groups of the rows
// calling the per-group quantizer of kernels/quantize_mx.h (the same function the GPU kernel
// kernels/quantize.hip runs). Rules, modes and the NaN/Inf policy: kernels/quantize_mx.h.
#include "quantize_mx.h"

#include "../../kernels/quantize_blocks.h"

namespace rocq::cpu {

static_assert((int)kMxScaleSpec == (int)quant::kMxScaleSpec && (int)kMxScaleEven == (int)quant::kMxScaleEven);

bool is_mx_format(int qtype) {
  switch (qtype) {
    case QT_OCP_MXFP4:
    case QT_OCP_MXFP6_E2M3:
    case QT_OCP_MXFP6_E3M2:
    case QT_OCP_MXFP8_E4M3:
    case QT_OCP_MXFP8_E5M2:
    case QT_OCP_MXINT8:
      return true;
    default:
      return false;
  }
}

bool quantize_mx_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out,
                      int mode) {
  if (mode != kMxScaleSpec && mode != kMxScaleEven) return false;
  if (!is_mx_format(qtype) || n < 0 || k % 32 != 0 || scales_out == nullptr) return false;
  return quant::dispatch_quantizer(qtype, [&](auto qz) {
    using Q = decltype(qz);
    if constexpr (Q::kScalePlane) {
      const int64_t groups = n * (k / 32);  // rows are contiguous: group g of the matrix
      for (int64_t g = 0; g < groups; ++g) Q::block(w + g * 32, out + g * Q::kBytes, scales_out + g, mode);
    }
  });
}

}  // namespace rocq::cpu
