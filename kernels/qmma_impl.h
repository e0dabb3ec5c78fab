// qmma: the fused decode kernel on the matrix units, for a few rows of 16-bit x (M about 2..64).
// Each weight byte is read once per 8*NT rows of x and decoded in registers straight into
// matrix-unit operands (qfrag.h), so the time stays near the M = 1 time while the piece kernels
// (qmatvec_impl.h) grow with every row of x. Included by qmma_{f16,bf16}.hip (one activation
// dtype each) and qmma.hip (the launcher).
//
// Work split: a warp owns RT tiles of 16 weight rows and 8*NT rows of x (NT products of 8
// columns each) over one share of k; the W warps of a CTA share the same rows and interleave
// their k windows (so the CTA sweeps contiguous bytes), then add their partial sums in shared
// memory in a fixed warp order (deterministic, no workspace). W = 8 (4 for wide windows:
// qmma_warps in qmma.hip).
// Weight bytes reach the registers through shared memory: a warp copies one window (whole
// blocks) of all its rows with coalesced 16-byte asynchronous copies into its own 3-4 buffers
// (QmmaGeom::kStages), the other windows in flight while it decodes one. (Loading the fragment bytes
// straight from global memory - each load touching 8-16 rows a few bytes each - ran at 28% of
// the copy bandwidth on the H200, bound by L1 wavefronts.) Per chunk: x fragments (8-byte loads;
// L1/L2 hits), the products with ones for formats with a min term (the per-group sums of x,
// shared by all row tiles), and per row tile the decode, one product per step and the
// per-group fp32 scaling into the accumulators (from NT = 4 x tiles the scales are folded into
// the decoded operands instead, once per tile: qmma_stream.h qmma_folds).
#pragma once

#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "qfrag.h"
#include "qmma_stream.h"
#include "qmma_wide.h"

