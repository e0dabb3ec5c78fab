// The streaming matrix-unit kernel: qmma's fragment decoders (qfrag.h) fed by the streaming
// kernel's memory pipeline (qmatvec_stream.h), for one tile of x (M <= 8). Included by
// qmma_impl.h; launched from qmma_launch_fmt where it applies (qmma_stream_plan).
//
// Why (ncu on the H200, Q4_0 70B FFN up, M = 8, qmma_kernel): each warp copies its own windows
// of its CTA's 32 rows into two private buffers, so one window is in flight per warp while it
// decodes the other, and the per-copy address arithmetic of those copies is a quarter of its
// instructions; issue slots were 48% busy, DRAM 37%, warps stalled on global x loads (long
// scoreboard), the shared-memory queue (MIO throttle) and fixed latencies in equal parts.
// Here, as in the streaming kernel, a persistent CTA of 8 warps walks 16-row groups; each stage
// holds 8 windows of every row of the group (one per warp), copied by the whole CTA with
// precomputed 16-byte copies, NS - 1 stages ahead; each warp decodes its window of the 16 rows
// (one 16 x 8 tile: rows g, g + 8 of lane quarter t) and the 8 warps' sums meet in shared memory
// at the end of the group (fixed order: deterministic).
#pragma once

#include "qfrag.h"
#include "stage_copy.h"

