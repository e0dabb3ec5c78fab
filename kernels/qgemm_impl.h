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
//   2. per sub-chunk of KS = 64 elements, all threads decode their 8-element runs with the
//      format's codec (Codec<ID>::decode8: bit-exact fp32) from shared memory, round them once
//      to the operand type (bf16, or fp16 for fp16/fp32 x) into a [NT][KS] tile, and stage the
//      matching [MT][KS] tile of x, converted to the operand type;
//   3. each warp runs 16x16x16 matrix-unit products (platform.h RqMma) for its NF n-fragments x
//      all MT/16 m-fragments, fp32 accumulators in registers.
// Epilogue: y = acc (+ bias) in x's dtype, or, with split-k, fp32 partials to a workspace that
// qgemm_reduce sums in a fixed order (deterministic; no atomics).
//
// The grid's fastest dimension is the M tile, so CTAs that share weight rows run together and
// the second read of a weight tile (M > 64) comes from L2.
#pragma once

#include "launch_qgemm.h"
#include "qcommon.h"

namespace rocq::gpu {

// Tile shape: big tiles where the shared memory allows it (NVIDIA), 64-row tiles within AMD's
// 64 KB LDS. NT = kQgWarps * kQgNF * 16.
constexpr int kQgWarps = kRqLargeShared ? 8 : 4;
constexpr int kQgNF = kRqLargeShared ? 2 : 1;  // 16-row weight fragments per warp
constexpr int kQgNT = kQgWarps * kQgNF * 16;   // weight rows per CTA
constexpr int kQgKS = 64;                      // k elements decoded per sub-chunk
constexpr int kQgLd = kQgKS + 8;               // shared row stride (elements): 144 B, 16-aligned,
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
  // raw chunk: whole blocks, about 128..256 bytes per row
  static constexpr int RKC = UE == 256 ? 256 : (UE == 32 ? (UB <= 20 ? 256 : 128) : 64);
  static constexpr int CB = RKC / UE * UB;        // bytes of one row in one chunk
  static constexpr int NVEC = (CB + 15 + 15) / 16;  // 16-byte copies per row (offset up to 15)
  static constexpr int RS = NVEC * 16;            // shared bytes per row per stage
  static constexpr int STAGE = kQgNT * RS;
  static constexpr int NQ = RKC / kQgKS;          // sub-chunks per chunk
  static_assert(RKC % kQgKS == 0 && RKC % UE == 0, "chunk must be whole blocks and sub-chunks");
  static constexpr int smem_bytes(int mt) { return 2 * STAGE + (kQgNT + mt) * kQgLd * 2; }
};

// 8 floats -> 8 operand values (RNE), packed.
template <RqOp OP>
ROCQ_DEVICE uint4 qg_pack8(const float (&v)[8]) {
  uint32_t h[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (OP == RqOp::BF16)
      h[i] = (uint32_t)rq_float_to_bf16_bits(v[2 * i]) | ((uint32_t)rq_float_to_bf16_bits(v[2 * i + 1]) << 16);
    else
      h[i] = (uint32_t)rq_f32_to_f16(v[2 * i]) | ((uint32_t)rq_f32_to_f16(v[2 * i + 1]) << 16);
  }
  return make_uint4(h[0], h[1], h[2], h[3]);
}

template <int XK>
constexpr RqOp qg_op() {
  return XK == (int)DType::BF16 ? RqOp::BF16 : RqOp::F16;
}

template <int ID, int XK, int MT>
__global__ void __launch_bounds__(kQgThreads, 1) qgemm_kernel(QgArgs a) {
  using C = Codec<ID>;
  using G = QgGeom<C>;
  constexpr RqOp OP = qg_op<XK>();
  using MMA = RqMma<OP>;
  using T = typename XStore<XK>::T;
  constexpr int NTH = kQgThreads;
  constexpr int FM = MT / 16;
  constexpr int RUNS = kQgKS / 8;  // 8-element runs per shared row

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
    for (int i = tid; i < kQgNT * G::NVEC; i += NTH) {
      const int r = i / G::NVEC, v = i - r * G::NVEC;
      const int64_t row = n0 + r;
      if (row >= a.n) continue;
      const uint8_t* p = a.qw + row * a.row_bytes + kb;
      const uint8_t* base = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)15);
      if (base + 16 * v < p + bytes) rq_cp_async16(dst + r * G::RS + 16 * v, base + 16 * v);
    }
    rq_cp_async_commit();
  };

  typename MMA::Acc acc[kQgNF][FM];
