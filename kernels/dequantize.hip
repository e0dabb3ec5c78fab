// GPU dequantize: W[n, k] decoded with the formats.h codecs (bit-exact with the CPU op: fp32
// decode, then one round-to-nearest-even conversion to the output dtype).
//
// Block formats with 16-byte aligned weights (the usual case) take the streaming kernel: a
// contiguous [n, row_bytes] weight is one stream of units (blocks) whose decoded elements form
// one contiguous stream of the [n, k] output, so rows do not matter. A CTA copies a chunk of
// kDqRuns 8-element runs' worth of units into shared memory with coalesced 16-byte loads, then
// each thread decodes runs t, t + 256, ... from shared memory (decode8) and writes each as one
// or two coalesced 16-byte stores; Q4_K, Q5_K, Q6_K and IQ4_XS decode 32 elements per thread
// and step instead (decode32.h), reading the block header once per 32. Everything else (dense formats, ragged k, unaligned
// pointers) takes the simple kernel: one thread per run, decode8 straight from global memory.
#include "decode32.h"

namespace rocq::gpu {
namespace {

constexpr int kDqThreads = 256;
constexpr int kDqRuns = 2048;  // 8-element runs per CTA of the streaming kernel (8 per thread)

template <class C>
struct DqChunk {
  static constexpr int RPU = C::kElems / 8;  // runs per unit
  static constexpr int kUnits = kDqRuns / RPU;
  static constexpr int kBytes = kUnits * C::kBytes;
  static_assert(kDqRuns % RPU == 0 && kBytes % 16 == 0, "a chunk is whole units and 16-byte vectors");
};

// Stores the 8 decoded values v at o (16-byte aligned for 16-bit outputs, 32 for fp32).
template <int OK>
ROCQ_DEVICE void dq_store8(typename XStore<OK>::T* o, const float (&v)[8]) {
  if constexpr (OK == (int)DType::F32) {
    float4* p = reinterpret_cast<float4*>(o);
    p[0] = make_float4(v[0], v[1], v[2], v[3]);
    p[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    uint32_t h[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      h[i] = OK == (int)DType::BF16
                 ? rq_pack2_bf16_exact(v[2 * i], v[2 * i + 1])
                 : (uint32_t)rq_from_float<OK>(v[2 * i]) | ((uint32_t)rq_from_float<OK>(v[2 * i + 1]) << 16);
    *reinterpret_cast<uint4*>(o) = make_uint4(h[0], h[1], h[2], h[3]);
  }
}

template <class C, int OK>
__global__ void __launch_bounds__(kDqThreads)
    dequant_stream_kernel(const uint8_t* qw, const uint8_t* sc, int64_t units, void* out_) {
  using Ch = DqChunk<C>;
  using T = typename XStore<OK>::T;
  __shared__ uint4 buf[Ch::kBytes / 16];
  const int64_t u0 = (int64_t)blockIdx.x * Ch::kUnits;
  const int64_t nbytes = units * C::kBytes;  // the whole weight stream
  const uint8_t* src = qw + u0 * C::kBytes;
  const int64_t left = nbytes - u0 * C::kBytes;  // bytes from the chunk start to the stream end
  for (int v = threadIdx.x; v < Ch::kBytes / 16; v += kDqThreads) {
    if ((int64_t)v * 16 + 16 <= left) {
      buf[v] = reinterpret_cast<const uint4*>(src)[v];
    } else if ((int64_t)v * 16 < left) {  // the stream's last, partial vector
      uint8_t* d = reinterpret_cast<uint8_t*>(&buf[v]);
      for (int j = 0; j < 16 && (int64_t)v * 16 + j < left; ++j) d[j] = src[v * 16 + j];
    }
  }
  __syncthreads();
  const uint8_t* sb = reinterpret_cast<const uint8_t*>(buf);
  T* out = static_cast<T*>(out_) + u0 * C::kElems;
  // K-quants and IQ4_XS (whose decode8 unpacks the sub-block scale for every run): measured
  // on the H200, 70B FFN to bf16, 260 -> 189 us Q4_K, 301 -> 225 Q5_K, 263 -> 236 Q6_K, 253 ->
  // 228 IQ4_XS; Q4_0, Q8_0 and MXFP4 stay on the run loop (157 vs 185, 188 vs 225, 222 vs 352).
  constexpr bool kWide = C::kId == QT_Q4_K || C::kId == QT_Q5_K || C::kId == QT_Q6_K || C::kId == QT_IQ4_XS;
  if constexpr (kWide && OK != (int)DType::F32) {
    // 32 elements per thread and step (the header read once per 32). A thread's 32 outputs are
    // 64-128 contiguous bytes: stored straight from each thread, a warp's store instruction
    // would touch 32 separate segments (measured: every format at 44% of copy). So each warp
    // stages its groups in shared memory and writes them out as contiguous 16-byte vectors;
    // the staging slots are rotated per pair of lanes so both sides are free of bank conflicts
    // (16-byte accesses go 8 lanes per 128-byte wavefront: lanes L and L + 4 of a rotation per
    // lane met in one bank group, 3.8M store conflicts in ncu on the H200 for Q5_K).
    // (16-bit outputs: fp32 keeps the run loop below, its staging would not fit beside the chunk)
    constexpr int WS = ROCQ_WARP_SIZE;
    constexpr int GPU = C::kElems / 32;            // 32-element groups per unit
    constexpr int VPG = 32 * (int)sizeof(T) / 16;  // 16-byte vectors per group (4)
    __shared__ uint4 stage[kDqThreads / WS][WS * VPG];
    uint4* st = stage[threadIdx.x / WS];
    const int lane = threadIdx.x % WS;
#pragma unroll
    for (int i = 0; i < kDqRuns / 4 / kDqThreads; ++i) {
      const int gi = i * kDqThreads + threadIdx.x;
      const int u = gi / GPU;
      const bool live = u0 + u < units;
      if (live) {
        const uint8_t scale = sc ? sc[u0 + u] : (uint8_t)0;
        float v[32];
        QgFast<C::kId>::dec32(sb + u * C::kBytes, scale, (gi % GPU) * 32, v);
        T tmp[32];
#pragma unroll
        for (int j = 0; j < 4; ++j) dq_store8<OK>(tmp + 8 * j, *reinterpret_cast<const float(*)[8]>(&v[8 * j]));
#pragma unroll
        for (int j = 0; j < VPG; ++j) st[lane * VPG + ((j + lane / 2) % VPG)] = reinterpret_cast<const uint4*>(tmp)[j];
      }
      rq_warp_sync();
      // the warp's groups are consecutive: vector c of the warp's output is vector c % VPG of
      // group (c / VPG), staged at slot (c / VPG) * VPG + ((c % VPG + c / VPG / 2) % VPG)
      const int gw = gi - lane;  // the warp's first group
      uint4* o = reinterpret_cast<uint4*>(out + (int64_t)gw * 32);
#pragma unroll
      for (int r = 0; r < VPG; ++r) {
        const int c = r * WS + lane, L = c / VPG, j = c % VPG;
        if (u0 + (gw + L) / GPU < units) o[c] = st[L * VPG + ((j + L / 2) % VPG)];
      }
      rq_warp_sync();
    }
  } else {
#pragma unroll
    for (int i = 0; i < kDqRuns / kDqThreads; ++i) {
      const int r = i * kDqThreads + threadIdx.x;
      const int u = r / Ch::RPU;
      if (u0 + u >= units) break;
      const uint8_t scale = sc ? sc[u0 + u] : (uint8_t)0;  // plane formats: one E8M0 byte per 32-element unit
      float v[8];
      C::decode8(sb + u * C::kBytes, scale, r % Ch::RPU, v);
      dq_store8<OK>(out + (int64_t)r * 8, v);
    }
  }
}

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
    dq_store8<OK>(o, v);
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
  // The stream view needs a contiguous weight of whole blocks (row_bytes = k / kElems * kBytes)
  // and 16-byte aligned chunk starts and outputs.
  const bool aligned = reinterpret_cast<uintptr_t>(qw) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 32 == 0;
  const bool known = dispatch_format(qtype, [&](auto codec) {
    using C = decltype(codec);
    if constexpr (C::kElems >= 32) {
      if (aligned && k % C::kElems == 0 && row_bytes == k / C::kElems * C::kBytes) {
        const int64_t units = n * (k / C::kElems);
        dequant_stream_kernel<C, OK>
            <<<(unsigned)rq_ceil_div(units, DqChunk<C>::kUnits), kDqThreads, 0, stream>>>(qw, sc, units, out);
        return;
      }
    }
    dequant_kernel<C, OK><<<grid, block, 0, stream>>>(qw, sc, n, k, row_bytes, out);
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
