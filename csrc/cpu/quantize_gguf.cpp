// rocq::cpu::quantize_rows / can_quantize: the CPU quantizer, a loop over the blocks of the
// rows calling the per-block quantizers of kernels/quantize_blocks.h (the same functions the
// GPU kernel kernels/quantize.hip runs, one thread per block, so both give identical bytes).
// Rules, including the handling of non-finite and out-of-range input: kernels/quantize_blocks.h.
// rocq's planar OCP MX formats (ids 100..105, separate E8M0 scale plane) are forwarded to
// quantize_mx.cpp with the OCP spec scale rule.
//
// Reentrant: no static mutable state; rows are independent, so the caller may split [0, n)
// across threads freely.
#include "quantize_gguf.h"

#include "../../kernels/quantize_blocks.h"
#include "quantize_mx.h"

namespace rocq::cpu {

bool can_quantize(int qtype) { return quant::can_quantize(qtype); }

bool quantize_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out) {
  if (is_mx_format(qtype)) return quantize_mx_rows(qtype, w, n, k, out, scales_out, kMxScaleSpec);
  const FormatInfo* f = find_format(qtype);
  if (f == nullptr || !can_quantize(qtype) || n < 0 || k < 0 || k % f->block_elems != 0) return false;
  return quant::dispatch_quantizer(qtype, [&](auto qz) {
    using Q = decltype(qz);
    // Rows are contiguous in w and in out, so block g of the matrix is block g % (k/kElems)
    // of row g / (k/kElems).
    const int64_t blocks = n * (k / Q::kElems);
    for (int64_t g = 0; g < blocks; ++g) Q::block(w + g * Q::kElems, out + g * Q::kBytes, nullptr, 0);
  });
}

}  // namespace rocq::cpu
