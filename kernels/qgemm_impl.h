// The middle-regime kernel (M about 8..256): y[M, n] = x[M, k] @ W^T with every weight byte
// streamed once per CTA through the matrix units. Included by qgemm_{f32,f16,bf16}.hip (one
// activation dtype per file, so they compile in parallel) and qgemm.hip (planning, split-k
// reduction, the public launch function).
//
// One CTA owns NT consecutive weight rows (output features) x MT rows of x (16, 32 or 64) and a
// range of k (split-k: grid.z). It walks its k range in raw chunks of RKC elements:
//   1. the chunk's weight bytes of all NT rows are copied to shared memory with coalesced
//      16-byte asynchronous copies (rq_cp_async16), one chunk ahead of the math (two stages).
//      Blocks need not be 16-byte aligned (Q4_0 is 18 bytes, MXFP4 17): each row's copy starts
//      at the 16-byte boundary at or below its first byte and the decoder skips the offset;
//   2. per sub-chunk of KS = 128 elements, each thread decodes whole 32-element groups from
//      shared memory (qg_decode32: the format's codec, Codec<ID>::decode8, bit-exact fp32, or
//      for Q4_0/Q8_0/Q4_K/MXFP4 a word-level decoder that yields the same fp32 values), rounds
//      them once to the operand type (bf16, or fp16 for fp16/fp32 x) into a [NT][KS] tile, and
//      stages the matching [MT][KS] tile of x, converted to the operand type;
//   3. warp w runs 16x16x16 matrix-unit products (platform.h RqMma) for weight rows
//      16w..16w+15 x all MT/16 fragments of x, fp32 accumulators in registers.
// Epilogue: y = acc (+ bias) in x's dtype, or, with split-k, fp32 partials to a workspace that
// qgemm_reduce sums in a fixed order (deterministic; no atomics).
//
// The grid's fastest dimension is the M tile, so CTAs that share weight rows run together and
// the second read of a weight tile (M > 64) comes from L2.
#pragma once

#include "launch_qgemm.h"
#include "decode32.h"

namespace rocq::gpu {

// Tile shape: NT = kQgWarps * 16 weight rows per CTA (one 16-row fragment per warp): 128 on
// NVIDIA (~70-100 KB of shared memory: 2-3 CTAs per SM, so one CTA's decode overlaps another's
// math and copies), 64 within AMD's 64 KB of LDS.
constexpr int kQgWarps = kRqLargeShared ? 8 : 4;
constexpr int kQgNT = kQgWarps * 16;           // weight rows per CTA
constexpr int kQgKS = 128;                     // k elements decoded per sub-chunk
constexpr int kQgLd = kQgKS + 8;               // shared row stride (elements): 272 B, 16-aligned,
                                               // conflict-free 8-row fragment loads
constexpr int kQgThreads = kQgWarps * ROCQ_WARP_SIZE;

struct QgArgs {
  const void* x;
  void* y;
  float* ws;  // split-k partials [splits][M][n], or null
  const uint8_t* qw;
  const uint8_t* sc;
  const float* bias;
  int64_t M, n, k, row_bytes;
  int64_t chunks, cps;  // raw chunks per row, chunks per split
};

template <class C>
struct QgGeom {
  static constexpr int UE = Unit<C>::kElems, UB = Unit<C>::kBytes;
  // raw chunk: whole blocks, 128..340 bytes per row, a multiple of 16 bytes where the block
  // size allows (then rows of 16-aligned length stay 16-aligned chunk after chunk)
  static constexpr int RKC = UE == 8 ? 128 : (UE == 256 ? 256 : (UB % 2 ? 512 : 256));
  static constexpr int CB = RKC / UE * UB;          // bytes of one row in one chunk
  static constexpr int NVEC = (CB + 15 + 15) / 16;  // 16-byte copies per row (offset up to 15)
  static constexpr int RS = NVEC * 16;              // shared bytes per row per stage
  static constexpr int STAGE = kQgNT * RS;
  static constexpr int NQ = RKC / kQgKS;            // sub-chunks per chunk
  static_assert(RKC % kQgKS == 0 && RKC % UE == 0, "chunk must be whole blocks and sub-chunks");
  static constexpr int smem_bytes(int mt) { return 2 * STAGE + (kQgNT + mt) * kQgLd * 2; }
};

// Decoding 32 consecutive elements of one row: decode32.h (QgFast), or four Codec::decode8.
// 32 elements starting at element `el` (a multiple of 32) of a chunk whose row bytes start at rp.
template <class C>
ROCQ_DEVICE void qg_decode32(const uint8_t* rp, int el, uint8_t scale, float (&o)[32]) {
  using G = QgGeom<C>;
  if constexpr (C::kElems == 1) {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) C::decode8(rp, 0, el / 8 + jj, *reinterpret_cast<float(*)[8]>(&o[8 * jj]));
  } else {
    const uint8_t* blk = rp + (el / G::UE) * G::UB;
    const int e32 = el % G::UE;
    if constexpr (QgFast<C::kId>::kOn) {
      QgFast<C::kId>::dec32(blk, scale, e32, o);
    } else {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) C::decode8(blk, scale, e32 / 8 + jj, *reinterpret_cast<float(*)[8]>(&o[8 * jj]));
    }
  }
}

