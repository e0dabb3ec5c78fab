// The fused decode-path kernels (y = x @ W^T for a few rows of x), templated on the format,
// the number of x rows they handle at once (MT) and the activation dtype (XK). Included by
// qmatvec_{f32,f16,bf16}_m{1,2,4,8}.hip, one (dtype, MT) per file so that they compile in
// parallel, and by qmatvec.hip (the launcher).
//   * qmv_piece_kernel: the fast kernel, for every format (qdot.h, qdot_k.h: fp32 pieces;
//     qdot_int.h: integer pieces for 16-bit x). Needs 16-byte aligned rows and x.
//   * qmv_simple_kernel: whatever the fast one does not take (rows or x not 16-byte aligned,
//     dense formats with k % 8 != 0): correct for every format and size, not fast.
// Nothing below assumes a warp width: the same source serves 32- and 64-wide warps.
#pragma once

#include <cstdlib>

#include "qdot_int.h"

namespace rocq::gpu {

constexpr int kQmvThreads = 128;

struct QmvArgs : QmatArgs {
  int rows;  // simple kernel: weight rows per CTA; piece kernel: k-splits (qmv_piece_launch_cfg)
  // x in 16-bit fixed point for the integer pieces (qdot_int.h), else null
  const int16_t* xq;
  const float* xs;
};

// x in fixed point for the integer pieces (qdot_int.h), one 32-element block of 16-bit x at src
// (16-byte aligned): q = the block's values as int16 (4 x 16 bytes, element order), returns the
// block's scale 2^-e, e chosen so that the block's max |x| * 2^e lies in [2^(BITS-1), 2^BITS);
// values round half to even and clamp to +-(2^BITS - 1). BITS = 15, but 14 for the integer
// matrix-unit kernel (qimma_stream.h), whose x bytes hi * 256 + lo need |hi| <= 127. A block holding inf/NaN gets a NaN scale (its
// products become NaN) and zero values; a block whose max is below 2^-100, or zero, becomes
// zeros with scale 0. Used by qmv_xquant_kernel (qmatvec.hip) and the streaming kernel.
// (Measured and not kept: the same values with frexpf / ldexpf replaced by exponent bits and a
// multiply by 2^e, 487 -> 348 instructions a block in the streaming kernel's prologue, made that
// kernel no faster: H200, M = 1, 70B FFN up Q2_K 25.9 -> 26.0 / 26.1 us, E2M3 52.8 -> 53.4 / 53.5,
// Q4_0 34.4 -> 34.3; 8B FFN up 1-3% slower, e.g. IQ4_XS 14.5 -> 14.9; benchmarks/results/
// bench_qmatmul_h200_s14h_{A,B,A2,B2,A3,B3}.json. As with issuing the first copies before the
// rounding (qmatvec_stream.h), a shorter prologue does not help the stream that follows it.)
template <int XK, int BITS = 15>
ROCQ_DEVICE float rq_xquant_block(const typename XStore<XK>::T* src, uint4 (&q)[4]) {
  const uint4* s4 = reinterpret_cast<const uint4*>(src);
  float v[32];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint4 u = s4[j];
    rq_unpack2<XK>(u.x, v[8 * j], v[8 * j + 1]);
    rq_unpack2<XK>(u.y, v[8 * j + 2], v[8 * j + 3]);
    rq_unpack2<XK>(u.z, v[8 * j + 4], v[8 * j + 5]);
    rq_unpack2<XK>(u.w, v[8 * j + 6], v[8 * j + 7]);
  }
  float amax = 0.f;
  bool nonfinite = false;
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    amax = fmaxf(amax, fabsf(v[j]));
    nonfinite |= !(fabsf(v[j]) <= 3.4e38f);
  }
  int ex = 0;
  frexpf(amax, &ex);
  const bool zero = amax == 0.f || ex < -100;
  const int e = zero ? 0 : BITS - ex;
  uint32_t w[16];
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    int r2[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = (zero || nonfinite) ? 0 : __float2int_rn(ldexpf(v[2 * j + h], e));
      constexpr int kMax = (1 << BITS) - 1;
      r2[h] = r > kMax ? kMax : (r < -kMax ? -kMax : r);
    }
    w[j] = ((uint32_t)r2[0] & 0xFFFFu) | ((uint32_t)r2[1] << 16);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) q[j] = make_uint4(w[4 * j], w[4 * j + 1], w[4 * j + 2], w[4 * j + 3]);
  return nonfinite ? __int_as_float(0x7FC00000) : (zero ? 0.f : ldexpf(1.f, -e));
}

