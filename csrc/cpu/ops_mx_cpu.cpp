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
  const FormatInfo& f = format_or_throw(qtype, "_quantize_mx");
  TORCH_CHECK_VALUE(is_mx_format(f.id), "rocq._quantize_mx: format ", f.name,
                    " is not a planar OCP MX format (ocp_mxfp4, ocp_mxfp6_e2m3, ocp_mxfp6_e3m2, ocp_mxfp8_e4m3, "
                    "ocp_mxfp8_e5m2, ocp_mxint8)");
  TORCH_CHECK_VALUE(mode == kMxScaleSpec || mode == kMxScaleEven, "rocq._quantize_mx: unknown scale mode ", mode,
                    " (0 = spec, 1 = even)");
  check_float_dtype(wt.scalar_type(), "_quantize_mx", "w");
  TORCH_CHECK_VALUE(wt.dim() == 2, "rocq._quantize_mx: w must be a 2-D weight [n, k], got shape ", wt.sizes());
  const int64_t n = wt.size(0), k = wt.size(1);
  TORCH_CHECK_VALUE(n > 0 && k > 0, "rocq._quantize_mx: w must be non-empty, got shape ", wt.sizes());
  TORCH_CHECK_VALUE(k % 32 == 0, "rocq._quantize_mx: k=", k, " is not a multiple of the block size 32 of format ",
                    f.name);
  const at::Tensor w = wt.to(at::kFloat).contiguous();
  const int64_t row_bytes = k / 32 * f.block_bytes;
  at::Tensor q = at::empty({n, row_bytes}, w.options().dtype(at::kByte));
  at::Tensor s = at::empty({n, k / 32}, w.options().dtype(at::kByte));
  const float* wp = w.data_ptr<float>();
  uint8_t* qp = q.data_ptr<uint8_t>();
  uint8_t* sp = s.data_ptr<uint8_t>();
  at::parallel_for(0, n, std::max<int64_t>(1, 16384 / k), [&](int64_t r0, int64_t r1) {
    quantize_mx_rows(f.id, wp + r0 * k, r1 - r0, k, qp + r0 * row_bytes, sp + r0 * (k / 32), (int)mode);
  });
  return {q, s};
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