// 8 floats -> 8 operand values (RNE), packed.
template <RqOp OP>
ROCQ_DEVICE uint4 qg_pack8(const float (&v)[8]) {
  return make_uint4(rq_pack2_op<OP>(v[0], v[1]), rq_pack2_op<OP>(v[2], v[3]), rq_pack2_op<OP>(v[4], v[5]),
                    rq_pack2_op<OP>(v[6], v[7]));
}

template <int XK>
constexpr RqOp qg_op() {
  return XK == (int)DType::BF16 ? RqOp::BF16 : RqOp::F16;
}

template <int ID, int XK, int MT>
__global__ void __launch_bounds__(kQgThreads, 2) qgemm_kernel(QgArgs a) {
  using C = Codec<ID>;
  using G = QgGeom<C>;
  constexpr RqOp OP = qg_op<XK>();
  using MMA = RqMma<OP>;
  using T = typename XStore<XK>::T;
  constexpr int NTH = kQgThreads;
  constexpr int FM = MT / 16;
  constexpr int G32 = kQgKS / 32;                               // 32-element groups per shared row
  constexpr int DEC_IT = (kQgNT * G32 + NTH - 1) / NTH;         // groups per thread per sub-chunk
  constexpr int X_IT = (MT * (kQgKS / 8) + NTH - 1) / NTH;      // 8-element x runs per thread
  constexpr int CP_IT = (kQgNT * G::NVEC + NTH - 1) / NTH;      // 16-byte copies per thread

  extern __shared__ uint4 qg_smem[];
  uint8_t* raw = reinterpret_cast<uint8_t*>(qg_smem);
  uint16_t* wd = reinterpret_cast<uint16_t*>(raw + 2 * G::STAGE);
  uint16_t* xs = wd + kQgNT * kQgLd;

  const int tid = threadIdx.x, warp = tid / ROCQ_WARP_SIZE, lane = tid % ROCQ_WARP_SIZE;
  const int64_t m0 = (int64_t)blockIdx.x * MT, n0 = (int64_t)blockIdx.y * kQgNT;
  const int64_t c0 = (int64_t)blockIdx.z * a.cps;
  const int64_t c1 = c0 + a.cps < a.chunks ? c0 + a.cps : a.chunks;
  const int64_t row_data = a.k / G::UE * G::UB;  // bytes of weight data per row
  const T* xg = static_cast<const T*>(a.x);

  // 1. asynchronous copy of chunk c of all rows into stage st
  auto issue = [&](int64_t c, int st) {
    uint8_t* dst = raw + st * G::STAGE;
    const int64_t kb = c * G::CB;
    const int64_t bytes = row_data - kb < G::CB ? row_data - kb : G::CB;
#pragma unroll
    for (int it = 0; it < CP_IT; ++it) {
      const int i = tid + it * NTH;
      const int r = i / G::NVEC, v = i - r * G::NVEC;
      const int64_t row = n0 + r;
      if (i < kQgNT * G::NVEC && row < a.n) {
        const uint8_t* p = a.qw + row * a.row_bytes + kb;
        const uint8_t* base = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)15);
        if (base + 16 * v < p + bytes) rq_cp_async16(dst + r * G::RS + 16 * v, base + 16 * v);
      }
    }
    rq_cp_async_commit();
  };

  typename MMA::Acc acc[FM];
#pragma unroll
  for (int mi = 0; mi < FM; ++mi)