// Warp sums of a thread's V partial results (V a power of two, at most the warp width), value i
// written to out[i] by one lane: the halving exchange (each step a lane keeps half of its values,
// sends the other half to its partner at the next lower power-of-two distance and adds what it
// receives) costs V - 1 shuffles for the first log2(V) steps and one per step after, instead of V
// per step (4 values on 32 lanes: 6 shuffles, not 20). Fixed order: deterministic.
template <int V>
ROCQ_DEVICE void rq_warp_sums_multi(const float (&v)[V], float* out, int lane) {
  static_assert((V & (V - 1)) == 0 && V <= ROCQ_WARP_SIZE, "a power of two, at most the warp width");
  float cur[V];
#pragma unroll
  for (int i = 0; i < V; ++i) cur[i] = v[i];
  int idx = 0;  // which value this lane's cur[0] sums
  int off = ROCQ_WARP_SIZE / 2;
#pragma unroll
  for (int n = V; n > 1; n /= 2, off /= 2) {
    const bool upper = (lane & off) != 0;
#pragma unroll
    for (int i = 0; i < n / 2; ++i) {
      const float send = upper ? cur[i] : cur[i + n / 2];
      const float keep = upper ? cur[i + n / 2] : cur[i];
      cur[i] = keep + rq_shfl_xor(send, off);
    }
    idx += upper ? n / 2 : 0;
  }
#pragma unroll
  for (; off > 0; off /= 2) cur[0] += rq_shfl_xor(cur[0], off);
  if ((lane & (ROCQ_WARP_SIZE / V - 1)) == 0) out[idx] = cur[0];
}

// Warp sums of a thread's R x MT partial results, written by lane 0 to out[r * MT + m].
template <int R, int MT>
ROCQ_DEVICE void rq_warp_sums(const float (&acc)[R][MT], float* out, int lane) {
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = rq_warp_sum(acc[r][m]);
      if (lane == 0) out[r * MT + m] = v;
    }
}

