// GPU dequantize: W[n, k] decoded with the formats.h codecs (bit-exact with the CPU op: fp32
// decode, then one round-to-nearest-even conversion to the output dtype).
// One thread per 8-element run: decode8 from the weight bytes, one or two 16-byte stores.
#include "qcommon.h"

namespace rocq::gpu {
namespace {

constexpr int kDqThreads = 256;

template <class C, int OK>
__global__ void __launch_bounds__(kDqThreads)
    dequant_kernel(const uint8_t* qw, const uint8_t* sc, int64_t n, int64_t k, int64_t row_bytes, void* out_) {
  using T = typename XStore<OK>::T;
  T* out = static_cast<T*>(out_);
  const int64_t runs = (k + 7) / 8;
  const int64_t t = (int64_t)blockIdx.x * kDqThreads + threadIdx.x;
  if (t >= n * runs) return;
  const int64_t row = t / runs, run = t - row * runs, e0 = 8 * run;
  const uint8_t* rowp = qw + row * row_bytes;
  T* o = out + row * k + e0;
  float v[8];
  if constexpr (C::kElems == 1) {
    if (e0 + 8 > k) {  // dense formats only: ragged tail of the row
      for (int64_t e = e0; e < k; ++e) {
        float f;
        C::decode_block(rowp + e * C::kBytes, 0, &f);
        out[row * k + e] = rq_from_float<OK>(f);
      }
      return;
    }
    C::decode8(rowp, 0, (int)run, v);
  } else {
    const uint8_t scale = sc ? sc[row * (k / 32) + e0 / 32] : (uint8_t)0;
    C::decode8(rowp + (e0 / C::kElems) * C::kBytes, scale, (int)((e0 % C::kElems) / 8), v);
  }
  if (k % 8 == 0) {  // 8-element runs are 16/32-byte aligned: vector stores
    if constexpr (OK == (int)DType::F32) {
      float4* p = reinterpret_cast<float4*>(o);
      p[0] = make_float4(v[0], v[1], v[2], v[3]);
      p[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      uint32_t h[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        h[i] = (uint32_t)rq_from_float<OK>(v[2 * i]) | ((uint32_t)rq_from_float<OK>(v[2 * i + 1]) << 16);
      *reinterpret_cast<uint4*>(o) = make_uint4(h[0], h[1], h[2], h[3]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = rq_from_float<OK>(v[j]);
  }
}

template <int OK>
const char* launch_dq(int qtype, const uint8_t* qw, const uint8_t* sc, int64_t n, int64_t k, int64_t row_bytes,
                      void* out, gpuStream_t stream) {
  const int64_t total = n * ((k + 7) / 8);
  const dim3 grid((unsigned)rq_ceil_div(total, kDqThreads)), block(kDqThreads);
  const bool known = dispatch_format(qtype, [&](auto codec) {
    dequant_kernel<decltype(codec), OK><<<grid, block, 0, stream>>>(qw, sc, n, k, row_bytes, out);
  });
  if (!known) return "rocq dequantize: unknown qtype";
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

}  // namespace

const char* launch_dequantize(int qtype, const uint8_t* qweight, const uint8_t* scales, int64_t n, int64_t k,
                              int64_t row_bytes, void* out, DType out_dtype, void* stream) {
  if (n <= 0 || k <= 0) return nullptr;
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  switch (out_dtype) {
    case DType::F32: return launch_dq<(int)DType::F32>(qtype, qweight, scales, n, k, row_bytes, out, s);
    case DType::F16: return launch_dq<(int)DType::F16>(qtype, qweight, scales, n, k, row_bytes, out, s);
    case DType::BF16: return launch_dq<(int)DType::BF16>(qtype, qweight, scales, n, k, row_bytes, out, s);
  }
  return "rocq dequantize: unknown output dtype";
}

}  // namespace rocq::gpu
