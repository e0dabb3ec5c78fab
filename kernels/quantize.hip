// GPU quantize: one thread per block (one per 32-element group for the planar OCP MX formats,
// one per element for the dense formats) runs Quantizer<ID>::block of kernels/quantize_blocks.h,
// the same code the CPU reference runs, so the bytes match the CPU op's exactly.
//
// That needs IEEE fp32/fp64 arithmetic with no contraction: this file is compiled with
// --fmad=false (nvcc) / -ffp-contract=off (HIP clang), IEEE division and square root and fp32
// denormals kept (see CMakeLists.txt); never with fast-math.
//
// The per-thread work is a small search over scales (K-quants: a few thousand flops per
// element) with its arrays in thread-local memory; the grid is large (one thread per block of
// the whole weight), so the device is filled for any real layer.
#include "launch_quantize.h"
#include "quantize_blocks.h"

namespace rocq::gpu {
namespace {

constexpr int kQuantThreads = 64;
constexpr int64_t kMaxQuantGrid = 1 << 20;  // blocks; a grid-stride loop covers the rest

template <class Q>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_kernel(const float* w, int64_t nblocks, uint8_t* out, uint8_t* scales, int mode) {
  const int64_t stride = (int64_t)gridDim.x * kQuantThreads;
  for (int64_t g = (int64_t)blockIdx.x * kQuantThreads + threadIdx.x; g < nblocks; g += stride) {
    uint8_t* sc = nullptr;
    if constexpr (Q::kScalePlane) sc = scales + g;
    Q::block(w + g * Q::kElems, out + g * Q::kBytes, sc, mode);
  }
}

}  // namespace

const char* launch_quantize(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales,
                            int mode, void* stream) {
  if (n < 0 || k < 0) return "rocq quantize: negative size";
  if (n == 0 || k == 0) return nullptr;
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  const char* err = nullptr;
  const bool known = quant::dispatch_quantizer(qtype, [&](auto qz) {
    using Q = decltype(qz);
    if (k % Q::kElems != 0) {
      err = "rocq quantize: k is not a multiple of the block size";
      return;
    }
    if constexpr (Q::kScalePlane) {
      if (scales == nullptr) {
        err = "rocq quantize: missing scale plane";
        return;
      }
      if (mode != quant::kMxScaleSpec && mode != quant::kMxScaleEven) {
        err = "rocq quantize: unknown MX scale mode";
        return;
      }
    }
    const int64_t nblocks = n * (k / Q::kElems);
    int64_t grid = (nblocks + kQuantThreads - 1) / kQuantThreads;
    if (grid > kMaxQuantGrid) grid = kMaxQuantGrid;
    quantize_kernel<Q><<<dim3((unsigned)grid), dim3(kQuantThreads), 0, s>>>(w, nblocks, out, scales, mode);
  });
  if (!known) return "rocq quantize: no quantizer for this qtype";
  if (err) return err;
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

}  // namespace rocq::gpu
