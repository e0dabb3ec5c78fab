// One thread's share of the streaming kernels' stage copies (qmatvec_stream.h, qmma_stream.h):
// a stage holds R rows' next RB bytes each (row r at r * STRIDE), copied with 16-byte
// asynchronous copies (rq_cp_async16) by NT threads. This thread's copies are the same in every
// stage: vector j = tid + i * NT is row j / CPR, 16 bytes at 16 * (j % CPR) (neighbouring
// threads, neighbouring bytes), their offsets computed once, in 32 bits (R rows of a layer are
// far below 2 GB: the launchers check). The kernels keep the cursor over (row group, stage:
// rq_stage_next) and pick the whole-stage copy (two compares and 32-bit offsets: the per-copy bounds and 64-bit
// arithmetic were 12% of a stage's instructions) or the bounded one (a group's last rows, a
// row's last, shorter stage: still whole 16-byte copies, as rows are 16-byte multiples).
#pragma once

#include "qcommon.h"

namespace rocq::gpu {

template <int R, int RB, int STRIDE, int NT>
struct StageCopies {
  static constexpr int CPR = RB / 16, NCP = (R * CPR + NT - 1) / NT;
  uint32_t src[NCP];  // from the group's first row (unsigned: no sign extension to 64 bits)
  int dst[NCP];       // into the stage; < 0: no copy
  ROCQ_DEVICE StageCopies(int tid, int row_bytes) {
#pragma unroll
    for (int i = 0; i < NCP; ++i) {
      const int j = tid + i * NT, r = j / CPR, v = j % CPR;
      src[i] = (uint32_t)(r * row_bytes + 16 * v);
      dst[i] = j < R * CPR ? r * STRIDE + 16 * v : -1;
    }
  }
  // A whole stage: every row, RB bytes from g (the group's first row at the stage's offset).
  ROCQ_DEVICE void whole(uint8_t* s, const uint8_t* g) const {
#pragma unroll
    for (int i = 0; i < NCP; ++i)
      if (i + 1 < NCP || dst[i] >= 0) rq_cp_async16(s + dst[i], g + src[i]);
  }
  // The rows of group ig below n, bytes [off, row_bytes) of each where that is less than RB.
  ROCQ_DEVICE void part(uint8_t* s, const uint8_t* g, int tid, const QmatArgs& a, int64_t ig, int off) const {
    const int per_row = a.row_bytes - off < RB ? (int)((a.row_bytes - off) / 16) : CPR;
    const int rows = a.n - ig * R < R ? (int)(a.n - ig * R) : R;
#pragma unroll
    for (int i = 0; i < NCP; ++i) {
      const int j = tid + i * NT, r = j / CPR, v = j % CPR;
      if (dst[i] >= 0 && r < rows && v < per_row) rq_cp_async16(s + dst[i], g + src[i]);
    }
  }
};

// The issue cursor's step to the next item: stage ic + 1 of the group, or stage 0 of the group a
// grid further on (gsrc: that group's first row), into shared stage ist + 1 (mod NS).
template <int NS>
ROCQ_DEVICE void rq_stage_next(int& ic, int& ist, int64_t& ig, const uint8_t*& gsrc, int nc, int64_t gstep) {
  if (++ic == nc) {
    ic = 0;
    ig += gridDim.x;
    gsrc += gstep;
  }
  ist = ist + 1 == NS ? 0 : ist + 1;
}

// one(i) for chunks i < wc of a warp's window of WC (qmma_stream.h, qimma_stream.h): unrolled
// without tests where the window is whole (every window but a row's last), else each under its
// test.
template <int WC, typename F>
ROCQ_DEVICE void rq_window_each(int wc, F&& one) {
  if (wc == WC) {
#pragma unroll
    for (int i = 0; i < WC; ++i) one(i);
  } else {
#pragma unroll
    for (int i = 0; i < WC; ++i)
      if (i < wc) one(i);
  }
}

// The issue cursor of the matrix-unit streaming kernels' stage ring (qmma_stream.h,
// qimma_stream.h): items in order (row group ig = blockIdx.x, + gridDim.x, ...; stage ic = 0..nc-1
// of the group), item i into shared stage i mod NS of `stage_bytes` each. issue() copies the next
// item's R rows (the whole-stage copy where it is one, else the bounded one), then extra(dst, ig,
// ic) (a kernel's own copies for the item, e.g. its E8M0 bytes), and commits a copy group, empty
// past the last item (which keeps the kernels' wait count uniform).
template <int R, int RB, int STRIDE, int NT, int NS>
struct StageRing {
  StageCopies<R, RB, STRIDE, NT> cp;
  int64_t ig;                // the next item's row group
  int ic = 0, ist = 0;       // its stage in the group, its shared stage
  const uint8_t* gsrc;       // row group ig's first row
  const int64_t gstep;       // a grid of row groups, in bytes
  const int nc, ncf;         // stages per row group; whole stages per row (below: every row's RB bytes)
  const int64_t groups, gfull;  // row groups; groups of R rows (below: no row past n)
  ROCQ_DEVICE StageRing(int tid, const QmatArgs& a, int nc_)
      : cp(tid, (int)a.row_bytes),
        ig(blockIdx.x),
        gsrc(a.qw + (int64_t)blockIdx.x * R * a.row_bytes),
        gstep((int64_t)gridDim.x * R * a.row_bytes),
        nc(nc_),
        ncf((int)(a.row_bytes / RB)),
        groups(rq_ceil_div(a.n, (int64_t)R)),
        gfull(a.n / R) {}
  template <typename Extra>
  ROCQ_DEVICE void issue(uint8_t* stages, int stage_bytes, int tid, const QmatArgs& a, Extra&& extra) {
    if (ig < groups) {
      uint8_t* dst = stages + ist * stage_bytes;
      const int off = ic * RB;
      const uint8_t* src = gsrc + off;
      if (ic < ncf && ig < gfull) cp.whole(dst, src);
      else cp.part(dst, src, tid, a, ig, off);
      extra(dst, ig, ic);
      rq_stage_next<NS>(ic, ist, ig, gsrc, nc, gstep);
    }
    rq_cp_async_commit();
  }
};

}  // namespace rocq::gpu
