// The streaming decode kernel for one or two rows of x (M = 1, 2) on the integer pieces (qdot_int.h;
// and OCP FP6/FP8, decoded to fp32 against the same fixed-point x: StreamPieceMxF): the
// weight bytes travel global -> shared memory in whole 16-byte copies, several stages ahead
// (rq_cp_async16: cp.async on NVIDIA sm_80+, a plain copy elsewhere), and the pieces decode
// them from shared memory; x, rounded to fixed point by each CTA itself (rq_xquant_block: no
// separate launch, no workspace), sits in shared memory for the whole row. Included by
// qmatvec_stream.hip.
//
// Why (ncu on the H200, Q4_0 at M = 1 in the register-blocked kernel, qmatvec_impl.h): each
// lane reads its block's words straight from global memory, 4 bytes per load at a block's
// stride, plus its x run at a 64-byte stride: the L1 pipeline is 73% busy while DRAM runs at
// 51%, warps wait 4.8 of every 8.6 cycles on those loads, and the 896-CTA grid is 1.7 waves
// (the last one 70% full). Here the global reads are coalesced 16-byte copies that need no
// registers, x is read from global memory once per CTA, and the CTAs are persistent (one wave;
// each walks row groups g = blockIdx.x, + gridDim.x, ...) so the copy pipeline never drains
// between groups.
//
// Shape: a CTA of Cfg::kThreads threads owns R weight rows at a time (a row group). A stage holds
// CU units (blocks) of each of the R rows: the stage's pieces (NPc = CU * pieces per unit) go
// one per thread, and the threads form RS row sets of R / RS rows each, so each x piece read
// from shared memory serves R / RS rows. Sums are reduced per warp with shuffles and across
// warps in a fixed order (deterministic). Nothing assumes a warp width.
#pragma once

#include "qmatvec_impl.h"
#include "stage_copy.h"
#include "stream_pieces.h"