namespace rocq::gpu {

// The stride of weight rows of `bytes` (a multiple of 16) in a stage: plus 16 where their words
// are a multiple of 8, so that the stride is 4 (mod 8) words and the 8 rows x 4 quarters of a
// warp's 4-byte fragment loads fall in 32 different banks (a stride of 0 mod 32 words made them
// 8-way conflicts: Q4_0 and MXFP4 ran 2x slower).
ROCQ_HD constexpr int qmma_row_stride(int bytes) { return bytes + (bytes / 4 % 8 == 0 ? 16 : 0); }

template <int ID>
struct QmmaStreamCfg {
  static constexpr int kWarps = 8, kRows = 16, kStages = 3;
  static constexpr int kThreads = kWarps * kRqMmaLanes;
  static constexpr int kWinBytes = QFragWin<ID>::kBytes;  // one warp's window of one row
  static constexpr int kRowBytes = kWarps * kWinBytes;    // one row's bytes in a stage
  static constexpr int kRowStride = qmma_row_stride(kRowBytes);
  // OCP MX: the stage's E8M0 bytes (kWarps * kChunks per row) follow its weight rows
  // (qmma_stream_kernel sc_staged)
  static constexpr int kWBytes = kRows * kRowStride;
  static constexpr int kScBytes = rq_has_scale_plane(ID) ? kRows * kWarps * QFragWin<ID>::kChunks : 0;
  static constexpr int kStageBytes = kWBytes + kScBytes;
  static constexpr bool kOn = kQFragOn<ID> && kRowBytes % 16 == 0;
  // Where the launcher takes it by default: the formats it ran faster than qmma_kernel on every
  // layer and M measured. H200, bf16 x, M = 1 / 4 / 8, us, qmma_kernel -> this kernel, same run
  // (benchmarks/results/bench_qmatmul_h200_s9e_{A,B,A2,B2}.json), 70B FFN up: Q4_0 50.3 -> 47.9
  // / 56.5 -> 57.3 / 67.0 -> 65.3, Q6_K 81.6 -> 81.1 / 87.6 -> 83.6 / 98.4 -> 93.1, OCP MXFP4
  // 142.7 -> 111.4 / 148.2 -> 123.3 / 154.6 -> 134.2, OCP MXFP8 E4M3 196.7 -> 170.3 / 202.5 ->
  // 180.9 / 209.9 -> 191.4; 8B FFN up: Q4_0 20.0 -> 16.4 / 21.4 -> 19.1 / 24.3 -> 22.1, Q6_K 33.1
  // -> 26.1 / 35.3 -> 27.4 / 37.0 -> 29.2. Slower on the 70B layer: Q5_0 (3-7%), Q4_K at M = 4, 8
  // (8-11%), Q8_0 (5%), IQ4_NL (4-7%), MXFP4 at M = 8 (13%; 22% on 4096 x 4096); Q5_1, Q5_K,
  // IQ4_XS mixed: those keep qmma_kernel there. On the 8B layers (k = 4096) the others are faster
  // too up to M = 4 (takes(): x rows of 8 KB, so that the L1 keeps more of x than at k = 8192),
  // e.g. 8B FFN up M = 1 / 4 (bench_qmatmul_h200_s9h_{A,B}.json) Q5_0 23.4 -> 21.4 / 24.4 ->
  // 23.7, Q4_K 22.4 -> 21.0 / 23.6 -> 22.9, IQ4_XS 28.9 -> 25.7 / 30.8 -> 28.8, MXFP4 34.1 -> 29.4
  // / 36.3 -> 33.6, and 4096 x 4096 (s9e) Q8_0 14.1 -> 10.8 / 14.4 -> 11.1; at M = 8 several lose
  // (MXFP4 40.0 -> 42.4). Mixed: Q5_K at M = 4 (8B FFN up 25.4 -> 26.0, 4096 x 4096 10.1 -> 9.9),
  // MXFP4 at M = 4 on 4096 x 4096 (11.1 -> 11.5).
  // (Two tiles per warp, 32-row groups, x fragments serving both: slower nearly everywhere, e.g.
  // 70B FFN up M = 1 / 8 Q4_0 47.7 -> 54.8 / 65.2 -> 64.1, Q6_K 80.4 -> 97.7 / 92.1 -> 108.6,
  // OCP MXFP4 110.3 -> 124.9 / 133.4 -> 141.1: bench_qmatmul_h200_s9h_{B,C}.json.)
  static constexpr bool kChosen = ID == QT_Q4_0 || ID == QT_Q4_1 || ID == QT_Q6_K || ID == QT_OCP_MXFP4 ||
                                  ID == QT_OCP_MXFP8_E4M3 || ID == QT_OCP_MXFP8_E5M2;
  static bool takes(int64_t k, int64_t M) { return kChosen || (k <= 4096 && M <= 4); }
  // (Measured and not kept: Q4_0 at three CTAs a multiprocessor, 80 registers, no spills, as the
  // latency-bound streaming decode kernel's Q3_K and MXFP4 gained: H200, us, two CTAs / three in
  // one run, 70B FFN up M = 3 / 4 / 8 52.9 / 57.2 / 65.4 -> 57.0 / 58.2 / 71.5, 8B FFN up 18.1 /
  // 18.9 / 22.3 -> 18.7 / 19.7 / 22.1; benchmarks/results/bench_qmatmul_h200_s15i_*.)
  static constexpr int64_t smem(int ns) { return (int64_t)ns * kStageBytes; }
};

// The pieces of a chunk's math, shared with qmma_kernel (qmma_impl.h):
// one 16-row tile's operands (rows g, g + 8: raw[0], raw[1]) and per-group scales;
template <int ID, RqOp OP>
ROCQ_DEVICE void qmma_decode_tile(const typename QFrag<ID>::Raw (&raw)[2], const uint32_t* lut,
                                  uint32_t (&af)[QFrag<ID>::kS][4], float (&sc)[2][QFrag<ID>::kG],
                                  float (&mn)[2][QFrag<ID>::kG]) {
  using F = QFrag<ID>;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t a2[F::kS][2];
    F::template decode<OP>(raw[h], a2, sc[h], mn[h], lut);
#pragma unroll
    for (int s = 0; s < F::kS; ++s) {
      af[s][h] = a2[s][0];
      af[s][2 + h] = a2[s][1];
    }
  }
}
// the group sums of x for the formats with a min term (a product with ones per group);
template <int ID, RqOp OP>
ROCQ_DEVICE void qmma_xsums(const uint32_t (&b)[QFrag<ID>::kS][2], float (&xsum)[QFrag<ID>::kG][2]) {
#if defined(ROCQ_MMA_NV)
  using F = QFrag<ID>;
  constexpr int SPG = F::kS / F::kG;
  const uint32_t one[4] = {QfOp<OP>::kOne2, QfOp<OP>::kOne2, QfOp<OP>::kOne2, QfOp<OP>::kOne2};
#pragma unroll
  for (int q = 0; q < F::kG; ++q) {
    float cs[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int s = q * SPG; s < (q + 1) * SPG; ++s) rq_mma_frag<OP>(cs, one, b[s][0], b[s][1]);
    xsum[q][0] = cs[0];
    xsum[q][1] = cs[1];
  }
#else
  (void)b, (void)xsum;
#endif
}
// one tile's products with the x fragments b, scaled per group into acc (minus the min term).
template <int ID, RqOp OP>
ROCQ_DEVICE void qmma_tile_products(const uint32_t (&af)[QFrag<ID>::kS][4], const float (&sc)[2][QFrag<ID>::kG],
                                    const float (&mn)[2][QFrag<ID>::kG], const uint32_t (&b)[QFrag<ID>::kS][2],
                                    const float (&xsum)[QFrag<ID>::kG][2], float (&acc)[4]) {
#if defined(ROCQ_MMA_NV)
  using F = QFrag<ID>;
  constexpr int SPG = F::kS / F::kG;
#pragma unroll
  for (int q = 0; q < F::kG; ++q) {
    float cc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int s = q * SPG; s < (q + 1) * SPG; ++s) rq_mma_frag<OP>(cc, af[s], b[s][0], b[s][1]);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float v = fmaf(sc[e >> 1][q], cc[e], acc[e]);
      if constexpr (F::kMin) v = fmaf(-mn[e >> 1][q], xsum[q][e & 1], v);
      acc[e] = v;
    }
  }
