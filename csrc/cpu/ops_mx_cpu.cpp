// Internal op rocq::_quantize_mx: rocq.quantize for the planar OCP MX formats with a choice of
// scale rule (the public rocq::quantize uses the spec rule). Python wrapper and fake kernel:
// torch_ops/mx.py (rocq.mx.quantize_mx). Modes and NaN/Inf policy: quantize_mx.h.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../checks.h"
#include "quantize_mx.h"

namespace rocq::cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> quantize_mx_cpu(const at::Tensor& wt, int64_t qtype, int64_t mode) {
  const QuantizeJob j = prepare_quantize_mx(wt, qtype, mode);
  const int64_t k = j.k, row_bytes = j.row_bytes;
  const float* wp = j.w.data_ptr<float>();
  uint8_t* qp = j.qweight.data_ptr<uint8_t>();
  uint8_t* sp = j.scales.data_ptr<uint8_t>();
  at::parallel_for(0, j.n, std::max<int64_t>(1, 16384 / k), [&](int64_t r0, int64_t r1) {
    quantize_mx_rows(j.fmt->id, wp + r0 * k, r1 - r0, k, qp + r0 * row_bytes, sp + r0 * (k / 32), (int)mode);
  });
  return {j.qweight, j.scales};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rocq, m) {
  // Internal (leading underscore: not part of the public contract). w [n, k] float ->
  // (element plane uint8 [n, k/32*block_bytes], E8M0 scales uint8 [n, k/32]) of a planar OCP MX
  // format; mode 0 = OCP spec scale rule, 1 = AMD Quark "even".
  m.def("_quantize_mx(Tensor w, int qtype, int mode=0) -> (Tensor qweight, Tensor scales)");
}

TORCH_LIBRARY_IMPL(rocq, CPU, m) { m.impl("_quantize_mx", &quantize_mx_cpu); }

}  // namespace rocq::cpu