namespace rocq::gpu {

// Largest dynamic shared memory the launcher asks for (x rows + stages): two CTAs per
// multiprocessor on the H100/H200 (228 KB). Beyond it (k above about 28000 on the 4-bit formats)
// another kernel runs instead.
constexpr int64_t kQmvStreamMaxSmem = 112 * 1024;

// Dynamic shared memory of ns stages of stage_bytes each (weights and E8M0 bytes), mt x rows of
// k elements of xe bytes (qmv_stream_xe) with their block scales and xs bytes of sums per 16
// elements (kXsBytes), and e8 bytes of E8M0 table
// (StreamPiece kE8: 1024, else 0): the launcher's size (qmv_stream_smem) and the
// configurations' fit checks (QmvStreamCfg) alike.
ROCQ_HD constexpr int64_t qmv_stream_smem_of(int64_t stage_bytes, int ns, int64_t k, int mt, int xe, int xs, int e8) {
  return ns * stage_bytes + qmv_stream_xbytes(k, mt, xe, xs) + e8;
}

// Shape, measured on the H200 (bf16 x, M = 1, same run; benchmarks/results/
// bench_qmatmul_h200_s5_cfg{1,2,3,4}.json, cfg0: the register-blocked kernel), as (threads,
// preferred row sets, stages): (128, 2, 4) / (128, 2, 3) / (256, 2, 3) / (256, 4, 3), e.g. on the
// 70B FFN up layer Q4_0 45.7 / 44.0 / 40.7 / 49.2 us, Q5_K 65.0 / 62.3 / 59.9 / 68.5, Q2_K 68.1 /
// 68.4 / 63.0 / 77.9 (the register-blocked kernel: 44.3, 71.6, 77.7). The third is kept.
// SHAPE: the row groups. 0: 8 rows. 1: 16-row groups for the 64-element pieces at one row of x
// (four row sets of four rows; Q2_K two of eight): a stage holds twice the bytes, and each x run
// read from shared memory serves twice the rows (sm_90 SASS, instructions per weight in one
// stage's loop: Q4_K 3.3 -> 2.8, Q5_K 4.4 -> 4.1, Q3_K 5.2 -> 4.4, Q2_K 2.8 -> 2.6; H200 times:
// qmatvec_stream.hip bigger_rows). 2: Q2_K's 16-row groups in four sets of four, whose stages of
// 4096 elements a row fill k = 4096 (shape 1's 8192 leave half the threads idle there). Q6_K's
// stages (54 KB) do not fit twice. The launcher takes shape 1, else 2, where it fits in shared
// memory and fills its stages. Since session 13 shape 1 also serves the 32-element formats'
// whole-block pieces (kSpan16: Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, OCP MXFP4, and IQ4_XS's
// split pieces; two row sets of eight rows, so x is read once per eight rows instead of four),
// 1-4% faster on the 70B FFN up layer, where the 16-row groups add no pass of the persistent
// CTAs (qmatvec_stream.hip no_longer_tail); OCP MXFP4 (two E8M0 copies a thread) 41.0 / 41.5 ->
// 39.8 / 39.6 us in two alternations (benchmarks/results/bench_qmatmul_h200_s13j_{A,B,A2,B2}).
template <int ID, int SHAPE = 0>
struct QmvStreamCfg {
  using C = Codec<ID>;
  static constexpr int kThreads = 256;
  // Quads per piece: as the M = 1 pieces, but 8 for Q2_K .. Q6_K (kWide, below). Q6_K took 4 in
  // session 6 (both runs keep one 16-element sub-block scale over 4 quads), which halved the
  // scale loads and conversions per weight; its stages were then twice as large, so it keeps 2
  // of them: with 3, the 70B down projection (k = 28672) needs 141.6 KB, over
  // kQmvStreamMaxSmem, and falls back to the register-blocked kernel (79.4 us); with 2 it needs
  // exactly the 112 KB cap. H200, same run, against (2 quads, 3 stages), both at 3 CTAs per
  // multiprocessor: M = 1 70B FFN up 66.7 -> 63.4 us, 8B FFN up 21.9 -> 20.3, 70B down 70.2 ->
  // 66.4; M = 2 within 2%
  // (benchmarks/results/bench_qmatmul_h200_session6_q6{A,N2,N3}.json). (Q6_K then moved to 2
  // CTAs per multiprocessor, kMinBlocksM1; 3 stages there were not measured.) Since session 7,
  // 8-quad pieces at four row sets (StreamPieceSubs with PieceIntQ6Wide; same stage size): M = 1
  // 70B FFN up 62.2 -> 55.0 us, 70B down 62.3 -> 56.2, 8B FFN up 18.9 -> 17.3, 4096x4096 8.0 ->
  // 7.6; M = 2 70B up 84.1 -> 74.3 (benchmarks/results/bench_qmatmul_h200_s7_q6w{A,B}.json).
  // Q2_K, Q3_K: 8-quad pieces (StreamPieceSubs; 2-quad ones before session 7). A stage then holds
  // 32 blocks of each row at two row sets (8192 elements: the 8B layers' k = 4096 leaves half the
  // pieces idle) and 16 at four (two rows a thread, x reloaded twice as often). H200, M = 1, us,
  // 70B FFN up / 70B down / 8B FFN up / 4096x4096 (benchmarks/results/bench_qmatmul_h200_s7_k23
  // {A,B,B2,C,D,E,F}.json): 2-quad pieces Q2_K 61.3 / 62.4 / 18.3 / 7.5, Q3_K 88.3 / 89.1 / 25.1
  // / 9.6; two sets, 3 stages: Q3_K 45.4 / 116.0 (its 143 KB for k = 28672 are over
  // kQmvStreamMaxSmem: the register-blocked kernel ran) / 23.0 / 9.0, and at M = 2 it spilled
  // (136.2 us on 70B up); two sets, 2 stages: Q2_K 30.6 / 34.7 / 15.6 / 6.8, Q3_K 45.1 / 115.9 /
  // 23.0 / 9.0; four sets, 3 stages: Q2_K 36.3 / 39.1 / 12.6 / 6.4, Q3_K 53.0 / 54.6 / 16.9 /
  // 7.3. Kept: Q2_K two sets, 2 stages; Q3_K four sets, 3 stages (fits the 70B down layer).
  // Q4_K, Q5_K: 8-quad pieces (StreamPieceK45; 4-quad ones before session 7), four row sets (the
  // stage size of before). H200, M = 1 / 2, us, 70B FFN up / 8B FFN up / 4096x4096
  // (benchmarks/results/bench_qmatmul_h200_s7_k45{A,B,B2}.json: before / after at 3 CTAs per
  // multiprocessor for Q4_K / after at 2): Q4_K M = 1 42.5 / 41.0 / 38.3, 15.1 / 13.8 / 13.0, 7.2
  // / 6.7 / 6.4; M = 2 64.0 / 54.3 / 54.4; Q5_K M = 1 53.3 / 47.1, 17.6 / 16.0, 8.0 / 7.6, M = 2
  // 71.7 / 66.9. (The 70B down layer, k = 28672, does not fit either way: unchanged.)
  // (Q2_K .. Q6_K: the pieces that run their rows themselves, StreamPiece kOwnRows)
  static constexpr bool kWide = StreamPiece<ID, 1>::kOwnRows;
  // (the float pieces, StreamPieceMxF: one whole 32-element block, Piece<ID>::kQuads)
  static constexpr int NQ = kStreamFloat<ID> ? Piece<ID>::kQuads : kWide ? 8 : QmvPieceNQ<ID, 1, true>::v;
  static constexpr int PPB = Piece<ID>::kQuads / NQ;     // pieces per unit
  static constexpr int UE = Unit<C>::kElems, UB = Unit<C>::kBytes;
  // Two row sets of R / 2 rows where a row's stage bytes (half the CTA's pieces) are whole
  // 16-byte copies; else one set of R rows; Q3_K, Q4_K, Q5_K, Q6_K: four sets of R / 4.
  static constexpr int RS = kWide && (ID != QT_Q2_K || SHAPE == 2) ? 4 : ((kThreads / 2) / PPB) * UB % 16 == 0 ? 2 : 1;
  static constexpr int R = SHAPE ? 16 : 8, RT = R / RS;  // rows per group, rows per thread
  static constexpr int NPc = kThreads / RS;  // pieces per stage and row
  static constexpr int CU = NPc / PPB;       // units per stage and row
  static constexpr int kRowBytes = CU * UB;  // one row's bytes in a stage
  static constexpr int kStageBytes = R * kRowBytes;
  // the scale-plane formats' E8M0 bytes of a stage (R rows of CU), a 16-byte multiple
  static constexpr int kScBytes = rq_has_scale_plane(ID) ? (R * CU + 15) / 16 * 16 : 0;
  static constexpr int kStageSmem = kStageBytes + kScBytes;  // a stage's shared memory, both parts
  // the E8M0 table's bytes (StreamPiece kE8: the float pieces, both row counts)
  static constexpr int kE8Bytes = StreamPiece<ID, 1>::kE8 ? 256 * 4 : 0;
  // the x sums' bytes per 16 elements (StreamPiece kXSums, both row counts: stream_pieces.h qmv_stream_xsums)
  static constexpr int kXsBytes = StreamPiece<ID, 1>::kXSums ? 4 : 0;
  // two stages at three CTAs a multiprocessor (kStages, kMinBlocksM1): Q3_K's and MXFP4's shape 1,
  // Q2_K's shape 2
  static constexpr bool kThreeCtas = (SHAPE == 1 && (ID == QT_Q3_K || ID == QT_MXFP4)) || SHAPE == 2;
  // (shapes 1, 2: 3 where that fits the 4096-element rows' x under kQmvStreamMaxSmem, else 2;
  // kThreeCtas: 2)
  static constexpr int kStages =
      kThreeCtas ? 2
      : SHAPE ? (qmv_stream_smem_of(kStageSmem, 3, 4096, 1, qmv_stream_xe(ID, 1, 3), kXsBytes, kE8Bytes) <= kQmvStreamMaxSmem ? 3 : 2)
              : (ID == QT_Q6_K || ID == QT_Q2_K ? 2 : 3);
  // CTAs per multiprocessor the one-row kernel is compiled for (__launch_bounds__; registers
  // 65536 / (256 * blocks), so 80 at 3 and 128 at 2): 2, where the pieces at 80 registers
  // spilled or were scheduled tighter; 3 for Q8_0 (and Q4_K before session 7), level or slower
  // at 2. H200, M = 1, same run (benchmarks/results/bench_qmatmul_h200_session6_mb{A,B,B2}.json: 3 / 2 / 2 again;
  // session6_q5{A,B}.json for Q5_K), 70B FFN up / 8B FFN up / 4096x4096, us: Q5_K 59.3 -> 53.9
  // / 20.5 -> 17.9 / 8.9 -> 8.2; Q5_0 48.4 -> 44.9 / 16.7 -> 15.3 / 7.6 -> 7.3; Q6_K 62.9 ->
  // 61.3 / 20.2 -> 18.7 / 9.4 -> 7.9; Q3_K 89.5 -> 88.3 / 26.5 -> 25.1 / 10.8 -> 9.6; IQ4_XS
  // 55.5 -> 54.1 / 18.3 -> 17.2 / 8.0 -> 7.6; MXFP4 54.8 -> 55.0 / 18.3 -> 17.4 / 8.0 -> 7.7;
  // Q4_0, Q4_1, Q5_1 within 2%; Q4_K 42.4 -> 44.6 on the 70B layer (its 8-quad pieces since
  // session 7: 41.0 -> 38.3 at 2); Q8_0 level. The split-table
  // pieces (session 7) at 3 instead of 2: slower but for IQ4_XS on the 70B FFN up layer (43.4 ->
  // 42.3 us), e.g. MXFP4 70B down 45.9 -> 49.1, OCP MXFP4 8B FFN up 16.3 -> 18.4
  // (bench_qmatmul_h200_s7_mb{A,B,B2}.json: 2 / 3 / 3 again). Again in session 11, with the OCP
  // E8M0 bytes in the stages (s11m_{3ctas,2ctas}.json, 3 then 2 in one run), 70B FFN up / 70B
  // down / 8B FFN up: OCP MXFP4 43.6 / 47.0 / 15.9 at 3 against 41.4 / 43.3 / 14.4 at 2, MXFP4
  // 43.4 / 46.3 / 16.2 against 43.7 / 45.4 / 15.0, IQ4_XS 40.4 / 43.9 / 15.5 against 41.6 / 43.7 /
  // 14.7 (so 2).
  // OCP FP8's float pieces (session 10) at 3: 70B FFN up E4M3 69.9 -> 67.7-68.0 us, 8B FFN up
  // 20.5 -> 20.7; FP6 at 3 lost ~1% on both (bench_qmatmul_h200_s10d_V{0,2,2b}.json); E5M2 at 3
  // in a later run: 67.7-68.2 us (s10e_A, s10e_A2; 69.5 at 2 in s10b_B). (An x conversion by
  // permute and I2FP instead of I2F.S16 was no faster there.) Since session 11, with the E8M0
  // bytes copied along with the stages, 3 is the slower: E4M3 70B FFN up 75.3 us at 3, 67.2 at 2,
  // same run (bench_qmatmul_h200_s11f_{A,B}.json; ncu at 3: 40% of warp samples waiting at the
  // stage barrier, on the stage's copies or on other warps).
  // Q3_K's and MXFP4's 16-row groups: 3, in 2 stages (74 / 52 KB at k = 8192; 3 stages do not
  // fit three times), since session 15. Q3_K (its pieces' instructions cut: it was bound by latency, ncu on the H200 at
  // M = 1: issue 61%, integer-ALU 54%, shared-memory wavefronts 50%; 80 registers, 4 bytes
  // spilled): H200, M = 1, us, before / after in one run, 70B FFN up 41.0 / 41.5 -> 39.5 / 39.8,
  // 8B FFN up 15.1 -> 13.3; M = 2 level (benchmarks/results/bench_qmatmul_h200_s15d_*,
  // ncu_q3_k_m1_h200_s15b.txt). MXFP4 (116 -> 80 registers, no spills): 70B FFN up 42.1 / 41.7
  // -> 40.9 / 41.0, 8B FFN up and M = 2 level; the same for OCP MXFP4 was slower (70B FFN up
  // 39.6 / 39.5 -> 46.4 / 46.4: its E8M0 copies want the third stage), IQ4_NL mixed (42.4 / 41.8
  // -> 41.8 / 42.0), so not kept (benchmarks/results/bench_qmatmul_h200_s15e_*). Q2_K's shape 2
  // (four sets of four rows; no spills at 80 registers) at 3 in 2 stages, where it now also fits
  // k = 28672 under kQmvStreamMaxSmem (shape 0 ran there): 8B FFN up 10.5 / 10.6 -> 9.9, 70B FFN
  // down 31.5 / 31.7 -> 29.4, 4096 x 4096 5.2 -> 5.3 / 5.4, 8B FFN down and 70B FFN up (shape 1)
  // level (s15g_q2_*). (Tried and not kept: shape 2 in place of shape 1 on the 70B FFN up layer,
  // 25.4 -> 27.4; Q3_K's 8-row groups at 4 CTAs, 64 registers: 70B FFN down 44.9 -> 48.4, s15f_*.)
  static constexpr int kMinBlocksM1 = ID == QT_Q8_0 || kThreeCtas ? 3 : 2;
  // Whole 16-byte copies per row and stage; one piece per thread.
  // Shape 1 also for the 32-element block formats' whole-block pieces (StreamPiece kSpan, not
  // the float pieces: those are kWide).
  static constexpr bool kSpan16 = StreamPiece<ID, 1>::kSpan && !kWide;
  static constexpr bool kOn = (PieceInt<ID>::kOn || kStreamFloat<ID>) && C::kElems > 1 && NPc % PPB == 0 && kRowBytes % 16 == 0 &&
                              NPc % ROCQ_WARP_SIZE == 0 &&
                              (SHAPE == 0 || ((kWide || kSpan16) && qmv_stream_smem_of(kStageSmem, kStages, 4096, 1,
                                                                          qmv_stream_xe(ID, 1, kStages), kXsBytes, kE8Bytes) <= kQmvStreamMaxSmem)) &&
                              (SHAPE != 2 || ID == QT_Q2_K);
};

// NS: the stages it cycles through, Cfg::kStages or 2 (where the x rows of a long k leave too
// little shared memory for all of them: qmatvec_stream.hip stream_grid; a template argument, as
// a run-time count measured 2-5% slower on the 70B FFN up layer: bench_qmatmul_h200_s8e_*).
template <int ID, int XK, int MT, int SHAPE, int NS>
__global__ void __launch_bounds__((QmvStreamCfg<ID, SHAPE>::kThreads),
                                  (MT == 1 ? QmvStreamCfg<ID, SHAPE>::kMinBlocksM1 : 2)) qmv_stream_kernel(QmvArgs a) {
  using Cfg = QmvStreamCfg<ID, SHAPE>;
  using P = StreamPiece<ID, MT>;
  constexpr int R = Cfg::R, RT = Cfg::RT, NQ = Cfg::NQ, PPB = Cfg::PPB, NPc = Cfg::NPc, CU = Cfg::CU;
  constexpr int UE = Cfg::UE, UB = Cfg::UB, NT = Cfg::kThreads;
  static_assert(NS >= 2 && NS <= Cfg::kStages, "2 .. kStages stages");
  constexpr int WS = ROCQ_WARP_SIZE, NWARP = NT / WS;
  constexpr bool kPlane = rq_has_scale_plane(ID);
  using T = typename XStore<XK>::T;

  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* stage = smem;                                    // NS stages of kStageBytes
  uint8_t* sstage = smem + NS * Cfg::kStageBytes;           // NS stages' E8M0 bytes (kScBytes each)
  const int kx = (int)qmv_stream_xstride(a.k);
  // MT rows of kx int16 (swizzled granules); never empty (kx >= 64), so the pieces' loads that
  // reach a few bytes past the last stage's last row (rq_g32n_sh) stay inside this allocation
  uint8_t* xg = sstage + NS * Cfg::kScBytes;
  constexpr int XE = qmv_stream_xe(ID, MT, NS);             // bytes an x element
  float* xsc = reinterpret_cast<float*>(xg + XE * MT * kx);  // MT rows of k / 32 scales
  __shared__ float red[NWARP][RT * MT];
  __shared__ uint32_t tabs[2];

  const int tid = threadIdx.x, warp = tid / WS, lane = tid % WS;
  const int pc = tid % NPc, rs = tid / NPc;  // piece column, row set
  const int u = pc / PPB, Q0 = (pc % PPB) * NQ;  // this thread's unit in a stage and first quad
  const int units = (int)(a.k / UE);         // per row
  const int nb = (int)(a.k / 32);            // 32-element blocks per row (x scales, E8M0 bytes)
  static_assert(P::kXSums == (Cfg::kXsBytes != 0), "x sums stored for the pieces that read them, both row counts");
  int* const xsm = qmv_stream_xsums(xsc, MT, nb);  // (P::kXSums) the x sums per 16 elements, after the scales
  float* const e8 = reinterpret_cast<float*>(xsm + (P::kXSums ? MT * 2 * nb : 0));  // (P::kE8) the E8M0 table: e8[e] = P::e8(e)
  static_assert(!P::kE8 || (kPlane && Cfg::kE8Bytes), "the E8M0 table serves scale-plane formats, counted in the smem");
  const int nc = (units + CU - 1) / CU;      // stages per row group
  const int64_t groups = rq_ceil_div(a.n, R);

  // x: each 32-element block of each row rounded to fixed point here (rq_xquant_block, the rule
  // of qmv_xquant_kernel: no separate launch), row m's granule g stored at granule m * kx / 8 +
  // g (fp32 x, XE = 4: m * kx / 4 + g), swizzled; the scales after them.
  {
    const T* xs16 = static_cast<const T*>(a.x);
    for (int i = tid; i < MT * nb; i += NT) {
      const int m = i / nb, blk = i % nb;
      uint4 q[4];
      xsc[i] = rq_xquant_block<XK>(xs16 + (int64_t)m * a.k + 32 * blk, q);
      if constexpr (P::kXSums) {  // (i = m * nb + blk: sums 2 i, 2 i + 1)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t w[8] = {q[2 * h].x, q[2 * h].y, q[2 * h].z, q[2 * h].w,
                                 q[2 * h + 1].x, q[2 * h + 1].y, q[2 * h + 1].z, q[2 * h + 1].w};
          xsm[2 * i + h] = rq_xi_sum(w);
        }
      }
      if constexpr (P::kPairX) rq_x_pairs(q);
      if constexpr (XE == 4) {  // fp32: granule g of row m (4 elements) at m * kx / 4 + g, swizzled
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float4 f;
          rq_xi16x2_to_f32(j % 2 ? q[j / 2].z : q[j / 2].x, f.x, f.y);
          rq_xi16x2_to_f32(j % 2 ? q[j / 2].w : q[j / 2].y, f.z, f.w);
          *reinterpret_cast<float4*>(xg + 16 * rq_xswz(m * (kx / 4) + 8 * blk + j)) = f;
        }
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) *reinterpret_cast<uint4*>(xg + 16 * rq_xswz(m * (kx / 8) + 4 * blk + j)) = q[j];
      }
    }
  }
  if constexpr (P::kE8) {
    for (int i = tid; i < 256; i += NT) e8[i] = P::e8((uint8_t)i);  // (read after the first stage's __syncthreads)
  }
  uint32_t tab[2] = {0u, 0u};  // the piece's table words (StreamPiece kTab), in registers
  if constexpr (P::kTab) {
    if (tid < 2) tabs[tid] = P::tab_word(tid);
    __syncthreads();
    tab[0] = tabs[0];
    tab[1] = tabs[1];
  }
  // (Issuing the first stages' copies before rounding x, to overlap the two, measured 0-24% slower
  // on the H200: benchmarks/results/bench_qmatmul_h200_session6_overlap.json against
  // session6_stream2.json, e.g. Q4_0 4096x4096 6.3 -> 7.8 us, 70B FFN up 35.2 -> 36.9.)
  // Items in order: (row group g = blockIdx.x, + gridDim.x, ...; chunk c = 0..nc-1), each R rows'
  // bytes [c * kRowBytes, + kRowBytes) (a row's last chunk may be shorter: whole 16-byte copies
  // still, as rows are 16-byte multiples). Rows past n are not copied (nor used). The issue
  // cursor runs kStages - 1 items ahead of the compute one; past the end it commits empty
  // groups, which keeps the wait count uniform.
  const StageCopies<R, Cfg::kRowBytes, Cfg::kRowBytes, NT> cp(tid, (int)a.row_bytes);  // (stage_copy.h)
  int64_t ig = blockIdx.x;
  int ic = 0, ist = 0;
  // The issue cursor's group's first row (moved by a whole grid of groups at a time), and the
  // bounds of the common case, a whole stage: chunks below ncf are whole in every row, groups
  // below gfull have R rows. (Kept apart so that the common case costs two compares and 32-bit
  // offsets: the per-copy bounds and 64-bit arithmetic were 12% of a stage's instructions.)
  const uint8_t* gsrc = a.qw + ig * R * a.row_bytes;
  const int64_t gstep = (int64_t)gridDim.x * R * a.row_bytes;
  const int ncf = (int)(a.row_bytes / Cfg::kRowBytes);
  const int64_t gfull = a.n / R;
  // Scale-plane formats (OCP MX): each item's E8M0 bytes (R rows x CU units) travel with its
  // stage, in 4-byte asynchronous copies, one per thread (launcher: k / 32 a multiple of 4), into
  // the stage's scale area, row-major. (Read into registers one item ahead, the loads were the
  // largest stall: ncu on the H200, OCP MXFP8 E4M3 70B FFN up M = 1, 23% of warp samples waiting
  // on them; a ring of registers NS - 1 items ahead was slower still, its register moves waiting
  // on the loads: OCP MXFP4 43.3 -> 50.0 us, bench_qmatmul_h200_s11d.json. Read where they are
  // used, each stage waited on them.) sgi: this thread's copy source in the issue cursor's group,
  // moved a grid of groups at a time.
  // (16-row groups of OCP MXFP4: two copies a thread, rows scr and scr + NT / SCPR)
  constexpr int SCPR = Cfg::kScBytes ? CU / 4 : 1;  // copies per row
  constexpr int SCN = (R * SCPR + NT - 1) / NT;     // copies per thread
  static_assert(!kPlane || SCN == 1 || (NT % SCPR == 0 && R * SCPR == SCN * NT), "whole rows per pass of copies");
  constexpr int SCRS = NT / SCPR;                   // rows apart of a thread's copies
  const int scr = tid / SCPR, scj = 4 * (tid % SCPR);  // this thread's first copy: row, byte
  const bool sc_copy = kPlane && tid < R * SCPR;
  const uint8_t* sgi = sc_copy ? a.sc + ((int64_t)blockIdx.x * R + scr) * nb + scj : nullptr;
  const int64_t sstep = (int64_t)gridDim.x * R * nb;
  // (E8M0 copies of a whole stage need no bounds: its CU units per row are inside the row, as a
  // scale-plane format's units are its 32-element blocks, and its R rows inside n. The bounds,
  // 64-bit, cost ~10 instructions a stage: sm_90 SASS of the OCP FP6 loop.)
  static_assert(!kPlane || UE == 32, "a scale-plane format's unit is one 32-element block");
  auto issue = [&]() {
    if (ig < groups) {
      const bool whole = ic < ncf && ig < gfull;  // a whole stage of R rows inside n
      if constexpr (kPlane) {
#pragma unroll
        for (int i = 0; i < SCN; ++i) {
          const int row = scr + i * SCRS;
          if (sc_copy && (whole || (ic * CU + scj < nb && (ig < gfull || ig * R + row < a.n))))
            rq_cp_async4(sstage + ist * Cfg::kScBytes + row * CU + scj, sgi + (int64_t)i * SCRS * nb + ic * CU);
        }
      }
      uint8_t* dst = stage + ist * Cfg::kStageBytes;
      const int off = ic * Cfg::kRowBytes;
      const uint8_t* src = gsrc + off;
      if (whole) cp.whole(dst, src);
      else cp.part(dst, src, tid, a, ig, off);
      rq_stage_next<NS>(ic, ist, ig, gsrc, nc, gstep);
      if (kPlane && ic == 0) sgi += sstep;  // (past the end: not read)
    }
    rq_cp_async_commit();
  };