namespace rocq::gpu {

constexpr int kQmmaRT = 2;        // 16-row tiles per warp (x fragments reused across them)
constexpr int kQmmaMaxWarps = 8;  // warps per CTA (k shares): 4 or 8, see qmma_warps
constexpr int64_t kQmmaMaxRows = 64;  // rows of x launch_qmatvec hands it (8 tiles of 8)
// static shared memory of the kernel at most: the reduction tile (NT = 8) and the value table
constexpr int kQmmaStaticSmem = kQmmaRT * 16 * (8 * 8 + 1) * 4 + 256 * 4;

using QmmaArgs = QmatArgs;

// Whether the one-tile kernels (NT = 1: M <= 8) load a window's x fragments before waiting for
// its weight bytes (registers: kWC * S * 2 more per lane). H200, 70B FFN, every M forced onto
// qmma, same run (benchmarks/results/bench_qmatmul_h200_s4_xpre{0,1}.json), M = 1/2/4/8 us:
// Q4_0 55.7/67.2/72.8/77.2 -> 50.5/56.1/58.6/66.1, Q6_K 93.7/96.0/117.8/125.8 ->
// 84.8/86.0/94.0/98.7, MXFP4 102.5/122.4/131.0/140.6 -> 91.1/96.3/102.2/110.5, Q8_0 M=8 135 ->
// 111, IQ4_XS M=8 114 -> 98, Q4_K within 3%; Q5_K lost (72.9 -> 89.2 at M=1: 137 registers, one
// CTA per SM), so it keeps loading x per chunk.
template <int ID>
struct QmmaXPre {
  static constexpr bool kOn = ID != QT_Q5_K;
};

// Shared-memory window geometry of a format: kWinBytes per row per window (kWC chunks, whole
// blocks), kSpan the bytes a row's copy may cover (16-byte aligned start at or below the window).
template <int ID>
struct QmmaGeom {
  static constexpr int kWinBytes = QFragWin<ID>::kBytes;
  static constexpr int kSpan = kWinBytes % 16 == 0 ? kWinBytes : (kWinBytes + 30) / 16 * 16;
  // buffers per warp: 2 (one window in flight while one is decoded). Measured on the H200: 4
  // buffers cost occupancy (3 CTAs of 4 warps per SM) and gained nothing.
  static constexpr int kStages = 2;
  static constexpr int smem_bytes(int warps) { return warps * kStages * 16 * kQmmaRT * kSpan; }
};

template <int ID, int NT, int XK, bool XPRE>
__global__ void __launch_bounds__(kQmmaMaxWarps * kRqMmaLanes) qmma_kernel(QmmaArgs a) {
#if defined(ROCQ_MMA_NV)
  using F = QFrag<ID>;
  using T = typename XStore<XK>::T;
  constexpr RqOp OP = XK == (int)DType::BF16 ? RqOp::BF16 : RqOp::F16;
  constexpr int RT = kQmmaRT, S = F::kS, G = F::kG;
  __shared__ float red[RT * 16][NT * 8 + 1];

  const int W = blockDim.x / kRqMmaLanes, warp = threadIdx.x / kRqMmaLanes, lane = threadIdx.x % kRqMmaLanes;
  const int g = lane / 4, t = lane % 4;
  const int64_t row0 = (int64_t)blockIdx.x * (16 * RT);
  const int m0 = blockIdx.y * 8 * NT;
  __shared__ uint32_t lut[F::kLut ? 256 : 1];
  if constexpr (F::kLut) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) lut[i] = F::template lut<OP>(i);
    __syncthreads();
  }
  constexpr bool kPlane = rq_has_scale_plane(ID);
  static_assert(!kPlane || F::kWC % 4 == 0, "a window's scale bytes are whole words");
  // scale rows 4-byte aligned: word loads of a window's scale bytes
  const bool plane_words = kPlane && rq_plane_words(a.sc, a.k);
  const uint8_t* sp[RT][2];  // scale-plane rows (formats with one), read from global memory
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int64_t row = row0 + 16 * r + g + 8 * h;
      row = row < a.n ? row : a.n - 1;  // clamped: computed, never stored
      sp[r][h] = a.sc ? a.sc + row * (a.k / 32) : nullptr;
    }

  const T* xp[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int m = m0 + 8 * j + g;
    xp[j] = static_cast<const T*>(a.x) + (int64_t)(m < a.M ? m : a.M - 1) * a.k;
  }
  float acc[RT][NT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.f;

  // The x fragments of chunk c for x tile j (8-byte loads; L2 hits mostly): b[s] for step s.
  auto load_x = [&](int64_t c, int j, uint32_t (&b)[S][2]) {
    const int64_t e0 = F::x0(c);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const uint2 v = *reinterpret_cast<const uint2*>(xp[j] + e0 + F::xo(s, t));
      b[s][0] = v.x;
      b[s][1] = v.y;
    }
  };
  // One chunk's math from its raw bytes: decode every row tile once, then per 8 rows of x the
  // x fragments (xfrag(j, b): loaded now, or earlier with XPRE), the group sums of x (min-term
  // formats) and the products of every row tile.
  // Many x tiles: the scales folded into the operands once (qmma_stream.h qmma_folds).
  constexpr bool kFold = qmma_folds<ID, OP, NT>();
  auto chunk = [&](const typename F::Raw (&raw)[RT][2], auto&& xfrag) {
    uint32_t af[RT][S][4];
    float sc[RT][2][G], mn[RT][2][G];
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      qmma_decode_tile<ID, OP>(raw[r], lut, af[r], sc[r], mn[r]);
      if constexpr (kFold) qmma_fold_tile<ID, OP>(af[r], sc[r], mn[r]);
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      uint32_t b[S][2];
      xfrag(j, b);
      if constexpr (kFold) {
#pragma unroll
        for (int r = 0; r < RT; ++r) qmma_folded_products<ID, OP>(af[r], b, acc[r][j]);
      } else {
        float xsum[G][2];  // (min-term formats)
        if constexpr (F::kMin) qmma_xsums<ID, OP>(b, xsum);
#pragma unroll
        for (int r = 0; r < RT; ++r) qmma_tile_products<ID, OP>(af[r], sc[r], mn[r], b, xsum, acc[r][j]);
      }
    }
  };

  // Windows of kWC chunks (whole blocks, ~150-250 bytes per row): warp w takes windows w, w + W,
  // ... Each is copied for all the warp's rows into its own two-stage shared buffer with 16-byte
  // asynchronous copies (coalesced: a warp's copy reads whole row segments), the next window
  // in flight while this one is decoded from shared memory.
  constexpr int ROWS = 16 * RT, SPAN = QmmaGeom<ID>::kSpan, NV = SPAN / 16, ST = QmmaGeom<ID>::kStages;
  constexpr int64_t WB = QmmaGeom<ID>::kWinBytes;
  extern __shared__ __align__(16) uint8_t qmma_smem[];
  uint8_t* const bufs = qmma_smem + (size_t)warp * ST * ROWS * SPAN;
  const int64_t nch = a.k / F::kC;
  const int64_t nwin = (nch + F::kWC - 1) / F::kWC;
  // One-tile kernels (NT = 1, M <= 8): copies whose rows and bytes are all in bounds (every
  // window but a row's last ones, on every CTA but the last) take a fast path: 32-bit offsets
  // from the window's first byte in the CTA's first row, no clamps or checks. The checked loop
  // costs ~45 instructions per 16-byte copy, a third of the warp's instructions per window at
  // M = 8 (ncu and SASS, H200, session 6); the fast one ~16. Measured (H200, 70B FFN up;
  // bench_qmatmul_h200_session6_qmma_small.json against session5_fused_small.json): M = 3..8
  // 3-10% faster (Q4_0 M=4 58.7 -> 55.6 us, Q8_0 108.9 -> 100.6, Q4_K M=8 72.8 -> 69.0), but
  // the wider kernels' register allocation shifted and several lost (NT = 4, M = 32: Q4_0 144 ->
  // 156 us, MXFP4 193 -> 217; NT = 2: Q5_1 M=16 123 -> 147), so they keep the checked loop.
  const bool fast_rows = NT == 1 && row0 + ROWS <= a.n && a.row_bytes * ROWS < ((int64_t)1 << 31);
  const uint8_t* const q0 = a.qw + row0 * a.row_bytes;
  auto issue = [&](int64_t w, int stage) {  // window w into buffer `stage` (one commit group)
    if (w < nwin) {
      const int64_t a0 = (w * WB) & ~(int64_t)15;
      uint8_t* buf = bufs + stage * ROWS * SPAN;
      if (fast_rows && a0 + SPAN <= a.row_bytes) {
        const uint8_t* src = q0 + a0;
        const uint32_t rb = (uint32_t)a.row_bytes;
        // (not unrolled: unrolled, the compiler keeps every copy's offsets in registers, e.g.
        // 72 -> 128 registers for Q4_0, costing a CTA per multiprocessor; unsigned: cheaper
        // division by the constant and widening)
#pragma unroll 1
        for (uint32_t i = lane; i < (uint32_t)(ROWS * NV); i += kRqMmaLanes) {
          const uint32_t rr = i / NV, col = i - rr * NV;
          rq_cp_async16(buf + rr * SPAN + 16 * col, src + (rr * rb + 16 * col));
        }
      } else {
#pragma unroll 4
        for (int i = lane; i < ROWS * NV; i += kRqMmaLanes) {
          const int rr = i / NV, col = i % NV;
          int64_t row = row0 + rr;
          row = row < a.n ? row : a.n - 1;
          const int64_t off = a0 + 16 * col;
          if (off < a.row_bytes) rq_cp_async16(buf + rr * SPAN + 16 * col, a.qw + row * a.row_bytes + off);
        }
      }
    }
    rq_cp_async_commit();  // empty groups past the end keep the wait count uniform
  };
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) issue(warp + (int64_t)i * W, i);
  int stage = 0;
  for (int64_t w = warp; w < nwin; w += W) {
    issue(w + (int64_t)(ST - 1) * W, (stage + ST - 1) % ST);
    // XPRE: the window's x fragments are loaded before waiting for its weight bytes, so their
    // L2 latency overlaps that wait (NT = 1 only, and per format: QmmaXPre)
    const int wc = (w + 1) * F::kWC <= nch ? F::kWC : (int)(nch - w * F::kWC);  // chunks in this window
    uint32_t xw[XPRE ? F::kWC : 1][S][2];
    static_assert(!XPRE || NT == 1, "x fragments loaded ahead for one x tile only");
    if constexpr (XPRE) {
#pragma unroll
      for (int i = 0; i < F::kWC; ++i)
        if (i < wc) load_x(w * F::kWC + i, 0, xw[i]);
    }
    // Scale-plane formats: the window's E8M0 bytes of each row (kWC bytes, one per chunk), as
    // 4-byte words where the rows allow (k % 128 == 0), loaded before the wait as well
    // (one-tile kernels only: the wider ones spill with these registers)
    constexpr bool kPlaneWords = kPlane && XPRE;
    uint32_t sw[kPlaneWords ? RT : 1][2][kPlaneWords ? F::kWC / 4 : 1];
    if constexpr (kPlaneWords) {
      if (plane_words && wc == F::kWC) {
#pragma unroll
        for (int r = 0; r < RT; ++r)
#pragma unroll
          for (int h = 0; h < 2; ++h)
#pragma unroll
            for (int q = 0; q < F::kWC / 4; ++q) sw[r][h][q] = rq_g32(sp[r][h] + w * F::kWC + 4 * q);
      }
    }
    rq_cp_async_wait<ST - 1>();
    rq_warp_sync();
    const int64_t a0 = (w * WB) & ~(int64_t)15;
    const uint8_t* buf = bufs + stage * ROWS * SPAN;
    const uint8_t* win[RT][2];  // each row's window in shared memory (rows clamped to n - 1)
#pragma unroll
    for (int r = 0; r < RT; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) win[r][h] = buf + (16 * r + g + 8 * h) * SPAN + (WB % 16 == 0 ? 0 : (int)(w * WB - a0));
    auto one = [&](int i, auto whole) {
      typename F::Raw raw[RT][2];
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          raw[r][h] = F::load(win[r][h], i, t);
          if constexpr (kPlane) {  // (sw only with constant i: a whole, unrolled window)
            if constexpr (decltype(whole)::value && kPlaneWords)
              raw[r][h].e = plane_words ? (uint8_t)(sw[r][h][i / 4] >> (8 * (i % 4))) : sp[r][h][w * F::kWC + i];
            else
              raw[r][h].e = sp[r][h][w * F::kWC + i];
          }
        }
      if constexpr (XPRE) {
        chunk(raw, [&](int, uint32_t (&b)[S][2]) {
#pragma unroll
          for (int s = 0; s < S; ++s) b[s][0] = xw[i][s][0], b[s][1] = xw[i][s][1];
        });
      } else {
        chunk(raw, [&](int j, uint32_t (&b)[S][2]) { load_x(w * F::kWC + i, j, b); });
      }
    };
    if (wc == F::kWC) {  // a whole window: unrolled, so chunks overlap (ILP)
#pragma unroll
      for (int i = 0; i < F::kWC; ++i) one(i, std::true_type{});
    } else if constexpr (XPRE) {  // (constant indices into xw: unrolled with a guard)
#pragma unroll
      for (int i = 0; i < F::kWC; ++i)
        if (i < wc) one(i, std::false_type{});
    } else {
      for (int i = 0; i < wc; ++i) one(i, std::false_type{});
    }
    rq_warp_sync();  // every lane done reading before the buffer is refilled
    stage = (stage + 1) % ST;
  }
  rq_cp_async_wait<0>();

  // Sum the W warps' partials in warp order, then bias, round, store.
  for (int w = 0; w < W; ++w) {
    if (warp == w) {
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            float& o = red[16 * r + g + 8 * (e >> 1)][8 * j + 2 * t + (e & 1)];
            o = w == 0 ? acc[r][j][e] : o + acc[r][j][e];
          }
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < RT * 16 * NT * 8; i += blockDim.x) {
    const int rr = i % (RT * 16), mm = i / (RT * 16);
    const int64_t row = row0 + rr;
    const int m = m0 + mm;
    if (row < a.n && m < a.M) {
      float v = red[rr][mm];
      if (a.bias) v += a.bias[row];
      static_cast<T*>(a.y)[(int64_t)m * a.n + row] = rq_from_float<XK>(v);
    }
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched below sm_80 (qmma_supported); fail loudly rather than leave y unset
#endif
}

