// GPU implementations of the rocq ops, registered under the CUDA dispatch key (which is also
// the key PyTorch uses for HIP devices on ROCm builds). Kernels live in kernels/ (torch-free,
// launched through kernels/launch.h); this file checks arguments (checks.h), allocates from
// the PyTorch caching allocator, and launches on the current stream of the tensors' device.
// Nothing here reads tensor data on the host or synchronises, so qmatmul and dequantize can be
// captured in CUDA graphs (torch.compile mode="reduce-overhead").
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../../kernels/launch.h"
#include "../../kernels/launch_qgemm.h"
#include "../../kernels/launch_quantize.h"
#include "../checks.h"
#include "../cpu/quantize_gguf.h"

namespace rocq::cuda {
namespace {

gpu::DType to_gpu_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return gpu::DType::F32;
    case at::kHalf: return gpu::DType::F16;
    case at::kBFloat16: return gpu::DType::BF16;
    default: TORCH_CHECK_TYPE(false, "rocq: unsupported dtype ", t);
  }
}

// The current stream of `device` as the platform's native handle (cudaStream_t or
// hipStream_t), through c10's device-generic interface, so that this file needs no CUDA- or
// HIP-specific header.
void* current_stream(const at::Device& device) {
  return c10::impl::getDeviceGuardImpl(device.type())->getStream(device).native_handle();
}

void check_launch(const char* err, const char* op) {
  TORCH_CHECK(err == nullptr, "rocq.", op, ": GPU kernel launch failed: ", err ? err : "");
}

// ---------------------------------------------------------------------------------------------
// Path selection for qmatmul: the one place that decides, as a function of (M, format, device).
//
//   Fused:        kernels/qmatvec (decode path): streams each weight byte once per group of
//                 8 rows of x, fp32 math on the CUDA cores. Its time grows with M (the
//                 multiply-adds run out before memory does once M passes a few rows).
//   DequantBlas:  dequantize W into a workspace of x's dtype from the caching allocator, then
//                 the vendor BLAS (cuBLAS / hipBLASLt through at::mm). Costs a full write and
//                 read of W in 16/32 bits, then runs at BLAS speed: wins for large M.
//
//   Qgemm:        kernels/qgemm (middle regime, M about 8..256): CTAs of 128 weight rows
//                 stream the quantized bytes once per 64 rows of x, decode them into shared
//                 memory and multiply on the matrix units (bf16/fp16 operands, fp32 sums).
//
// The crossover (kFusedMaxRows) was measured with benchmarks/bench_qmatmul.py on an H100
// (see benchmarks/results/). ROCQ_QMATMUL_PATH=fused|dequant|qgemm forces a path (benchmarks and
// tests use it to time/check each); any other value or unset means automatic. It is read on
// every call (a getenv costs far less than a launch), so a test can switch paths in-process.
// ---------------------------------------------------------------------------------------------
enum class Path { Fused, DequantBlas, Qgemm };
constexpr int64_t kQmmaAutoRows = 32;

int forced_path() {
  const char* s = std::getenv("ROCQ_QMATMUL_PATH");
  if (s && std::strcmp(s, "fused") == 0) return 1;
  if (s && std::strcmp(s, "dequant") == 0) return 2;
  if (s && std::strcmp(s, "qgemm") == 0) return 3;
  return 0;
}

// Largest M for which kernels/qgemm beat both dequantize+BLAS and the fused kernel in
// benchmarks/results/bench_qgemm_h200.{json,log} (H200, bf16 x, every Llama-3 shape there);
// 0: not measured, or never faster (IQ4_XS: its generic decode is slow; dense formats).
// qgemm rounds W to bf16/fp16 operands (fp32 x too, to fp16): fp32 x never goes there
// automatically (its 1e-4 test tolerance), nor does anything on HIP builds (not yet run on an
// AMD GPU).
int64_t qgemm_max_rows(const FormatInfo& f, at::ScalarType xdtype) {
#if defined(ROCQ_BUILD_HIP)
  return 0;
#endif
  if (xdtype == at::kFloat) return 0;
  switch (f.id) {
    case QT_Q4_0: case QT_Q4_K: case QT_Q6_K: return 64;
    // MXFP4 beat dequantize+BLAS up to M = 128 in that run only because its dequantize read a
    // table from local memory (fixed in formats.h since); against a Q4_0-speed dequantize
    // (same bytes) it is ahead by 2-13% at M = 16 and behind from M = 32.
    case QT_Q8_0: case QT_Q5_K: case QT_MXFP4: return 16;
    default: return 0;
  }
}

// Largest M the fused kernel keeps when qgemm is available for the next M (see choose_path).
// Q4_0 moved from 2 to 4 with the integer pieces (kernels/qdot_int.h): fused M=4 runs at about
// bf16 speed (bench_qmatvec_m4_h200.log) against qgemm's 1.6x.
int64_t fused_rows_before_qgemm(const FormatInfo& f) {
  switch (f.id) {
    case QT_Q4_0: case QT_Q4_K: case QT_Q6_K: case QT_Q8_0: return 4;
    default: return 8;
  }
}