// Simple kernel (rows or x not 16-byte aligned, dense formats with k % 8 != 0): one warp per row, lane-strided 8-element runs decoded straight from
// global memory with the codec; scalar x loads. Correct for every format and size.
template <int ID, int XK>
__global__ void __launch_bounds__(kQmvThreads) qmv_simple_kernel(QmvArgs a) {
  using C = Codec<ID>;
  using T = typename XStore<XK>::T;
  constexpr int WS = ROCQ_WARP_SIZE;
  constexpr int NWARP = kQmvThreads / WS;
  constexpr int MT = 8;
  const int warp = threadIdx.x / WS, lane = threadIdx.x % WS;
  const XRows<XK> xl{static_cast<const T*>(a.x), a.k, a.M};
  for (int rr = warp; rr < a.rows; rr += NWARP) {
    const int64_t row = (int64_t)blockIdx.x * a.rows + rr;
    if (row >= a.n) break;
    const uint8_t* rowp = a.qw + row * a.row_bytes;
    const uint8_t* srow = a.sc ? a.sc + row * (a.k / 32) : nullptr;
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = 0.f;
    const int64_t runs = (a.k + 7) / 8;
    for (int64_t t = lane; t < runs; t += WS) {
      const int64_t e0 = 8 * t;
      float v[8];
      int cnt = 8;
      if constexpr (C::kElems == 1) {
        if (e0 + 8 <= a.k) {
          C::decode8(rowp, 0, (int)t, v);
        } else {
          cnt = (int)(a.k - e0);
          for (int j = 0; j < cnt; ++j) C::decode_block(rowp + (e0 + j) * C::kBytes, 0, v + j);
        }
      } else {
        const int64_t blk = e0 / C::kElems;
        const uint8_t scale = srow ? srow[e0 / 32] : (uint8_t)0;
        C::decode8(rowp + blk * C::kBytes, scale, (int)((e0 % C::kElems) / 8), v);
      }
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m < a.M) {
          for (int j = 0; j < cnt; ++j) acc[m] = fmaf(v[j], xl.load1(m, e0 + j), acc[m]);
        }
      }
    }
    T* y = static_cast<T*>(a.y);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = rq_warp_sum(acc[m]);
      if (lane == 0 && m < a.M) {
        if (a.bias) v += a.bias[row];
        y[(int64_t)m * a.n + row] = rq_from_float<XK>(v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Register-blocked kernel (every format has a Piece<ID>, qdot*.h). A CTA owns R consecutive weight
// rows; its threads walk k together: thread t takes pieces t, t + kQmvThreads, ... (a piece =
// NQ quads = 8*NQ elements of one block, so neighbouring threads read neighbouring bytes). Per
// piece it loads the x values of those positions (all MT rows of x) once into registers and
// runs the piece's dot for each of the R weight rows: x is read R times less often than the
// weights, and the weight bytes come straight from global memory (no shared-memory staging,
// no x tile: the launch needs no dynamic shared memory for any k). At the end each warp
// reduces its R*MT sums with shuffles and the CTA adds the per-warp sums in a fixed order
// (deterministic). The same source serves 32- and 64-wide warps.
// ---------------------------------------------------------------------------------------------
constexpr int kQmvTasks = 4;  // (row group, k-split) tasks per CTA of the piece kernel
// "Wide" configurations (4 weight rows per task, the format's widest pieces) where registers
// allow: up to 2 rows of x, and up to 4 on the integer pieces (x held as int16 pairs). At M = 1
// the integer pieces take 8 rows per task and whole 32-element groups (4 quads) per piece.
// Measured on the H200, 70B FFN: session 2 (benchmarks/results/tune_m1_h200.md) Q4_0 51.8 ->
// 48.6 us, Q4_K 62.9 -> 50.1 us; session 4, the 32-element formats, same run (defaults -> 4 rows
// whole blocks -> 8 rows whole blocks, bench_qmatmul_h200_s4_m1v{0,2,1}.json): Q4_0 45.9 / 55.7
// / 44.7, Q8_0 69.3 / 71.3 / 67.2, IQ4_NL 63.1 / 59.0 / 55.3, IQ4_XS 66.5 / 59.6 / 56.0, MXFP4
// 64.5 / 59.5 / 54.2, OCP MXFP4 57.4 / 56.6 / 50.5 (the 8B shapes agree); with the new integer
// pieces (bench_qmatmul_h200_s4_int_pieces.json) Q4_1 42.5, Q5_0 52.1, Q5_1 50.3, Q5_K 71.3 us.
// Q6_K keeps the defaults: whole groups made it 82.5 -> 119.1 us (its ql/qh words as aligned runs
// instead: 82.5 -> 75.7, bench_qmatmul_h200_s4_q6k_runs.json). At M = 2 whole groups (with 4
// rows per task: 8 spill) lost everywhere (Q4_0 60.1 -> 84.9 us, Q8_0 79.8 -> 100.4, IQ4_NL 77.5
// -> 86.8: bench_qmatmul_h200_s4_m2_pieces.json). Q4_K with 8 quads per piece (a sub-block pair:
// scales unpacked once per 64 elements) lost too: 50.7 -> 73.9 us (bench_qmatmul_h200_s4_q4k_nq8).
template <int ID>
struct QmvIntM1 {  // (rows per task, quads per piece) of the integer pieces at M = 1; 0: default
  static constexpr bool kWhole = ID == QT_Q4_0 || ID == QT_Q4_1 || ID == QT_Q5_0 || ID == QT_Q5_1 ||
                                 ID == QT_Q8_0 || ID == QT_Q4_K || ID == QT_Q5_K || ID == QT_IQ4_NL ||
                                 ID == QT_IQ4_XS || ID == QT_MXFP4 || ID == QT_OCP_MXFP4 || ID == QT_OCP_MXINT8;
  static constexpr int R = kWhole ? 8 : 0;
  static constexpr int NQ = kWhole ? 4 : 0;
};
template <int MT, bool INT, int ID>
struct QmvPieceCfg {
  static constexpr bool kWide = MT <= 2 || (INT && MT <= 4);
  static constexpr int R = INT && MT == 1 && QmvIntM1<ID>::R ? QmvIntM1<ID>::R : (kWide ? 4 : 2);  // rows per task
};
template <int ID, int MT, bool INT>
struct QmvPieceNQ {  // quads per piece
  static constexpr int v = INT && MT == 1 && QmvIntM1<ID>::NQ ? QmvIntM1<ID>::NQ
                           : QmvPieceCfg<MT, INT, ID>::kWide ? Piece<ID>::kMaxNQ : 1;
  static constexpr bool plane = rq_has_scale_plane(ID);
};

template <int ID, int MT, int XK, bool INT>
__global__ void __launch_bounds__(kQmvThreads, (QmvPieceCfg<MT, INT, ID>::kWide ? 4 : 3)) qmv_piece_kernel(QmvArgs a) {
  using C = Codec<ID>;
  using P = Piece<ID>;
  using T = typename XStore<XK>::T;
  constexpr int WS = ROCQ_WARP_SIZE;
  constexpr int NWARP = kQmvThreads / WS;
  constexpr int R = QmvPieceCfg<MT, INT, ID>::R;
  constexpr int NQ = QmvPieceNQ<ID, MT, INT>::v;
  constexpr int UE = Unit<C>::kElems, UB = Unit<C>::kBytes;
  constexpr int PPB = P::kQuads / NQ;  // pieces per unit
  static_assert(P::kQuads % NQ == 0, "quads per unit must split into pieces");
  constexpr bool kPlane = QmvPieceNQ<ID, MT, INT>::plane;

  __shared__ float lut[64];
  __shared__ float red[kQmvTasks][R * MT];
  if constexpr (P::kLut) {
    static_assert(P::kLutSize <= 64, "piece tables hold at most 64 entries");
    if (threadIdx.x < P::kLutSize) lut[threadIdx.x] = P::table(threadIdx.x);
    __syncthreads();
  }
  const int S = a.rows;          // k-splits per row group: 1, 2 or 4 (launcher's choice)
  const int RG = kQmvTasks / S;  // row groups (of R rows) per CTA
  const int warp = threadIdx.x / WS, lane = threadIdx.x % WS;
  const XRows<XK> xg{static_cast<const T*>(a.x), a.k, a.M};
  const int64_t np = (a.k / UE) * PPB;

  // Task t = (row group t / S, k-split t % S); warps take tasks t = warp, warp + NWARP, ...
  for (int t = warp; t < kQmvTasks; t += NWARP) {
    const int g = t / S, split = t % S;
    const int64_t row0 = ((int64_t)blockIdx.x * RG + g) * R;
    const uint8_t* rp[R];
    const uint8_t* sp[R];
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      const int64_t row = row0 + rr < a.n ? row0 + rr : a.n - 1;  // clamp: computed, not written
      rp[rr] = a.qw + row * a.row_bytes;
      sp[rr] = kPlane ? a.sc + row * (a.k / 32) : nullptr;
    }
    float acc[R][MT];
#pragma unroll
    for (int rr = 0; rr < R; ++rr)
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[rr][m] = 0.f;

    constexpr int kUnroll = MT <= 2 ? 2 : 1;  // two pieces' loads in flight where registers allow
#pragma unroll kUnroll
    for (int64_t p = (int64_t)split * WS + lane; p < np; p += (int64_t)S * WS) {
      const int64_t b = p / PPB;
      const int Q0 = (int)(p % PPB) * NQ;
      const int64_t e0 = b * UE;
      if constexpr (INT) {  // 16-bit x in fixed point, integer dot products (qdot_int.h)
        const XIRows xi{a.xq, a.xs, a.k, a.M};
        XIPiece<MT, NQ> x;
#pragma unroll
        for (int q = 0; q < NQ; ++q) {
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            x.sa[q][m] = x.sb[q][m] = 0;
            x.fa[q][m] = xi.scale(m, e0 + P::xa(Q0 + q));
            x.fb[q][m] = xi.scale(m, e0 + P::xb(Q0 + q));
            xi.load4(m, e0 + P::xa(Q0 + q), x.a[q][m], x.sa[q][m]);
            xi.load4(m, e0 + P::xb(Q0 + q), x.b[q][m], x.sb[q][m]);
          }
        }
#pragma unroll
        for (int rr = 0; rr < R; ++rr) {
          const uint8_t s = kPlane ? sp[rr][b] : (uint8_t)0;  // plane formats: 32-element units
          PieceInt<ID>::template dot<MT, NQ>(rp[rr] + b * UB, Q0, s, x, acc[rr]);
        }
      } else {
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
#pragma unroll
        for (int rr = 0; rr < R; ++rr) {
          const uint8_t s = kPlane ? sp[rr][b] : (uint8_t)0;  // plane formats: 32-element units
          P::template dot<MT, NQ>(rp[rr] + b * UB, Q0, s, x, lut, acc[rr]);
        }
      }
    }
    rq_warp_sums<R, MT>(acc, red[t], lane);
  }
  __syncthreads();
  // Sum the S k-splits of each output in a fixed order (deterministic), add bias, store.
  for (int i = threadIdx.x; i < RG * R * MT; i += kQmvThreads) {
    const int g = i / (R * MT), j = i % (R * MT);
    const int rr = j / MT, m = j % MT;
    const int64_t row = ((int64_t)blockIdx.x * RG + g) * R + rr;
    if (row < a.n && m < a.M) {
      float v = 0.f;
      for (int sp = 0; sp < S; ++sp) v += red[g * S + sp][j];
      if (a.bias) v += a.bias[row];
      static_cast<T*>(a.y)[(int64_t)m * a.n + row] = rq_from_float<XK>(v);
    }
  }
}