// Warps per CTA (each a share of k). 8, so that the CTA's 32 rows x all of k are cut fine
// enough for the 4096-row projections of 8B models (128 CTAs) and a 70B FFN layer runs 3 CTAs
// (24 warps) per multiprocessor: on the H200, Q4_0 70B FFN M=1 54.6 us with 8 warps, 68.3 with
// 4, 65.5 with 2, 97.1 with 1. 4 where 8 warps' buffers would leave one CTA per multiprocessor
// on a layer with many CTAs (Q6_K's 240-byte windows: 97 vs 107 us on the 70B layer); a small
// grid keeps 8 (Q6_K on the 8B down projection, 128 CTAs: 4 warps ran at 1.7x bf16 at M = 2).
// Halved further if the device cannot give the buffers.
template <int ID>
int qmma_warps(int64_t n, int64_t M) {
  const RqDeviceFacts d = rq_device_facts();
  const int sms = d.sms > 0 ? d.sms : 64, optin = d.optin;
  const int64_t ctas = rq_ceil_div(n, (int64_t)16 * kQmmaRT) * rq_ceil_div(M, kQmmaMaxRows);
  int warps = QmmaGeom<ID>::smem_bytes(8) <= 96 * 1024 || ctas < 2 * (int64_t)sms ? 8 : 4;
  while (warps > 1 && QmmaGeom<ID>::smem_bytes(warps) + kQmmaStaticSmem > optin) warps /= 2;
  return warps;
}