#else
  (void)af, (void)sc, (void)mn, (void)b, (void)xsum, (void)acc;
#endif
}

// Scales folded into the operands, for the kernels that multiply one decoded tile with NT x
// tiles (qmma_wide.h, qmma_kernel): af[s][r] becomes W = sc * code - mn (row g + 8h, h = r % 2, the
// scale of step s's group) in the operand type, so that each x tile costs only its products,
// straight into its accumulators, instead of products per group, the per-group fp32 scaling and
// (min-term formats) a product with ones per group for sum(x). The operands are then rounded
// like the dequantize + BLAS path's W:
//   min-term formats (Q4_1, Q5_1, Q4_K, Q5_K): in fp32 and rounded once (W = sc * q - mn
//   cancels, so scales rounded to bf16 first cost several times the error of W's own rounding:
//   rel. errors up to 6.2e-3 on tests/test_gpu.py's matrix-unit cases, over their 6e-3 bound,
//   benchmarks/results/test_gpu_h200_s12b_fold_bf16fma.log);
//   the others, bf16 only: one packed multiply with sc rounded to bf16 (E8M0 scales are exact;
//   bf16 keeps fp32's exponent range); fp16 x keeps exact codes (E8M0 scales reach far outside
//   fp16's range, and the fp32 route measured slower than not folding).
// Where: NT >= 4 (M > 16). H200, 70B FFN up, bf16 x, M = 32 / 64, us, exact codes -> folded, same
// run (benchmarks/results/bench_qmatmul_h200_s12c_{base,fold}.json): Q4_K 147.6 / 304.0 -> 127.6
// / 173.0, Q5_K 160.1 / 313.1 -> 140.3 / 184.4, Q4_1 144.6 / 244.1 -> 126.6 / 176.5, Q4_0 102.6 /
// 167.4 -> 99.9 / 153.5, MXFP4 190.6 / 275.4 -> 173.3 / 233.0, IQ4_XS M = 64 268.6 -> 226.7, Q6_K
// 280.2 -> 235.6, E4M3 218.5 -> 207.2; OCP MXFP4 level; 8B FFN up M = 32 (qmma_kernel) Q8_0 78.7
// -> 57.0, Q5_1 65.6 -> 53.0; fp16 x Q4_K 147.2 / 303.0 -> 126.1 / 179.9. At NT = 2 (M = 9..16)
// folding every format in bf16 (s12b_{base,fold}) cost Q4_0 7% and on the 8B layer MXFP4 and
// Q6_K 15%, gained the min-term formats 12% with bf16-rounded scales and nothing in fp32 (fp16
// x: Q4_K 0.94 -> 0.97 of F.linear's time); so NT = 2 keeps exact codes.
template <int ID, RqOp OP, int NT>
ROCQ_HD constexpr bool qmma_folds() {
  return NT >= 4 && (QFrag<ID>::kMin || OP == RqOp::BF16);
}
template <int ID, RqOp OP>
ROCQ_DEVICE void qmma_fold_tile(uint32_t (&af)[QFrag<ID>::kS][4], const float (&sc)[2][QFrag<ID>::kG],
                                const float (&mn)[2][QFrag<ID>::kG]) {
#if defined(ROCQ_MMA_NV)
  using F = QFrag<ID>;
  constexpr int SPG = F::kS / F::kG;
#pragma unroll
  for (int s = 0; s < F::kS; ++s)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int h = r & 1, q = s / SPG;
      if constexpr (F::kMin) {
        const float lo = rq_op_to_float<OP>((uint16_t)af[s][r]), hi = rq_op_to_float<OP>((uint16_t)(af[s][r] >> 16));
        af[s][r] = rq_pack2_op<OP>(fmaf(lo, sc[h][q], -mn[h][q]), fmaf(hi, sc[h][q], -mn[h][q]));
      } else {
        static_assert(OP == RqOp::BF16, "fp16 operands are not folded without a min term (qmma_folds)");
        af[s][r] = rq_mul2_op<OP>(af[s][r], rq_pack2_op<OP>(sc[h][q], sc[h][q]));
      }
    }
