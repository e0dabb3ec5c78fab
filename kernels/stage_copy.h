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

}  // namespace rocq::gpu
