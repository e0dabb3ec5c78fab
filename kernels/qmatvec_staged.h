// The streaming decode kernel (small M): for formats with a Piece<ID> (qdot.h). Included by
// qmatvec_impl.h.
//
// Why this shape: at M = 1..2 the work is a pure stream of weight bytes, so the kernel must
// keep many bytes in flight per multiprocessor and touch each weight byte with as few
// instructions as possible. GGUF blocks are 17-210 bytes and rarely 16-byte aligned, so a
// thread cannot simply load "its" block with wide loads; instead:
//   * a CTA owns R consecutive weight rows at a time (a row group) and walks k in windows of W
//     units (blocks), W*UB bytes per row, a multiple of 16;
//   * the window's R*W*UB bytes are copied global -> shared memory with 16-byte asynchronous
//     copies (rq_cp_async16: cp.async on NVIDIA, a plain copy elsewhere), perfectly coalesced,
//     S windows in flight (a ring of S stage buffers);
//   * thread t decodes piece t of the window (qdot.h: NQ quads of one block) for all R rows,
//     reading the block bytes from shared memory and the matching x values once into
//     registers, so x costs 1/R of a load per weight;
//   * a CTA is persistent: it runs row groups blockIdx.x, + gridDim.x, ... and its pipeline
//     runs across row-group boundaries, so the copies of the next group overlap the math and
//     the reduction of this one. At the end of a group the CTA sums its threads' partial sums
//     in a fixed order (deterministic) and writes y.
// Per-target tuning is the small table QmvStagedCfg (stage size and depth: 227 KB of shared
// memory per block on NVIDIA sm_80+, 64 KB of LDS on AMD).
#pragma once

