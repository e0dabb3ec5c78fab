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
  const c10::DeviceGuard guard(wt.device());
  const QuantizeJob j = prepare_quantize_mx(wt, qtype, mode);
  const char* err = gpu::launch_quantize(j.fmt->id, j.w.data_ptr<float>(), j.n, j.k, j.qweight.data_ptr<uint8_t>(),
                                         j.scales.data_ptr<uint8_t>(), (int)mode, mx_current_stream(j.w.device()));
  TORCH_CHECK(err == nullptr, "rocq._quantize_mx: GPU kernel launch failed: ", err ? err : "");
  return {j.qweight, j.scales};
}

}  // namespace

TORCH_LIBRARY_IMPL(rocq, CUDA, m) { m.impl("_quantize_mx", &quantize_mx_cuda); }

}  // namespace rocq::cuda