#else
  (void)af, (void)sc, (void)mn;
#endif
}
// a folded tile's products with the x fragments b, summed straight into acc.
template <int ID, RqOp OP>
ROCQ_DEVICE void qmma_folded_products(const uint32_t (&af)[QFrag<ID>::kS][4], const uint32_t (&b)[QFrag<ID>::kS][2],
                                      float (&acc)[4]) {
#if defined(ROCQ_MMA_NV)
#pragma unroll
  for (int s = 0; s < QFrag<ID>::kS; ++s) rq_mma_frag<OP>(acc, af[s], b[s][0], b[s][1]);
#else
  (void)af, (void)b, (void)acc;
#endif
}

// One stage's E8M0 bytes (OCP MX, rq_plane_words): SR bytes of each of R rows from row0 (rows
// past n repeat the last), from chunk ch0 of the row, into dst row-major (row r at r * SR), as
// 4-byte asynchronous copies by NT threads; words past the row's end are not copied (nor read).
template <int R, int SR, int NT>
ROCQ_DEVICE void qmma_stage_plane(uint8_t* dst, const QmatArgs& a, int64_t row0, int64_t ch0, int tid) {
  static_assert(SR % 4 == 0, "a stage's bytes of a row are whole words");
  constexpr int SW = SR / 4;
  const int64_t nb = a.k / 32;  // bytes of a row
  for (int j = tid; j < R * SW; j += NT) {
    const int r = j / SW, q = j % SW;
    int64_t row = row0 + r;
    row = row < a.n ? row : a.n - 1;
    const int64_t ch = ch0 + 4 * q;
    if (ch < nb) rq_cp_async4(dst + r * SR + 4 * q, a.sc + row * nb + ch);
  }
}

// y[m, row] = v + bias[row] in the activation dtype, for rows and x rows inside the call.
template <int XK>
ROCQ_DEVICE void qmma_store(const QmatArgs& a, int64_t row, int m, float v) {
  if (row < a.n && m < a.M) {
    if (a.bias) v += a.bias[row];
    static_cast<typename XStore<XK>::T*>(a.y)[(int64_t)m * a.n + row] = rq_from_float<XK>(v);
  }
}

