// GPU dequantize: W[n, k] decoded with the formats.h codecs (bit-exact with the CPU op: fp32
// decode, then one round-to-nearest-even conversion to the output dtype).
//
// Block formats with 16-byte aligned weights (the usual case) take the streaming kernel: a
// contiguous [n, row_bytes] weight is one stream of units (blocks) whose decoded elements form
// one contiguous stream of the [n, k] output, so rows do not matter. A CTA copies a chunk of
// kDqRuns 8-element runs' worth of units into shared memory with coalesced 16-byte loads, then
// decodes it from shared memory: the formats with a word-level decoder (decode32.h QgFast: the
// GGUF block formats) 32 elements per thread and step, the others (OCP MX) and every fp32
// output 8-element runs t, t + 256, ... (Codec::decode8); either way the outputs leave as
// coalesced 16-byte vectors. Everything else (dense formats, ragged k, unaligned pointers) takes
// the simple kernel: one thread per run, decode8 straight from global memory.
//
// This kernel is half of the prefill path (dequantize + BLAS, M above the fused kernels' range),
// so its time is that path's overhead over bf16 BLAS. H200, 70B FFN up to bf16, us, before ->
// after session 13 (bench_qmatmul_h200_s13b_dq.json -> s13c_dq_w1.json; copy of the same bytes
// about 140): Q4_K 180 -> 152, IQ4_NL 184 -> 153, IQ4_XS 184 -> 151, MXFP4 195 -> 151, Q5_K 197
// -> 163, Q6_K 206 -> 167, Q5_0 183 -> 163, Q2_K 180 -> 164, Q3_K 223 -> 203, Q4_0 157 -> 152.
// What changed: whole chunks (all but the last) drop every bound (per copy, run and store, in
// 64 bits: ncu had the kernels issuing 0.72-0.75 instructions per cycle at 60-77% of DRAM
// bandwidth, 18 instructions an element for Q4_K, benchmarks/results/ncu_dequant_*_s13b.txt);
// bf16 stores convert a whole run or group in hardware with one NaN test for it, not a branch
// per pair (rq_pack_bf16_exact_n); Q4_0, Q8_0, IQ4_NL and MXFP4 moved to the 32-element
// decoders (s13c_dq_w0 -> w1: IQ4_NL 166 -> 153, MXFP4 181 -> 151, Q4_0 155 -> 152), then Q4_1,
// Q5_0, Q5_1, Q2_K and Q3_K too (s13c_dq_w1 -> s13h_dq: Q3_K 203 -> 156, Q2_K 164 -> 147, Q5_1
// 202 (s13b) -> 164, Q5_0 and Q4_1 within 2%).
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

// N decoded values v as output elements at o (16-byte aligned for 16-bit outputs, 32 for fp32):
// N / 8 16-byte vectors of 16-bit values, N / 4 of fp32.
template <int OK, int N>
ROCQ_DEVICE void dq_pack(const float* v, uint4* o) {
  if constexpr (OK == (int)DType::F32) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) o[i] = make_uint4(rq_float_to_bits(v[4 * i]), rq_float_to_bits(v[4 * i + 1]),
                                                      rq_float_to_bits(v[4 * i + 2]), rq_float_to_bits(v[4 * i + 3]));
  } else {
    uint32_t h[N / 2];
    if constexpr (OK == (int)DType::BF16) {
      rq_pack_bf16_exact_n<N / 2>(v, h);
    } else {
#pragma unroll
      for (int i = 0; i < N / 2; ++i)
        h[i] = (uint32_t)rq_from_float<OK>(v[2 * i]) | ((uint32_t)rq_from_float<OK>(v[2 * i + 1]) << 16);
    }
#pragma unroll
    for (int i = 0; i < N / 8; ++i) o[i] = make_uint4(h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]);
  }
}

// The formats that decode 32 elements per thread and step (decode32.h QgFast) with 16-bit
// outputs (fp32 keeps the run loop: its staging would not fit beside the chunk).
template <class C, int OK>
inline constexpr bool kDqWide = QgFast<C::kId>::kOn && OK != (int)DType::F32;