// Launch for x dtype XK (F16 or BF16), defined per dtype in qmma_{f16,bf16}.hip.
template <int XK>
const char* qmma_launch_dtype(int qtype, const QmmaArgs& a, gpuStream_t stream);

// ROCQ_QMMA_STREAM (read once per process): 0 keeps every one-tile call (M <= 8) on
// qmma_kernel, 1 hands the streaming kernel every format it has; otherwise the calls where it
// measured faster (QmmaStreamCfg::takes).
inline int qmma_stream_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QMMA_STREAM");
    return v && v[0] == '0' ? 0 : (v && v[0] == '1' ? 1 : 2);
  }();
  return mode;
}

// The streaming matrix-unit kernel's grid for a one-tile call on the current device (persistent
// CTAs: resident CTAs per multiprocessor x multiprocessors, at most one per row group), 0 where
// it does not apply: rows not whole 16-byte copies (or weights not 16-byte aligned), fewer row
// groups than multiprocessors (qmma_kernel splits k finer), shared memory it cannot have.
template <int ID, int XK>
int64_t qmma_stream_grid(const QmmaArgs& a) {
  using Cfg = QmmaStreamCfg<ID>;
  if constexpr (!Cfg::kOn) {
    (void)a;
    return 0;
  } else {
    const int mode = qmma_stream_mode();
    if (mode == 0 || (mode == 2 && !Cfg::takes(a.k, a.M)) || a.M > 8) return 0;
    const int dev = rq_current_device();
    constexpr int kMaxDev = 64;
    if (dev < 0 || dev >= kMaxDev) return 0;
    const RqDeviceFacts d = rq_device_facts(dev);
    const int64_t groups = rq_ceil_div(a.n, (int64_t)Cfg::kRows), smem = Cfg::smem(Cfg::kStages);
    if (a.row_bytes % 16 != 0 || (reinterpret_cast<uintptr_t>(a.qw) & 15) != 0 || smem > d.optin || d.sms <= 0 ||
        groups < d.sms || Cfg::kRows * a.row_bytes >= ((int64_t)1 << 31))
      return 0;
    static std::mutex mu;
    static int occ[kMaxDev] = {};  // resident CTAs per multiprocessor, once opted in (0: not yet)
    std::lock_guard<std::mutex> lock(mu);
    if (occ[dev] == 0) {
      const void* kern = reinterpret_cast<const void*>(&qmma_stream_kernel<ID, XK, Cfg::kStages>);
      if (rq_func_set_max_dynamic_smem(kern, (int)smem) != ROCQ_GPU_SUCCESS) {
        (void)rq_last_error();  // clear it: qmma_kernel takes the call
        occ[dev] = -1;
      } else {
        const int v = rq_blocks_per_sm(kern, Cfg::kThreads, (size_t)smem);
        occ[dev] = v > 0 ? v : -1;
      }
    }
    if (occ[dev] < 0) return 0;
    const int64_t resident = (int64_t)occ[dev] * d.sms;
    return groups < resident ? groups : resident;
  }
}