template <int ID, int XK, int NS>
__global__ void __launch_bounds__(QmmaStreamCfg<ID>::kThreads, 2) qmma_stream_kernel(QmatArgs a) {
#if defined(ROCQ_MMA_NV)
  using Cfg = QmmaStreamCfg<ID>;
  using F = QFrag<ID>;
  using T = typename XStore<XK>::T;
  constexpr RqOp OP = XK == (int)DType::BF16 ? RqOp::BF16 : RqOp::F16;
  constexpr int S = F::kS, WC = F::kWC, W = Cfg::kWarps, R = Cfg::kRows, NT = Cfg::kThreads;
  constexpr int WB = Cfg::kWinBytes, SRB = Cfg::kRowBytes, SRS = Cfg::kRowStride;
  constexpr bool kPlane = rq_has_scale_plane(ID);
  // The E8M0 bytes travel with the stages (qmma_stage_plane) where the plane is in words; else
  // each warp loads its window's bytes from global memory before the wait, with the x fragments.
  const bool sc_staged = kPlane && rq_plane_words(a.sc, a.k);
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[W][R][8];
  __shared__ uint32_t lut[F::kLut ? 256 : 1];

  const int tid = threadIdx.x, warp = tid / kRqMmaLanes, lane = tid % kRqMmaLanes;
  const int g = lane / 4, t = lane % 4;
  if constexpr (F::kLut) {
    for (int i = tid; i < 256; i += NT) lut[i] = F::template lut<OP>(i);
    // (read only after the first stage's __syncthreads)
  }
  const int64_t nch = a.k / F::kC;                           // chunks per row
  const int nc = (int)rq_ceil_div(nch, (int64_t)W * WC);    // stages per row group
  const int64_t groups = rq_ceil_div(a.n, (int64_t)R);
  // x row of this lane's B column (rows past M repeat the last: computed, never stored)
  const T* xrow = static_cast<const T*>(a.x) + (int64_t)(g < a.M ? g : a.M - 1) * a.k;

  StageRing<R, SRB, SRS, NT, NS> ring(tid, a, nc);  // (stage_copy.h)
  auto issue = [&]() {
    ring.issue(smem, Cfg::kStageBytes, tid, a, [&](uint8_t* dst, int64_t ig, int ic) {
      if constexpr (kPlane) {
        if (sc_staged) qmma_stage_plane<R, W * WC, NT>(dst + Cfg::kWBytes, a, ig * R, (int64_t)ic * W * WC, tid);
      } else {
        (void)dst, (void)ig, (void)ic;
      }
    });
  };
#pragma unroll
  for (int i = 0; i < NS - 1; ++i) issue();

  int st = 0;
  for (int64_t grp = blockIdx.x; grp < groups; grp += gridDim.x) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    const uint8_t* sp[2];  // scale-plane rows (OCP MX), clamped to n - 1: computed, never stored
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int64_t row = grp * R + g + 8 * h;
      row = row < a.n ? row : a.n - 1;
      sp[h] = kPlane ? a.sc + row * (a.k / 32) : nullptr;
    }
    for (int c = 0; c < nc; ++c) {
      const int64_t cb = ((int64_t)c * W + warp) * WC;  // this warp's first chunk in the row
      const int wc = nch - cb >= WC ? WC : (nch - cb > 0 ? (int)(nch - cb) : 0);
      // the window's x fragments and scale bytes, loaded before the wait (their latency overlaps it)
      uint32_t xw[WC][S][2];
      [[maybe_unused]] uint8_t se[WC][2];
#pragma unroll
      for (int i = 0; i < WC; ++i) {
        if (i < wc) {
          const int64_t e0 = F::x0(cb + i);
#pragma unroll
          for (int s = 0; s < S; ++s) {
            const uint2 v = *reinterpret_cast<const uint2*>(xrow + e0 + F::xo(s, t));
            xw[i][s][0] = v.x;
            xw[i][s][1] = v.y;
          }
          if constexpr (kPlane) {
            if (!sc_staged) {
#pragma unroll
              for (int h = 0; h < 2; ++h) se[i][h] = sp[h][cb + i];
            }
          }
        }
      }
      rq_cp_async_wait<NS - 2>();
      __syncthreads();  // this stage landed for every thread; the previous one is free to refill
      issue();
      const uint8_t* sb = smem + st * Cfg::kStageBytes + warp * WB;
      const uint8_t* ssc = smem + st * Cfg::kStageBytes + Cfg::kWBytes + warp * WC;  // (sc_staged)
      const uint8_t* win[2] = {sb + g * SRS, sb + (g + 8) * SRS};
      auto one = [&](int i) {
        typename F::Raw raw[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          raw[h] = F::load(win[h], i, t);
          if constexpr (kPlane) raw[h].e = sc_staged ? ssc[(g + 8 * h) * W * WC + i] : se[i][h];
        }
        uint32_t af[S][4];
        float sc[2][F::kG], mn[2][F::kG], xsum[F::kG][2];
        qmma_decode_tile<ID, OP>(raw, lut, af, sc, mn);
        if constexpr (F::kMin) qmma_xsums<ID, OP>(xw[i], xsum);
        qmma_tile_products<ID, OP>(af, sc, mn, xw[i], xsum, acc);
      };
      rq_window_each<WC>(wc, one);
      st = st + 1 == NS ? 0 : st + 1;
    }
    // The group is complete: each warp's tile into shared memory, then the 8 sums per output in
    // warp order. (red is written again only after the next group's first __syncthreads.)
#pragma unroll
    for (int e = 0; e < 4; ++e) red[warp][g + 8 * (e >> 1)][2 * t + (e & 1)] = acc[e];
    __syncthreads();
    if (tid < R * 8) {
      const int rr = tid % R, m = tid / R;
      const int64_t row = grp * R + rr;
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < W; ++w) v += red[w][rr][m];
      qmma_store<XK>(a, row, m, v);
    }
  }
  rq_cp_async_wait<0>();
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched below sm_80 (qmma_supported)
#else
  (void)a;
#endif
}

}  // namespace rocq::gpu