Path choose_path(int64_t M, int64_t n, int64_t k, int64_t row_bytes, const FormatInfo& f, const at::Device& device,
                 at::ScalarType xdtype, bool rows_fast) {
  (void)device;  // one table for now: the crossover measured on the H100 (an AMD GPU may differ)
  if (forced_path() == 1) return Path::Fused;
  if (forced_path() == 2) return Path::DequantBlas;
  if (forced_path() == 3) return Path::Qgemm;
  // The matrix-unit decode kernel (kernels/qmma, launch.h) takes its range of M on the fused
  // path, up to M = 32 automatically: at M = 64 it lost to qgemm / dequantize+BLAS on the H200
  // (its x fragments come from L2 once per 32 weight rows). Only where the fused path is the fast
  // one (rows_fast: 16-byte aligned rows; the fused path aligns x itself): otherwise the simple
  // kernel would take these M (e.g. Q6_K with k/256 not a multiple of 8, MXFP4 with k = 2880).
  // Up to M = 64 where its wide kernel takes the call (x tiles from shared memory, 128 weight rows
  // a CTA, layers that fill the device: kernels/qmma_wide.h).
  if (rows_fast && gpu::qmma_takes(f.id, to_gpu_dtype(xdtype), M) &&
      (M <= kQmmaAutoRows || gpu::qmma_wide_takes(f.id, to_gpu_dtype(xdtype), M, n, k, row_bytes)))
    return Path::Fused;
  // The fused kernel (register-blocked, x in registers, no shared-memory x tile: independent of
  // k) reads W once per 8 rows of x; dequantize+BLAS pays a full 16-bit write and read of W.
  // Quantized formats: fused up to M = 8 (benchmarks/results/bench_qmatmul_h200_v2.log). Dense
  // formats gain nothing from the fused kernel beyond M = 1..2 (no decode to save).
  int64_t fused_max_rows = f.block_elems == 1 ? 2 : 8;
  // Where qgemm takes over above the fused range, its time is flat up to M = 16 (one 16-row x
  // tile), so it wins earlier than M = 8 for the formats whose fused time grows fastest. From the
  // forced-path timings on the H200 (bench_qgemm_h200.log, bench_qmatmul_h200_v3.log), 70B FFN,
  // bf16 x: Q4_0 fused M=4 192 us vs qgemm 179 us; Q4_K/Q6_K/Q8_0 fused M=8 352/355/248 us vs
  // qgemm 244/309/234 us (fused M=4 still ahead); MXFP4 and Q5_K stay fused to M=8.
  if (qgemm_max_rows(f, xdtype) > 0) fused_max_rows = std::min(fused_max_rows, fused_rows_before_qgemm(f));
  if (M <= fused_max_rows) return Path::Fused;
  return M <= qgemm_max_rows(f, xdtype) ? Path::Qgemm : Path::DequantBlas;
}

at::Tensor dequantize_into(const QWeight& w, const at::Tensor& qw, const at::Tensor& sc, at::ScalarType dtype) {
  at::Tensor out = at::empty({w.n, w.k}, qw.options().dtype(dtype));
  check_launch(gpu::launch_dequantize(w.fmt->id, qw.data_ptr<uint8_t>(), sc.defined() ? sc.data_ptr<uint8_t>() : nullptr,
                                      w.n, w.k, w.row_bytes, out.data_ptr(), to_gpu_dtype(dtype),
                                      current_stream(qw.device())),
               "dequantize");
  return out;
}

at::Tensor dequantize_cuda(const at::Tensor& qweight, const std::optional<at::Tensor>& scales, int64_t qtype,
                           int64_t n, int64_t k, at::ScalarType dtype) {
  const QWeight w = check_qweight(qweight, scales, qtype, n, k, "dequantize");
  check_float_dtype(dtype, "dequantize", "dtype");
  const c10::DeviceGuard guard(qweight.device());
  return dequantize_into(w, qweight.contiguous(), scales_or_undefined(w, scales), dtype);
}