#pragma unroll
    for (int e = 0; e < MMA::kCRegs; ++e) rq_acc<OP>(acc[mi], e) = 0.f;

  if (c0 < c1) issue(c0, 0);
  for (int64_t c = c0; c < c1; ++c) {
    const int st = (int)((c - c0) & 1);
    if (c + 1 < c1) {
      issue(c + 1, st ^ 1);
      rq_cp_async_wait<1>();
    } else {
      rq_cp_async_wait<0>();
    }
    __syncthreads();
    const uint8_t* src = raw + st * G::STAGE;
    for (int q = 0; q < G::NQ; ++q) {
      const int64_t ks = c * G::RKC + q * kQgKS;  // first k of this sub-chunk
      if (ks >= a.k) break;                       // uniform across the CTA
      // 2a. decode NT x KS weights: each thread takes whole 32-element groups (decoded into
      // registers, then four 16-byte stores).
#pragma unroll
      for (int it = 0; it < DEC_IT; ++it) {
        const int i = tid + it * NTH;
        const int r = i / G32, g = i - r * G32;
        const int64_t row = n0 + r;
        if (i < kQgNT * G32) {
          float v[32];
          if (row < a.n && ks + 32 * g < a.k) {
            const uint8_t* p = a.qw + row * a.row_bytes + c * G::CB;
            const uint8_t* rp = src + r * G::RS + (int)(reinterpret_cast<uintptr_t>(p) & 15);
            const uint8_t scale = a.sc ? a.sc[row * (a.k / 32) + (ks + 32 * g) / 32] : (uint8_t)0;
            qg_decode32<C>(rp, q * kQgKS + 32 * g, scale, v);
          } else {
#pragma unroll
            for (int e = 0; e < 32; ++e) v[e] = 0.f;
          }
          uint4* dst = reinterpret_cast<uint4*>(wd + r * kQgLd + 32 * g);
#pragma unroll
          for (int s4 = 0; s4 < 4; ++s4) dst[s4] = qg_pack8<OP>(*reinterpret_cast<const float(*)[8]>(&v[8 * s4]));
        }
      }
      // 2b. stage MT x KS of x as operands
#pragma unroll
      for (int it = 0; it < X_IT; ++it) {
        const int i = tid + it * NTH;
        const int m = i / (kQgKS / 8), j = i - m * (kQgKS / 8);
        if (i < MT * (kQgKS / 8)) {
          const int64_t gm = m0 + m, e = ks + 8 * j;
          uint4 pk = make_uint4(0u, 0u, 0u, 0u);
          if (gm < a.M && e < a.k) {
            const T* p = xg + gm * a.k + e;
            if constexpr (XK == (int)DType::F32) {
              const float4 u = reinterpret_cast<const float4*>(p)[0], w = reinterpret_cast<const float4*>(p)[1];
              const float f[8] = {u.x, u.y, u.z, u.w, w.x, w.y, w.z, w.w};
              pk = qg_pack8<OP>(f);
            } else {
              pk = *reinterpret_cast<const uint4*>(p);  // bf16 -> bf16, fp16 -> fp16: as is
            }
          }
          *reinterpret_cast<uint4*>(xs + m * kQgLd + 8 * j) = pk;
        }
      }
      __syncthreads();
      // 3. matrix-unit products: warp w owns weight rows 16w..16w+15, all MT rows of x
#pragma unroll
      for (int s = 0; s < kQgKS / 16; ++s) {
        if (ks + 16 * s >= a.k) break;
        typename MMA::Frag af;
        MMA::load(af, wd + (warp * 16) * kQgLd + 16 * s, kQgLd);
#pragma unroll
        for (int mi = 0; mi < FM; ++mi) {
          typename MMA::Frag bf;
          MMA::load(bf, xs + (mi * 16) * kQgLd + 16 * s, kQgLd);
          MMA::mma(acc[mi], af, bf);
        }
      }
      __syncthreads();
    }
  }

  // epilogue
  T* yg = static_cast<T*>(a.y);
#pragma unroll
  for (int mi = 0; mi < FM; ++mi)
#pragma unroll
    for (int e = 0; e < MMA::kCRegs; ++e) {
      const int64_t row = n0 + warp * 16 + MMA::c_row(lane, e);
      const int64_t m = m0 + mi * 16 + MMA::c_col(lane, e);
      if (row < a.n && m < a.M) {
        float v = rq_acc<OP>(acc[mi], e);
        if (a.ws) {
          a.ws[((int64_t)blockIdx.z * a.M + m) * a.n + row] = v;
        } else {
          if (a.bias) v += a.bias[row];
          yg[m * a.n + row] = rq_from_float<XK>(v);
        }
      }
    }
}

// Launches the tile kernel for one activation dtype (defined in qgemm_<dtype>.hip).
template <int XK>
const char* qgemm_launch_dtype(int qtype, const QgArgs& a, const QgemmPlan& p, gpuStream_t stream);

template <int ID, int XK, int MT>
const char* qgemm_launch_one(const QgArgs& a, const QgemmPlan& p, gpuStream_t stream) {
  using G = QgGeom<Codec<ID>>;
  constexpr int smem = G::smem_bytes(MT);
  // (per call: the attribute belongs to the current device's context; the call is host-only)
  const gpuError_t attr = rq_func_set_max_dynamic_smem((const void*)qgemm_kernel<ID, XK, MT>, smem);
  if (attr != ROCQ_GPU_SUCCESS) return "rocq qgemm: this device cannot give the kernel its shared memory";
  // kQgWarps warps of the device's width (the kernel's kQgThreads in its own device pass; the
  // host pass cannot know the AMD wavefront width)
  const int ws = rq_device_warp_size();
  if (ws != 32 && ws != 64) return "rocq qgemm: could not read the device's warp size";
  const dim3 grid((unsigned)p.m_tiles, (unsigned)p.n_tiles, (unsigned)p.splits), block((unsigned)(kQgWarps * ws));
  qgemm_kernel<ID, XK, MT><<<grid, block, smem, stream>>>(a);
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

template <int XK>
const char* qgemm_launch_impl(int qtype, const QgArgs& a, const QgemmPlan& p, gpuStream_t stream) {
  const char* err = "rocq qgemm: unknown qtype";
  dispatch_format(qtype, [&](auto codec) {
    constexpr int ID = decltype(codec)::kId;
    if (p.mt == 16) err = qgemm_launch_one<ID, XK, 16>(a, p, stream);
    else if (p.mt == 32) err = qgemm_launch_one<ID, XK, 32>(a, p, stream);
    else err = qgemm_launch_one<ID, XK, 64>(a, p, stream);
  });
  return err;
}

}  // namespace rocq::gpu