namespace rocq::gpu {

constexpr int kQmvStagedThreads = 256;

template <int ID, int MT>
struct QmvStagedCfg {
  using P = Piece<ID>;
  static constexpr int NT = kQmvStagedThreads;
  static constexpr int UE = Unit<Codec<ID>>::kElems, UB = Unit<Codec<ID>>::kBytes;
  static constexpr int NQ = QmvPieceNQ<ID, MT>::v;  // quads per piece
  static constexpr int PPB = P::kQuads / NQ;         // pieces per unit
  static constexpr int W = NT / PPB;                 // units per row per stage: one piece per thread
  static constexpr int RB = W * UB;                  // bytes per row per stage
  static constexpr int kTarget = kRqLargeShared ? 20 * 1024 : 8 * 1024;  // bytes per stage, about
  static constexpr int R0 = MT <= 2 ? 8 : (MT <= 4 ? 4 : 2);               // rows per group, at most
  static constexpr int R = R0 * RB <= kTarget ? R0 : (R0 / 2 * RB <= kTarget || R0 <= 2 ? R0 / 2 : R0 / 4);
  static constexpr int SB = R * RB;                  // bytes per stage
  static constexpr int S = kRqLargeShared ? 4 : 2;   // stages in the ring
  static constexpr int kSmem = S * SB;
  static_assert(P::kQuads % NQ == 0 && NT % PPB == 0, "pieces must tile a unit and the CTA");
  static_assert(RB % 16 == 0, "a stage row must be whole 16-byte vectors");
  static_assert(R >= 1, "at least one row per group");
};

template <int ID, int MT, int XK>
__global__ void __launch_bounds__(kQmvStagedThreads, MT <= 2 ? 3 : 2) qmv_staged_kernel(QmvArgs a) {
  using Cfg = QmvStagedCfg<ID, MT>;
  using P = Piece<ID>;
  using T = typename XStore<XK>::T;
  constexpr int NT = Cfg::NT, R = Cfg::R, W = Cfg::W, UB = Cfg::UB, UE = Cfg::UE, NQ = Cfg::NQ;
  constexpr int PPB = Cfg::PPB, RB = Cfg::RB, SB = Cfg::SB, S = Cfg::S;
  constexpr int WS = ROCQ_WARP_SIZE, NWARP = NT / WS;
  constexpr bool kPlane = QmvPieceNQ<ID, MT>::plane;
  constexpr int VPR = RB / 16;  // 16-byte vectors per row per stage

  extern __shared__ uint4 rq_staged_smem[];
  uint8_t* ring = reinterpret_cast<uint8_t*>(rq_staged_smem);
  __shared__ float lut[16];
  __shared__ float red[NWARP][R * MT];
  if constexpr (P::kLut) {
    if (threadIdx.x < 16) lut[threadIdx.x] = P::table(threadIdx.x);
  }  // (the first stage's __syncthreads publishes it)

  const int t = threadIdx.x, warp = t / WS, lane = t % WS;
  const int64_t nunits = a.k / UE;
  const int64_t nwin = (nunits + W - 1) / W;
  const int64_t ngroups = (a.n + R - 1) / R;
  const int64_t mine = ngroups > blockIdx.x ? (ngroups - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int64_t nstages = mine * nwin;
  const XRows<XK> xg{static_cast<const T*>(a.x), a.k, a.M};

  // Stage i = (row group blockIdx.x + (i / nwin) * gridDim.x, window i % nwin).
  auto issue = [&](int64_t i) {
    if (i < nstages) {
      const int64_t g = blockIdx.x + (i / nwin) * gridDim.x;
      const int64_t boff = (i % nwin) * RB;
      uint8_t* dst = ring + (i % S) * SB;
      for (int v = t; v < R * VPR; v += NT) {
        const int r = v / VPR, j = v % VPR;
        const int64_t row = g * R + r < a.n ? g * R + r : a.n - 1;  // clamp: computed, not written
        const int64_t off = boff + (int64_t)j * 16;
        if (off < a.row_bytes) rq_cp_async16(dst + r * RB + j * 16, a.qw + row * a.row_bytes + off);
      }
    }
    rq_cp_async_commit();  // always one group per stage, so that the wait count below holds
  };
#pragma unroll
  for (int i = 0; i < S - 1; ++i) issue(i);

  float acc[R][MT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;

  const int Q0 = (t % PPB) * NQ;  // this thread's piece: quads Q0.. of unit t / PPB of the window
  for (int64_t i = 0; i < nstages; ++i) {
    rq_cp_async_wait<S - 2>();
    __syncthreads();  // stage i is in shared memory for every thread; stage i - 1 is consumed
    issue(i + S - 1);
    const int64_t g = blockIdx.x + (i / nwin) * gridDim.x;
    const int64_t w = i % nwin;
    const int64_t unit = w * W + t / PPB;
    if (unit < nunits) {
      const int64_t e0 = unit * UE;
      XPiece<MT, NQ> x;
#pragma unroll
      for (int q = 0; q < NQ; ++q) {
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          xg.load4(m, e0 + P::xa(Q0 + q), x.a[q][m]);
          xg.load4(m, e0 + P::xb(Q0 + q), x.b[q][m]);
          x.sa[q][m] = (x.a[q][m][0] + x.a[q][m][1]) + (x.a[q][m][2] + x.a[q][m][3]);
          x.sb[q][m] = (x.b[q][m][0] + x.b[q][m][1]) + (x.b[q][m][2] + x.b[q][m][3]);
        }
      }
      const uint8_t* blk = ring + (i % S) * SB + (t / PPB) * UB;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        uint8_t s = 0;
        if constexpr (kPlane) {
          const int64_t row = g * R + r < a.n ? g * R + r : a.n - 1;
          s = a.sc[row * (a.k / 32) + unit];  // plane formats: 32-element units
        }
        P::template dot<MT, NQ>(blk + r * RB, Q0, s, x, lut, acc[r]);
      }
    }
    if (w == nwin - 1) {  // last window of the group: reduce over the CTA in a fixed order, store
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          const float v = rq_warp_sum(acc[r][m]);
          if (lane == 0) red[warp][r * MT + m] = v;
          acc[r][m] = 0.f;
        }
      __syncthreads();
      if (t < R * MT) {
        const int r = t / MT, m = t % MT;
        const int64_t row = g * R + r;
        if (row < a.n && m < a.M) {
          float v = 0.f;
#pragma unroll
          for (int wp = 0; wp < NWARP; ++wp) v += red[wp][t];
          if (a.bias) v += a.bias[row];
          static_cast<T*>(a.y)[(int64_t)m * a.n + row] = rq_from_float<XK>(v);
        }
      }
      // red is written again only after the next group's last window, i.e. after at least one
      // more __syncthreads at the top of the loop, which these reads precede.
    }
  }
  rq_cp_async_wait<0>();  // no copy may outlive the block
}

// Persistent grid: as many CTAs as fit on the device at once (cached per instantiation), never
// more than there are row groups.
template <int ID, int MT, int XK>
const char* qmv_staged_launch_one(const QmvArgs& a, gpuStream_t stream) {
  using Cfg = QmvStagedCfg<ID, MT>;
  const void* fn = (const void*)&qmv_staged_kernel<ID, MT, XK>;
  static const int resident = [&] {
    if (Cfg::kSmem > 48 * 1024 && rq_func_set_max_dynamic_smem(fn, Cfg::kSmem) != ROCQ_GPU_SUCCESS) return -1;
    const int per_sm = rq_occupancy(fn, kQmvStagedThreads, Cfg::kSmem);
    const int sms = rq_sm_count();
    return per_sm > 0 && sms > 0 ? per_sm * sms : 0;
  }();
  if (resident < 0) return "rocq qmatvec: cannot raise the shared-memory limit of the staged kernel";
  if (resident == 0) return "rocq qmatvec: the staged kernel cannot be resident on this device";
  const int64_t groups = rq_ceil_div(a.n, (int64_t)Cfg::R);
  const unsigned grid = (unsigned)(groups < resident ? groups : resident);
  qmv_staged_kernel<ID, MT, XK><<<grid, kQmvStagedThreads, Cfg::kSmem, stream>>>(a);
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

}  // namespace rocq::gpu
