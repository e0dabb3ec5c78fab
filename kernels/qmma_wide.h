// The matrix-unit kernel for many rows of x (M = 9..64: 2, 4 or 8 tiles of 8 rows): qmma's
// fragment decoders (qfrag.h) in a tiled product. Included by qmma_impl.h; launched from
// qmma_launch_fmt where it applies (qmma_impl.h qmma_wide_ok).
//
// Why: qmma_kernel and its streaming variant split k between the warps of a CTA that share 16 or
// 32 weight rows, and every warp loads its x fragments from global memory: at M = 64 each row
// group re-reads all of x (1 MB on the 70B FFN layer) through L2, and the accumulators of 8 x
// tiles per row tile left few CTAs per multiprocessor (H200, 70B FFN up, M = 64: Q4_0 342 us,
// 2.8x bf16 F.linear; the dequantize + BLAS path 284). Here a CTA owns 16 * W weight rows (one
// 16-row tile per warp) and one block of 8 * NT rows of x, and walks k in stages: each stage
// holds a slab of kWPS decoder windows of every weight row and the same k slab of the x rows,
// copied with 16-byte asynchronous copies, NS - 1 stages ahead. Each warp decodes its tile's
// chunks once and multiplies them with the NT x tiles read from shared memory; it owns its
// rows' sums, so no reduction is needed.
#pragma once

#include "qmma_stream.h"  // (qmma_decode_tile, qmma_xsums, qmma_tile_products)

