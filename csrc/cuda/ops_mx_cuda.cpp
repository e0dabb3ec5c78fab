// GPU implementation of the internal op rocq::_quantize_mx (schema and CPU implementation:
// csrc/cpu/ops_mx_cpu.cpp; Python wrapper: torch_ops/mx.py). It launches the same kernel as
// rocq.quantize (kernels/quantize.hip) with the requested scale mode, so its bytes equal the
// CPU op's; current stream, no host sync.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/library.h>

#include "../../kernels/launch_quantize.h"
#include "../checks.h"
#include "../cpu/quantize_mx.h"

namespace rocq::cuda {
namespace {

void* mx_current_stream(const at::Device& device) {
  return c10::impl::getDeviceGuardImpl(device.type())->getStream(device).native_handle();
}

std::tuple<at::Tensor, at::Tensor> quantize_mx_cuda(const at::Tensor& wt, int64_t qtype, int64_t mode) {
  const FormatInfo& f = format_or_throw(qtype, "_quantize_mx");
  TORCH_CHECK_VALUE(cpu::is_mx_format(f.id), "rocq._quantize_mx: format ", f.name,
                    " is not a planar OCP MX format (ocp_mxfp4, ocp_mxfp6_e2m3, ocp_mxfp6_e3m2, ocp_mxfp8_e4m3, "
                    "ocp_mxfp8_e5m2, ocp_mxint8)");
  TORCH_CHECK_VALUE(mode == cpu::kMxScaleSpec || mode == cpu::kMxScaleEven, "rocq._quantize_mx: unknown scale mode ",
                    mode, " (0 = spec, 1 = even)");
  check_float_dtype(wt.scalar_type(), "_quantize_mx", "w");
  TORCH_CHECK_VALUE(wt.dim() == 2, "rocq._quantize_mx: w must be a 2-D weight [n, k], got shape ", wt.sizes());
  const int64_t n = wt.size(0), k = wt.size(1);
  TORCH_CHECK_VALUE(n > 0 && k > 0, "rocq._quantize_mx: w must be non-empty, got shape ", wt.sizes());
  TORCH_CHECK_VALUE(k % 32 == 0, "rocq._quantize_mx: k=", k, " is not a multiple of the block size 32 of format ",
                    f.name);
  const c10::DeviceGuard guard(wt.device());
  const at::Tensor w = wt.to(at::kFloat).contiguous();
  at::Tensor q = at::empty({n, k / 32 * f.block_bytes}, w.options().dtype(at::kByte));
  at::Tensor s = at::empty({n, k / 32}, w.options().dtype(at::kByte));
  const char* err = gpu::launch_quantize(f.id, w.data_ptr<float>(), n, k, q.data_ptr<uint8_t>(), s.data_ptr<uint8_t>(),
                                         (int)mode, mx_current_stream(w.device()));
  TORCH_CHECK(err == nullptr, "rocq._quantize_mx: GPU kernel launch failed: ", err ? err : "");
  return {q, s};
}

}  // namespace

TORCH_LIBRARY_IMPL(rocq, CUDA, m) { m.impl("_quantize_mx", &quantize_mx_cuda); }

}  // namespace rocq::cuda