#pragma unroll
  for (int f = 0; f < kQgNF; ++f)
#pragma unroll
    for (int mi = 0; mi < FM; ++mi)
#pragma unroll
      for (int e = 0; e < MMA::kCRegs; ++e) rq_acc<OP>(acc[f][mi], e) = 0.f;

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
      // 2a. decode NT x KS weights
      for (int i = tid; i < kQgNT * RUNS; i += NTH) {
        const int r = i / RUNS, j = i - r * RUNS;
        const int el = q * kQgKS + 8 * j;  // element within the chunk
        const int64_t row = n0 + r;
        uint4 pk = make_uint4(0u, 0u, 0u, 0u);
        if (row < a.n && ks + 8 * j < a.k) {
          const uint8_t* p = a.qw + row * a.row_bytes + c * G::CB;
          const uint8_t* rp = src + r * G::RS + (int)(reinterpret_cast<uintptr_t>(p) & 15);
          float v[8];
          if constexpr (C::kElems == 1) {
            C::decode8(rp, 0, el / 8, v);
          } else {
            const uint8_t scale = a.sc ? a.sc[row * (a.k / 32) + (ks + 8 * j) / 32] : (uint8_t)0;
            C::decode8(rp + (el / G::UE) * G::UB, scale, (el % G::UE) / 8, v);
          }
          pk = qg_pack8<OP>(v);
        }
        *reinterpret_cast<uint4*>(wd + r * kQgLd + 8 * j) = pk;
      }
      // 2b. stage MT x KS of x as operands
      for (int i = tid; i < MT * RUNS; i += NTH) {
        const int m = i / RUNS, j = i - m * RUNS;
        const int64_t gm = m0 + m, e = ks + 8 * j;
        uint4 pk = make_uint4(0u, 0u, 0u, 0u);
        if (gm < a.M && e < a.k) {
          const T* p = xg + gm * a.k + e;
          if constexpr (XK == (int)DType::F32) {
            const float4 u = reinterpret_cast<const float4*>(p)[0], w = reinterpret_cast<const float4*>(p)[1];
            const float v[8] = {u.x, u.y, u.z, u.w, w.x, w.y, w.z, w.w};
            pk = qg_pack8<OP>(v);
          } else {
            pk = *reinterpret_cast<const uint4*>(p);  // bf16 -> bf16, fp16 -> fp16: as is
          }
        }
        *reinterpret_cast<uint4*>(xs + m * kQgLd + 8 * j) = pk;
      }
      __syncthreads();
      // 3. matrix-unit products
#pragma unroll
      for (int s = 0; s < kQgKS / 16; ++s) {
        if (ks + 16 * s >= a.k) break;
        typename MMA::Frag af[kQgNF];
#pragma unroll
        for (int f = 0; f < kQgNF; ++f) MMA::load(af[f], wd + ((warp * kQgNF + f) * 16) * kQgLd + 16 * s, kQgLd);
#pragma unroll
        for (int mi = 0; mi < FM; ++mi) {
          typename MMA::Frag bf;
          MMA::load(bf, xs + (mi * 16) * kQgLd + 16 * s, kQgLd);
#pragma unroll
          for (int f = 0; f < kQgNF; ++f) MMA::mma(acc[f][mi], af[f], bf);
        }
      }
      __syncthreads();
    }
  }

  // epilogue
  T* yg = static_cast<T*>(a.y);
#pragma unroll
  for (int f = 0; f < kQgNF; ++f)
#pragma unroll
    for (int mi = 0; mi < FM; ++mi)
#pragma unroll
      for (int e = 0; e < MMA::kCRegs; ++e) {
        const int64_t row = n0 + (warp * kQgNF + f) * 16 + MMA::c_row(lane, e);
        const int64_t m = m0 + mi * 16 + MMA::c_col(lane, e);
        if (row < a.n && m < a.M) {
          float v = rq_acc<OP>(acc[f][mi], e);
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
  const dim3 grid((unsigned)p.m_tiles, (unsigned)p.n_tiles, (unsigned)p.splits), block(kQgThreads);
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