#pragma unroll
  for (int i = 0; i < NS - 1; ++i) issue();


  int st = 0;  // the compute cursor's stage
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    float acc[RT][MT];
#pragma unroll
    for (int r = 0; r < RT; ++r)
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[r][m] = 0.f;
    for (int c = 0; c < nc; ++c) {
      rq_cp_async_wait<NS - 2>();
      __syncthreads();  // this stage landed for every thread; the previous one is free to refill
      issue();
      const int b = c * CU + u;  // unit within the row
      // this thread's unit in the stage, its first row
      const uint8_t* sb = stage + st * Cfg::kStageBytes + (rs * RT) * Cfg::kRowBytes + u * UB;
      // its offset past a 4-byte boundary, u * UB's in every row and stage (the pieces' lo)
      static_assert(Cfg::kStageBytes % 4 == 0 && Cfg::kRowBytes % 4 == 0, "rows at their unit's offset mod 4");
      const int lo = (u * UB) & 3;
      // its rows' E8M0 bytes (scale-plane formats) and, kE8, their scales
      uint8_t scs[RT] = {};
      float scf[RT] = {};
      if constexpr (kPlane) {
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          scs[r] = sstage[st * Cfg::kScBytes + (rs * RT + r) * CU + u];
          if constexpr (P::kE8) scf[r] = e8[scs[r]];
        }
      }
      if constexpr (P::kOwnRows) {
        if (b < units) P::template rows<MT, RT, XE>(xg, kx, xsc, nb, b * UE, Q0, sb, lo, Cfg::kRowBytes, scf, acc);
      } else if (b < units) {
        const int e0 = b * UE;
        XIPiece<MT, NQ> x;
        if constexpr (P::kSpan) {
          // the piece's 32-element x block, whole
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            const int e = e0 + P::xspan(Q0);
            uint32_t v[16];
            rq_x_granules<4>(xg, (m * kx + e) >> 3, v);
            const float f = xsc[m * nb + e / 32];
#pragma unroll
            for (int q = 0; q < NQ; ++q) {
              const int ja = P::span_a(q) / 2, jb = P::span_b(q) / 2;
              x.fa[q][m] = x.fb[q][m] = f;
              x.sa[q][m] = x.sb[q][m] = 0;
              rq_xi_run(make_uint2(v[ja], v[ja + 1]), x.a[q][m], x.sa[q][m]);
              rq_xi_run(make_uint2(v[jb], v[jb + 1]), x.b[q][m], x.sb[q][m]);
            }
          }
        } else {
#pragma unroll
          for (int q = 0; q < NQ; ++q) {
#pragma unroll
            for (int m = 0; m < MT; ++m) {
              const int ea = m * kx + e0 + P::xa(Q0 + q), eb = m * kx + e0 + P::xb(Q0 + q);
              x.fa[q][m] = xsc[m * nb + (e0 + P::xa(Q0 + q)) / 32];
              x.fb[q][m] = xsc[m * nb + (e0 + P::xb(Q0 + q)) / 32];
              x.sa[q][m] = x.sb[q][m] = 0;
              rq_xi_run(*reinterpret_cast<const uint2*>(xg + 16 * rq_xswz(ea >> 3) + 8 * ((ea >> 2) & 1)), x.a[q][m],
                        x.sa[q][m]);
              rq_xi_run(*reinterpret_cast<const uint2*>(xg + 16 * rq_xswz(eb >> 3) + 8 * ((eb >> 2) & 1)), x.b[q][m],
                        x.sb[q][m]);
            }
          }
        }
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          P::template dot<NQ>(tab, sb + r * Cfg::kRowBytes, lo, Q0, scs[r], x, acc[r]);
        }
      }
      st = st + 1 == NS ? 0 : st + 1;
    }
    // The row group is complete: reduce per warp, then across the warps of each row set.
    {
      float v[RT * MT];
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int m = 0; m < MT; ++m) v[r * MT + m] = acc[r][m];
      rq_warp_sums_multi<RT * MT>(v, red[warp], lane);
    }
    __syncthreads();
    if (tid < R * MT) {
      constexpr int WPS = NPc / WS;  // warps per row set
      const int rr = tid / MT, m = tid % MT, srs = rr / RT, r = rr % RT;
      const int64_t row = g * R + rr;
      float v = 0.f;
      for (int w = 0; w < WPS; ++w) v += red[srs * WPS + w][r * MT + m];
      if (row < a.n) {
        if (a.bias) v += a.bias[row];
        static_cast<T*>(a.y)[m * a.n + row] = rq_from_float<XK>(v);
      }
    }
    // (red is written again only after the next stage's __syncthreads. Measured and not kept: red
    // in two buffers, each group's sums added up after the next group's first barrier, which
    // saves the barrier above: H200, M = 1 / 2, us, before / after in one run, 70B FFN up Q2_K
    // 26.0 / 42.3 -> 26.0 / 41.9, OCP MXFP6 E3M2 57.3 / 88.5 -> 58.5 / 89.6, Q4_0 M = 2 44.0 ->
    // 45.8; 8B FFN up MXFP4 15.1 -> 15.8, Q6_K 16.3 -> 15.7; bench_qmatmul_h200_s14i_*.json.)
  }
  rq_cp_async_wait<0>();
}

// Dynamic shared memory of one CTA for mt rows of k elements.
template <int ID, int SHAPE>
constexpr int64_t qmv_stream_smem(int64_t k, int mt, int ns) {
  using Cfg = QmvStreamCfg<ID, SHAPE>;
  return qmv_stream_smem_of(Cfg::kStageSmem, ns, k, mt, qmv_stream_xe(ID, mt, ns), Cfg::kXsBytes, Cfg::kE8Bytes);
}

}  // namespace rocq::gpu