template <class C, int OK, bool WIDE>
__global__ void __launch_bounds__(kDqThreads)
    dequant_stream_kernel(const uint8_t* qw, const uint8_t* sc, int64_t units, void* out_) {
  using Ch = DqChunk<C>;
  using T = typename XStore<OK>::T;
  __shared__ uint4 buf[Ch::kBytes / 16];
  const int64_t u0 = (int64_t)blockIdx.x * Ch::kUnits;
  // Every chunk but the last is whole: no bounds anywhere below (per-copy, per-run and per-store
  // 64-bit bounds were a third of the run loop's instructions).
  const bool whole = u0 + Ch::kUnits <= units;
  const int nu = whole ? Ch::kUnits : (int)(units - u0);  // units in this chunk
  const uint4* src = reinterpret_cast<const uint4*>(qw + u0 * C::kBytes);
  if (whole) {
    constexpr int NV = Ch::kBytes / 16;
#pragma unroll
    for (int i = 0; i < (NV + kDqThreads - 1) / kDqThreads; ++i) {
      const int v = i * kDqThreads + threadIdx.x;
      if (NV % kDqThreads == 0 || v < NV) buf[v] = src[v];
    }
  } else {
    const int left = nu * C::kBytes;  // bytes from the chunk start to the stream end
    for (int v = threadIdx.x; v < Ch::kBytes / 16; v += kDqThreads) {
      if (v * 16 + 16 <= left) {
        buf[v] = src[v];
      } else if (v * 16 < left) {  // the stream's last, partial vector
        uint8_t* d = reinterpret_cast<uint8_t*>(&buf[v]);
        const uint8_t* s = reinterpret_cast<const uint8_t*>(src);
        for (int j = 0; v * 16 + j < left; ++j) d[j] = s[v * 16 + j];
      }
    }
  }
  __syncthreads();
  const uint8_t* sb = reinterpret_cast<const uint8_t*>(buf);
  const uint8_t* scu = sc ? sc + u0 : nullptr;  // plane formats: one E8M0 byte per 32-element unit
  T* out = static_cast<T*>(out_) + u0 * C::kElems;
  if constexpr (WIDE) {
    // 32 elements per thread and step (the header read once per 32). A thread's 32 outputs are
    // 64 contiguous bytes: stored straight from each thread, a warp's store instruction would
    // touch 32 separate segments (measured: every format at 44% of copy). So each warp stages
    // its groups in shared memory and writes them out as contiguous 16-byte vectors; the
    // staging slots are rotated per pair of lanes so both sides are free of bank conflicts
    // (16-byte accesses go 8 lanes per 128-byte wavefront: lanes L and L + 4 of a rotation per
    // lane met in one bank group, 3.8M store conflicts in ncu on the H200 for Q5_K).
    constexpr int WS = ROCQ_WARP_SIZE;
    constexpr int GPU = C::kElems / 32;            // 32-element groups per unit
    constexpr int VPG = 32 * (int)sizeof(T) / 16;  // 16-byte vectors per group (4)
    static_assert(VPG == 4, "16-bit outputs");
    __shared__ uint4 stage[kDqThreads / WS][WS * VPG];
    uint4* st = stage[threadIdx.x / WS];
    const int lane = threadIdx.x % WS;
    const int ng = nu * GPU;  // groups in this chunk
#pragma unroll
    for (int i = 0; i < kDqRuns / 4 / kDqThreads; ++i) {
      const int gi = i * kDqThreads + threadIdx.x;
      if (whole || gi < ng) {
        const int u = gi / GPU;
        float v[32];
        QgFast<C::kId>::dec32(sb + u * C::kBytes, scu ? scu[u] : (uint8_t)0, (gi % GPU) * 32, v);
        uint4 o[VPG];
        dq_pack<OK, 32>(v, o);
#pragma unroll
        for (int j = 0; j < VPG; ++j) st[lane * VPG + ((j + lane / 2) % VPG)] = o[j];
      }
      rq_warp_sync();
      // the warp's groups are consecutive: vector c of the warp's output is vector c % VPG of
      // group (c / VPG), staged at slot (c / VPG) * VPG + ((c % VPG + c / VPG / 2) % VPG)
      const int gw = gi - lane;  // the warp's first group
      uint4* o = reinterpret_cast<uint4*>(out) + gw * VPG;
#pragma unroll
      for (int r = 0; r < VPG; ++r) {
        const int c = r * WS + lane, L = c / VPG, j = c % VPG;
        if (whole || gw + L < ng) o[c] = st[L * VPG + ((j + L / 2) % VPG)];
      }
      rq_warp_sync();
    }
  } else {
    constexpr int VPR = 8 * (int)sizeof(T) / 16;  // 16-byte vectors per run (1, fp32 2)
    const int nr = nu * Ch::RPU;                   // runs in this chunk
#pragma unroll
    for (int i = 0; i < kDqRuns / kDqThreads; ++i) {
      const int r = i * kDqThreads + threadIdx.x;
      if (!whole && r >= nr) break;
      const int u = r / Ch::RPU;
      float v[8];
      C::decode8(sb + u * C::kBytes, scu ? scu[u] : (uint8_t)0, r % Ch::RPU, v);
      dq_pack<OK, 8>(v, reinterpret_cast<uint4*>(out) + r * VPR);
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
    dq_pack<OK, 8>(v, reinterpret_cast<uint4*>(o));
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
        const unsigned g = (unsigned)rq_ceil_div(units, DqChunk<C>::kUnits);
        dequant_stream_kernel<C, OK, kDqWide<C, OK>><<<g, kDqThreads, 0, stream>>>(qw, sc, units, out);
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