// k-splits for the piece kernel: the fewest (1, 2, 4) that give >= 4 CTAs per multiprocessor,
// sized with `rows` weight rows per task (the wide configurations' 4, else 2; the M = 1 kernels
// with 8 rows keep that sizing: half as many CTAs, still >= 2 per SM, as measured).
inline int qmv_piece_splits(int64_t n, int rows) {
  const int v = rq_device_facts().sms, sms = v > 0 ? v : 64;
  for (int S : {1, 2})
    if (rq_ceil_div(n, (int64_t)rows * (kQmvTasks / S)) >= 4 * sms) return S;
  return 4;
}

// One launch of the piece kernel; it takes the k-splits S in QmvArgs::rows (a CTA covers
// R * kQmvTasks / S weight rows). The integer pieces run when the launcher quantized x (a.xq
// set; only for formats with a PieceInt).
template <int ID, int MT, int XK, bool INT>
const char* qmv_piece_launch_cfg(QmvArgs a, gpuStream_t stream) {
  using Cfg = QmvPieceCfg<MT, INT, ID>;
  // ROCQ_QMV_SPLITS=1|2|4 (read once per process) forces the k-splits, for tuning runs
  static const int forced = [] {
    const char* v = std::getenv("ROCQ_QMV_SPLITS");
    const int s = v ? std::atoi(v) : 0;
    return s == 1 || s == 2 || s == 4 ? s : 0;
  }();
  a.rows = forced ? forced : qmv_piece_splits(a.n, Cfg::kWide ? 4 : 2);
  const dim3 grid((unsigned)rq_ceil_div(a.n, (int64_t)Cfg::R * (kQmvTasks / a.rows)));
  qmv_piece_kernel<ID, MT, XK, INT><<<grid, kQmvThreads, 0, stream>>>(a);
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}
template <int ID, int MT, int XK>
const char* qmv_piece_launch_one(const QmvArgs& a, gpuStream_t stream) {
  // (integer kernels only where the backend has a fast integer dot: launch_qmatvec never
  // quantizes x elsewhere, so they would be dead code)
  if constexpr (kRqIntDot && PieceInt<ID>::kOn && XK != (int)DType::F32)
    if (a.xq) return qmv_piece_launch_cfg<ID, MT, XK, true>(a, stream);
  return qmv_piece_launch_cfg<ID, MT, XK, false>(a, stream);
}