at::Tensor qmatmul_cuda(const at::Tensor& x, const at::Tensor& qweight, const std::optional<at::Tensor>& scales,
                        int64_t qtype, int64_t n, int64_t k, const std::optional<at::Tensor>& bias) {
  const QWeight w = check_qweight(qweight, scales, qtype, n, k, "qmatmul");
  check_activation(x, w, qweight, bias, "qmatmul");
  const c10::DeviceGuard guard(x.device());
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = n;
  at::Tensor x2 = x.reshape({-1, k}).contiguous();
  const int64_t M = x2.size(0);
  if (M == 0) return at::empty(out_shape, x.options());
  const at::Tensor qw = qweight.contiguous();
  const at::Tensor sc = scales_or_undefined(w, scales);
  const bool has_bias = bias.has_value() && bias->defined();

  // (x: null stands for an aligned x; the fused path copies an unaligned one)
  const bool rows_fast = gpu::qmatvec_fast_path(w.fmt->id, nullptr, qw.data_ptr<uint8_t>(), k, w.row_bytes);
  const Path path = choose_path(M, n, k, w.row_bytes, *w.fmt, x.device(), x.scalar_type(), rows_fast);
  if (path == Path::Qgemm && gpu::qgemm_supported(w.fmt->id, nullptr, M, n, k)) {
    if (reinterpret_cast<uintptr_t>(x2.data_ptr()) % 16 != 0) x2 = x2.clone(at::MemoryFormat::Contiguous);
    const at::Tensor b = has_bias ? bias->to(at::kFloat).contiguous() : at::Tensor();
    const gpu::QgemmPlan plan = gpu::qgemm_plan(w.fmt->id, M, n, k);
    at::Tensor ws;
    if (plan.workspace_bytes > 0) ws = at::empty({(int64_t)plan.workspace_bytes}, x.options().dtype(at::kByte));
    at::Tensor y = at::empty({M, n}, x.options());
    check_launch(gpu::launch_qgemm(w.fmt->id, x2.data_ptr(), to_gpu_dtype(x.scalar_type()), M, qw.data_ptr<uint8_t>(),
                                   sc.defined() ? sc.data_ptr<uint8_t>() : nullptr, n, k, w.row_bytes,
                                   b.defined() ? b.data_ptr<float>() : nullptr, y.data_ptr(),
                                   ws.defined() ? ws.data_ptr() : nullptr, plan.workspace_bytes,
                                   current_stream(x.device())),
                 "qmatmul");
    return y.view(out_shape);
  }
  if (path == Path::Fused) {
    // The fused kernel reads x with 16-byte loads: give it an aligned copy if x is a view.
    if (reinterpret_cast<uintptr_t>(x2.data_ptr()) % 16 != 0) x2 = x2.clone(at::MemoryFormat::Contiguous);
    const at::Tensor b = has_bias ? bias->to(at::kFloat).contiguous() : at::Tensor();
    at::Tensor y = at::empty({M, n}, x.options());
    const int64_t ws_bytes = gpu::qmatvec_workspace_bytes(w.fmt->id, x2.data_ptr(), to_gpu_dtype(x.scalar_type()), M,
                                                          qw.data_ptr<uint8_t>(), sc.defined() ? sc.data_ptr<uint8_t>() : nullptr,
                                                          n, k, w.row_bytes);
    at::Tensor ws;
    if (ws_bytes > 0) ws = at::empty({ws_bytes}, x.options().dtype(at::kByte));
    check_launch(gpu::launch_qmatvec(w.fmt->id, x2.data_ptr(), to_gpu_dtype(x.scalar_type()), M, qw.data_ptr<uint8_t>(),
                                     sc.defined() ? sc.data_ptr<uint8_t>() : nullptr, n, k, w.row_bytes,
                                     b.defined() ? b.data_ptr<float>() : nullptr, y.data_ptr(),
                                     ws.defined() ? ws.data_ptr() : nullptr, current_stream(x.device())),
                 "qmatmul");
    return y.view(out_shape);
  }
  // Prefill: W in x's dtype (fp32 stays fp32: exact), then the vendor BLAS (fp32 accumulation).
  // A dense weight already in x's dtype is used in place (a view of its bytes, no copy).
  const at::ScalarType dense = w.fmt->id == QT_F32 ? at::kFloat
                               : w.fmt->id == QT_F16 ? at::kHalf
                               : w.fmt->id == QT_BF16 ? at::kBFloat16
                                                      : at::ScalarType::Undefined;
  const bool in_place = dense == x.scalar_type() &&
                        reinterpret_cast<uintptr_t>(qw.data_ptr()) % c10::elementSize(dense) == 0;
  const at::Tensor W = in_place ? qw.view(dense).view({w.n, w.k}) : dequantize_into(w, qw, sc, x.scalar_type());
  at::Tensor y = has_bias ? at::addmm(bias->to(x.scalar_type()), x2, W.t()) : at::mm(x2, W.t());
  return y.view(out_shape);
}

// quantize on a GPU tensor: kernels/quantize.hip runs the per-block quantizers of
// kernels/quantize_blocks.h, the same functions as the CPU op (so the bytes are identical),
// one thread per block on the current stream: no host sync, capturable in a CUDA graph.
std::tuple<at::Tensor, at::Tensor> quantize_cuda(const at::Tensor& wt, int64_t qtype) {
  const c10::DeviceGuard guard(wt.device());
  const QuantizeJob j = prepare_quantize(wt, qtype);
  check_launch(gpu::launch_quantize(j.fmt->id, j.w.data_ptr<float>(), j.n, j.k, j.qweight.data_ptr<uint8_t>(),
                                    j.fmt->scale_plane ? j.scales.data_ptr<uint8_t>() : nullptr, /*mode=*/0,
                                    current_stream(j.w.device())),
               "quantize");
  return {j.qweight, j.scales};
}

}  // namespace

TORCH_LIBRARY_IMPL(rocq, CUDA, m) {
  m.impl("qmatmul", &qmatmul_cuda);
  m.impl("dequantize", &dequantize_cuda);
  m.impl("quantize", &quantize_cuda);
}

}  // namespace rocq::cuda