// ROCQ_QMMA_WIDE (read once per process): 0 keeps calls of more than 8 rows of x on qmma_kernel.
inline bool qmma_wide_on() {
  static const bool on = [] {
    const char* v = std::getenv("ROCQ_QMMA_WIDE");
    return !(v && v[0] == '0');
  }();
  return on;
}

// Whether the wide kernel (qmma_wide.h) takes a call of more than 8 rows of x (shape only, no
// pointers): whole 16-byte weight rows and x rows (k % 8), every x-tile count's shared memory
// fits the device's opt-in limit, and its CTAs of 128 weight rows fill the device once (fewer lose to qmma_kernel, which
// splits k: H200, bench_qmatmul_h200_s9k_{A,B}.json, M = 9 / 16 / 32, us, qmma_kernel -> wide:
// 70B FFN up (224 CTAs) Q4_0 88.9 -> 78.5 / 105.8 -> 74.0 / 145.2 -> 102.3, Q4_K 106.5 -> 106.7 /
// 145.5 -> 103.0 / 209.9 -> 147.8, Q8_0 160.3 -> 130.2 / 170.6 -> 129.0 / 252.6 -> 149.9; 8B
// FFN up (112 CTAs) mixed, e.g. Q4_1 28.0 -> 33.7 / 29.6 -> 35.1; 4096 x 4096 (32 CTAs) 2-3x
// slower. CTAs of 4 warps (64 rows) on the 8B FFN up layer were mixed too: faster at M = 32
// (Q8_0 79.5 -> 58.6, IQ4_XS 68.3 -> 53.8), slower at M = 9 (Q4_1 27.7 -> 35.5) and 48 (MXFP4
// 87.7 -> 149.2): bench_qmatmul_h200_s9m_{A,B}.json, not kept.)
template <int ID>
bool qmma_wide_shape_ok(int64_t n, int64_t k, int64_t row_bytes) {
  using Cfg = QmmaWideCfg<ID>;
  if constexpr (!Cfg::kOn || Cfg::stages(8) == 0) {
    (void)n, (void)k, (void)row_bytes;
    return false;
  } else {
    if (!qmma_wide_on()) return false;
    const RqDeviceFacts d = rq_device_facts();
    // (the largest of the x-tile counts' dynamic shared memory, plus at most 1 KB of static table)
    constexpr int64_t s24 = Cfg::smem(2) > Cfg::smem(4) ? Cfg::smem(2) : Cfg::smem(4);
    constexpr int64_t smem = (s24 > Cfg::smem(8) ? s24 : Cfg::smem(8)) + 1024;
    return row_bytes % 16 == 0 && k % 8 == 0 && smem <= d.optin && d.sms > 0 &&
           rq_ceil_div(n, (int64_t)Cfg::kRows) >= d.sms;
  }
}
template <int ID>
bool qmma_wide_ok(const QmmaArgs& a) {
  return (reinterpret_cast<uintptr_t>(a.qw) & 15) == 0 && (reinterpret_cast<uintptr_t>(a.x) & 15) == 0 &&
         qmma_wide_shape_ok<ID>(a.n, a.k, a.row_bytes);
}