// One launch of the fast kernel for activation dtype XK and up to MT rows of x (defined in
// qmatvec_<dtype>_m<MT>.hip, one file each so that they compile in parallel), and of the simple
// kernel (qmatvec.hip). Return nullptr or an error string.
template <int XK, int MT>
const char* qmv_launch(int qtype, const QmvArgs& a, gpuStream_t stream);
template <int XK>
const char* qmv_simple_launch(int qtype, const QmvArgs& a, gpuStream_t stream);
// The streaming kernel (qmatvec_stream.hip) for M = 1, 2 rows of 16-bit x on the integer path:
// qmv_stream_plan gives its plan for such a call (0: another kernel takes it; -1: ROCQ_QMV_STREAM=3
// and it cannot, which qmv_stream_launch reports; else positive: the grid and the row-group shape,
// qmatvec_stream.hip), qmv_stream_launch runs it with that plan (a.M the M it was planned for).
// scales: the scale plane (OCP MX formats), which it copies 4 bytes at a time: it declines
// planes that are not 4-byte aligned or whose rows (k / 32 bytes) are not 4-byte multiples.
int64_t qmv_stream_plan(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes,
                        const uint8_t* scales);
const char* qmv_stream_launch(int qtype, DType dtype, const QmvArgs& a, int64_t plan, gpuStream_t stream);

inline dim3 qmv_grid(const QmvArgs& a) { return dim3((unsigned)rq_ceil_div(a.n, a.rows)); }

#define ROCQ_QMV_INSTANTIATE(XK, MT)                                                      \
  template <>                                                                             \
  const char* qmv_launch<XK, MT>(int qtype, const QmvArgs& a, gpuStream_t s) {            \
    const char* err = "rocq qmatvec: unknown qtype";                                     \
    dispatch_format(qtype, [&](auto codec) {                                              \
      constexpr int id_ = decltype(codec)::kId;                                           \
      static_assert(Piece<id_>::kOn, "every format has a piece (qdot*.h)");               \
      err = qmv_piece_launch_one<id_, MT, XK>(a, s);                                      \
    });                                                                                   \
    return err;                                                                           \
  }

}  // namespace rocq::gpu