namespace rocq::gpu {

template <int ID>
struct QmmaWideCfg {
  static constexpr int kWarps = 8, kRows = 16 * kWarps;
  static constexpr int kThreads = kWarps * kRqMmaLanes;
  static constexpr int kWinBytes = QFragWin<ID>::kBytes;
  static constexpr int kWinElems = QFragWin<ID>::kChunks * QFragWin<ID>::kElems;
  // windows per stage: the fewest (1 or 2) whose bytes are whole 16-byte copies; else (Q6_K's
  // 210 bytes) one, copied as the 16-byte aligned span around it (kSpan: the window starts
  // (c * kWinBytes) % 16 bytes into it)
  static constexpr bool kSpan = kWinBytes % 8 != 0;
  static constexpr int kWPS = kWinBytes % 16 == 0 || kSpan ? 1 : 2;
  static constexpr int kSlab = kWPS * kWinElems;  // elements per row and stage
  static constexpr int kRowBytes = kSpan ? (kWinBytes + 30) / 16 * 16 : kWPS * kWinBytes;  // bytes copied
  // weight rows kRowStride apart (qmma_row_stride), x rows kXStride apart (8 mod 32 words: a
  // quarter's 8-byte loads of 8 rows in two conflict-free wavefronts)
  static constexpr int kRowStride = qmma_row_stride(kRowBytes);
  static constexpr int kXWords = 2 * kSlab / 4;
  static constexpr int kXStride = 4 * (kXWords + (8 - kXWords % 32 + 32) % 32);
  static constexpr bool kOn = kQFragOn<ID> && kRowBytes % 16 == 0 && (2 * kSlab) % 16 == 0;
  // OCP MX: the stage's E8M0 bytes (one per chunk and row) follow the x rows, copied as 4-byte
  // words where the scale plane allows (qmma_wide_kernel sc_staged)
  static constexpr int kCPS = kWPS * QFragWin<ID>::kChunks;  // chunks per row and stage
  static constexpr int kScBytes = rq_has_scale_plane(ID) ? kRows * kCPS : 0;
  static_assert(kScBytes % 16 == 0, "the stage's parts 16-byte aligned");
  static constexpr int stage_bytes(int nt) { return kRows * kRowStride + 8 * nt * kXStride + kScBytes; }
  // stages: 3 where two CTAs fit a multiprocessor's 227 KB, else 2 (0: does not fit at all)
  static constexpr int stages(int nt) {
    return 3 * stage_bytes(nt) <= 113 * 1024 ? 3 : (2 * stage_bytes(nt) <= 227 * 1024 ? 2 : 0);
  }
  static constexpr int64_t smem(int nt) { return (int64_t)stages(nt) * stage_bytes(nt); }
};

template <int ID, int XK, int NT, int NS>
__global__ void __launch_bounds__(QmmaWideCfg<ID>::kThreads) qmma_wide_kernel(QmatArgs a) {
#if defined(ROCQ_MMA_NV)
  using Cfg = QmmaWideCfg<ID>;
  using F = QFrag<ID>;
  using T = typename XStore<XK>::T;
  constexpr RqOp OP = XK == (int)DType::BF16 ? RqOp::BF16 : RqOp::F16;
  constexpr int S = F::kS, R = Cfg::kRows, NTH = Cfg::kThreads, XR = 8 * NT;
  constexpr int RB = Cfg::kRowBytes, RS = Cfg::kRowStride, XS = Cfg::kXStride, SL = Cfg::kSlab;
  constexpr int CPS = Cfg::kCPS;  // chunks per stage and row
  constexpr int WST = R * RS, SST = WST + XR * XS, STB = SST + Cfg::kScBytes;  // weights, scale bytes, stage
  constexpr bool kPlane = rq_has_scale_plane(ID);
  // The E8M0 bytes travel with the stages (qmma_stage_plane) where the plane is in words; else
  // each is read from global memory in the inner loop (at M = 16 that made OCP MXFP4 1.2x slower
  // than GGUF's MXFP4).
  const bool sc_staged = kPlane && rq_plane_words(a.sc, a.k);
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ uint32_t lut[F::kLut ? 256 : 1];

  const int tid = threadIdx.x, warp = tid / kRqMmaLanes, lane = tid % kRqMmaLanes;
  const int g = lane / 4, t = lane % 4;
  if constexpr (F::kLut) {
    for (int i = tid; i < 256; i += NTH) lut[i] = F::template lut<OP>(i);
    // (read only after the first stage's __syncthreads)
  }
  const int64_t row0 = (int64_t)blockIdx.x * R;
  const int m0 = blockIdx.y * XR;
  const int64_t nch = a.k / F::kC;
  const int nst = (int)rq_ceil_div(nch, (int64_t)CPS);
  const T* xg = static_cast<const T*>(a.x);

  // Copies of stage c: weight vectors j < R * WV (row j / WV; rows past n repeat the last), then
  // x vectors (row of x tid / XV + i * XRR; rows past M are not copied: their stale shared memory
  // feeds only the product columns of those rows, never stored); bytes past a row's end (its
  // last stage) are not copied (nor used). Thread tid copies vector tid % VW
  // (VW: WV rounded up to a power of two; lanes past WV idle) of the weight rows tid / VW + i *
  // WRR and vector tid % XV of its x rows, with one add per copy (weights: where the CTA's rows
  // all lie inside the call, every CTA but the last, and the stage is whole). (The
  // general loop, ~25 instructions per copy, once took every copy: at M = 64 its compares and
  // branches led ncu's warp samples, H200, Q4_0, ncu_qmma_q4_0_64_h200_s12_folded.txt.)
  constexpr int WV = RB / 16, XV = 2 * SL / 16, WN = R * WV;
  constexpr int VW = WV <= 8 ? 8 : (WV <= 16 ? 16 : 32), WRR = NTH / VW, XRR = NTH / XV;
  static_assert(WV <= 32 && R % WRR == 0 && NTH % XV == 0 && XR % XRR == 0, "copies in whole rounds");
  const bool wfast = row0 + R <= a.n && (int64_t)R * a.row_bytes < ((int64_t)1 << 31);
  const bool wlane = tid % VW < WV;
  const uint8_t* const w0p = a.qw + (wfast ? row0 + tid / VW : 0) * a.row_bytes + 16 * (tid % VW);
  const uint32_t wstep = (uint32_t)WRR * (uint32_t)a.row_bytes;  // bytes between a thread's weight rows
  const uint32_t wdst0 = (tid / VW) * RS + 16 * (tid % VW);
  const int xv = tid % XV, xr = m0 + tid / XV;  // (this thread's x vector and first x row)
  const int nx = xr < a.M ? (int)rq_ceil_div((int64_t)(a.M - xr), (int64_t)XRR) : 0;  // its rows inside M
  const T* const x0p = xg + (int64_t)(xr < a.M ? xr : 0) * a.k + 8 * xv;
  const int64_t xstep = (int64_t)XRR * a.k;  // elements between a thread's x rows
  const uint32_t xdst0 = WST + (tid / XV) * XS + 16 * xv;
  auto issue = [&](int c) {
    if (c < nst) {
      uint8_t* st = smem + (c % NS) * STB;
      // (the stage's first byte in the row: 16-byte aligned at or below its window where kSpan)
      const int64_t wo = Cfg::kSpan ? ((int64_t)c * Cfg::kWinBytes) & ~(int64_t)15 : (int64_t)c * RB;
      const int64_t xo = (int64_t)c * SL;
      const int wper = a.row_bytes - wo < RB ? (int)((a.row_bytes - wo) / 16) : WV;
      const int xper = a.k - xo < SL ? (int)((a.k - xo) / 8) : XV;
      if (wfast && wper == WV) {
        if (wlane) {
          const uint8_t* ws = w0p + wo;
#pragma unroll
          for (int i = 0; i < R / WRR; ++i) rq_cp_async16(st + wdst0 + i * WRR * RS, ws + (uint32_t)i * wstep);
        }
      } else {
        for (int j = tid; j < WN; j += NTH) {
          const int r = j / WV, v = j % WV;
          int64_t row = row0 + r;
          row = row < a.n ? row : a.n - 1;
          if (v < wper) rq_cp_async16(st + r * RS + 16 * v, a.qw + row * a.row_bytes + wo + 16 * v);
        }
      }
      if (xv < xper) {
        const T* xp = x0p + xo;
#pragma unroll
        for (int i = 0; i < XR / XRR; ++i, xp += xstep)
          if (i < nx) rq_cp_async16(st + xdst0 + i * XRR * XS, xp);
      }
      if constexpr (kPlane) {
        if (sc_staged) qmma_stage_plane<R, CPS, NTH>(st + SST, a, row0, (int64_t)c * CPS, tid);
      }
    }
    rq_cp_async_commit();  // (empty groups past the end keep the wait count uniform)
  };
#pragma unroll
  for (int i = 0; i < NS - 1; ++i) issue(i);

  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
  const uint8_t* sp[2];  // scale-plane rows (OCP MX), clamped: computed, never stored
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    int64_t row = row0 + 16 * warp + g + 8 * h;
    row = row < a.n ? row : a.n - 1;
    sp[h] = kPlane ? a.sc + row * (a.k / 32) : nullptr;
  }
  for (int c = 0; c < nst; ++c) {
    rq_cp_async_wait<NS - 2>();
    __syncthreads();  // stage c landed for every thread; stage c - 1 is free to refill
    issue(c + NS - 1);
    const uint8_t* st = smem + (c % NS) * STB;
    const uint8_t* win0 = st + (16 * warp + g) * RS + (Cfg::kSpan ? (int)(((int64_t)c * Cfg::kWinBytes) & 15) : 0);
    const uint8_t* xs = st + WST + g * XS;
    const int64_t cb = (int64_t)c * CPS;
    const int cc = nch - cb < CPS ? (int)(nch - cb) : CPS;  // chunks in this stage
    auto one = [&](int i) {
      typename F::Raw raw[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        // (chunk i of the stage: window i / kWC, chunk i % kWC of it)
        raw[h] = F::load(win0 + 8 * h * RS + (i / F::kWC) * Cfg::kWinBytes, i % F::kWC, t);
        if constexpr (kPlane) raw[h].e = sc_staged ? st[SST + (16 * warp + g + 8 * h) * CPS + i] : sp[h][cb + i];
      }
      uint32_t af[S][4];
      float sc[2][F::kG], mn[2][F::kG];
      qmma_decode_tile<ID, OP>(raw, lut, af, sc, mn);
      constexpr bool kFold = qmma_folds<ID, OP, NT>();
      if constexpr (kFold) qmma_fold_tile<ID, OP>(af, sc, mn);  // (decoded once, multiplied NT times)
      const int e0 = (int)(F::x0(cb + i) - (int64_t)c * SL);  // the chunk's first element in the slab
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        uint32_t b[S][2];
#pragma unroll
        for (int s = 0; s < S; ++s) {
          const uint2 v = *reinterpret_cast<const uint2*>(xs + j * 8 * XS + 2 * (e0 + F::xo(s, t)));
          b[s][0] = v.x;
          b[s][1] = v.y;
        }
        if constexpr (kFold) {
          qmma_folded_products<ID, OP>(af, b, acc[j]);
        } else {
          [[maybe_unused]] float xsum[F::kG][2];
          if constexpr (F::kMin) qmma_xsums<ID, OP>(b, xsum);
          qmma_tile_products<ID, OP>(af, sc, mn, b, xsum, acc[j]);
        }
      }
    };
    if (cc == CPS) {
#pragma unroll
      for (int i = 0; i < CPS; ++i) one(i);
    } else {
      for (int i = 0; i < cc; ++i) one(i);
    }
  }
  rq_cp_async_wait<0>();
  // this warp's rows: acc[j][e] is row 16 * warp + g + 8 * (e / 2), x row 8 * j + 2t + e % 2
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      qmma_store<XK>(a, row0 + 16 * warp + g + 8 * (e >> 1), m0 + 8 * j + 2 * t + (e & 1), acc[j][e]);
    }
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched below sm_80 (qmma_supported)
#else
  (void)a;
#endif
}

}  // namespace rocq::gpu