template <int XK, int ID>
const char* qmma_launch_fmt(const QmmaArgs& a, gpuStream_t stream) {
  if (const int64_t sg = qmma_stream_grid<ID, XK>(a); sg > 0) {
    using Cfg = QmmaStreamCfg<ID>;
    qmma_stream_kernel<ID, XK, Cfg::kStages><<<(unsigned)sg, Cfg::kThreads, (size_t)Cfg::smem(Cfg::kStages), stream>>>(a);
    const gpuError_t e = rq_last_error();
    return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
  }
  const int nt = a.M <= 8 ? 1 : (a.M <= 16 ? 2 : (a.M <= 32 ? 4 : 8));
  if (nt > 1 && qmma_wide_ok<ID>(a)) {
    bool declined = false;  // (the device refused the wide kernel's shared memory)
    auto wide = [&](auto ntc) -> const char* {
      constexpr int NT = decltype(ntc)::value;
      using Cfg = QmmaWideCfg<ID>;
      constexpr int NS = Cfg::stages(NT);
      if constexpr (NS == 0) {
        return "rocq qmma: no wide instance";  // (qmma_wide_ok rules it out)
      } else {
        auto kern = qmma_wide_kernel<ID, XK, NT, NS>;
        const int smem = (int)Cfg::smem(NT);
        if (rq_func_set_max_dynamic_smem((const void*)kern, smem) != ROCQ_GPU_SUCCESS) {
          (void)rq_last_error();  // clear it: qmma_kernel takes the call
          declined = true;
          return nullptr;
        }
        const dim3 grid((unsigned)rq_ceil_div(a.n, (int64_t)Cfg::kRows), (unsigned)rq_ceil_div(a.M, (int64_t)8 * NT));
        kern<<<grid, Cfg::kThreads, smem, stream>>>(a);
        const gpuError_t e = rq_last_error();
        return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
      }
    };
    const char* r = nt == 2 ? wide(std::integral_constant<int, 2>{})
                            : nt == 4 ? wide(std::integral_constant<int, 4>{}) : wide(std::integral_constant<int, 8>{});
    if (!declined) return r;
  }
  const dim3 grid((unsigned)rq_ceil_div(a.n, (int64_t)16 * kQmmaRT), (unsigned)rq_ceil_div(a.M, 8 * nt));
  const int warps = qmma_warps<ID>(a.n, a.M);
  const dim3 block(kRqMmaLanes * warps);
  const int smem = QmmaGeom<ID>::smem_bytes(warps);
  auto go = [&](auto kernel) -> const char* {
    // (per call: the attribute belongs to the current device's context; host-only call)
    if (rq_func_set_max_dynamic_smem((const void*)kernel, smem) != ROCQ_GPU_SUCCESS)
      return "rocq qmma: this device cannot give the kernel its shared memory";
    kernel<<<grid, block, smem, stream>>>(a);
    const gpuError_t e = rq_last_error();
    return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
  };
  switch (nt) {
    case 1: return go(qmma_kernel<ID, 1, XK, QmmaXPre<ID>::kOn>);
    case 2: return go(qmma_kernel<ID, 2, XK, false>);
    case 4: return go(qmma_kernel<ID, 4, XK, false>);
    default: return go(qmma_kernel<ID, 8, XK, false>);
  }
}

#define ROCQ_QMMA_INSTANTIATE(XK)                                                                 \
  template <>                                                                                     \
  const char* qmma_launch_dtype<XK>(int qtype, const QmmaArgs& a, gpuStream_t s) {                \
    const char* err = "rocq qmma: no fragment decoder for this qtype";                           \
    dispatch_format(qtype, [&](auto codec) {                                                      \
      constexpr int id_ = decltype(codec)::kId;                                                   \
      if constexpr (kQFragOn<id_>) err = qmma_launch_fmt<XK, id_>(a, s);                        \
    });                                                                                           \
    return err;                                                                                   \
  }

}  // namespace rocq::gpu
