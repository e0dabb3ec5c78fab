// The streaming integer matrix-unit kernel: 1..8 rows of 16-bit x multiplied on the int8 matrix
// units (platform_mma.h rq_imma_frag: one 16 x 8 x 32 product per 32-element block), with the
// weights fed by the streaming matrix-unit kernel's pipeline and stage layout (qmma_stream.h: a
// persistent CTA of 8 warps walks 16-row groups; each stage holds 8 windows of every row of the
// group, one per warp, copied by the whole CTA NS - 1 stages ahead). Included by qimma_stream.hip.
//
// Why: the bf16 matrix-unit kernel (qmma_stream.h) turns every code into a 16-bit operand (a
// permute and a packed subtraction per two codes), needs two products per 32-element block and
// reads its x fragments from global memory per block; the integer pieces of the streaming decode
// kernel (qmatvec_stream.h) cost one dot-product instruction per two codes and row of x, so their
// time grows with M. Here a block's codes go to the matrix unit as bytes (Q4_0: a mask and a
// shift per 8 codes), one product serves 4 rows of x, and x sits in shared memory in the order
// the matrix unit takes it.
//
// x: each CTA rounds x to 14-bit fixed point per 32-element block (rq_xquant_block<XK, 14>: no
// separate launch, no workspace) and splits each value into signed bytes, v = 256 hi + lo (|hi|
// <= 64, lo in -128..127). The products' B columns are 2j: the hi bytes of x row j, 2j + 1: its
// lo bytes (4 rows of x a product; M = 5..8 two products, CT = 2). With the block's codes of 16
// weight rows as A, lane (g, t) gets C[g][2t] and C[g][2t + 1], the hi and lo sums of x row t
// against weight row g (and row g + 8): 256 hi + lo is the block's exact integer dot product,
// minus kOff times the block's x sum for codes stored with an offset, then scaled in fp32 by the
// weight block's scale and the x block's.
//
// Shared memory: NS stages (QmmaStreamCfg::kStageBytes each), then x as [block][x row] records of
// 64 bytes (hi bytes, lo bytes; in each, lane quarter t's 8 bytes at 8t: elements 4t..4t+3 and
// 16 + 4t..16 + 4t + 3, its b0 and b1), then [block][x row] pairs (scale bits, sum of the 32
// fixed-point values). A warp's 8-byte B loads of one block cover 4 consecutive records: 256
// contiguous bytes, no bank conflicts.
#pragma once

#include "qmatvec_impl.h"
#include "qmma_stream.h"

namespace rocq::gpu {

// The formats with a byte decoder below (every pass sees it; the decoders are NVIDIA sm_80+ code).
template <int ID>
inline constexpr bool kQiFragOn = ID == QT_Q4_0;

// Bytes of shared memory per row of x and 32-element block: 64 of hi and lo bytes, 8 of scale
// and sum.
constexpr int kQimmaXBytes = 72;

// (the stage geometry is instantiated only for formats with a decoder)
template <int ID>
constexpr bool qimma_on() {
  if constexpr (kQiFragOn<ID>) return QmmaStreamCfg<ID>::kOn && !rq_has_scale_plane(ID);
  else return false;
}

template <int ID>
struct QimmaCfg {
  static constexpr bool kOn = qimma_on<ID>();
  using G = QmmaStreamCfg<ID>;  // the stage geometry (windows, row stride, copies)
  static constexpr int kThreads = G::kThreads, kStages = 3;
  static constexpr int64_t smem(int ns, int64_t k, int64_t M) { return ns * G::kStageBytes + M * (k / 32) * kQimmaXBytes; }
};

#if defined(ROCQ_MMA_NV)
template <int ID>
struct QiFrag;

// Q4_0: the fragment load of qfrag.h (lane quarter t: qs word t, elements 4t..4t+3 in its low
// nibbles, 16 + 4t.. in its high ones: b0's and b1's elements), codes as unsigned bytes, W = d *
// (code - 8).
template <>
struct QiFrag<QT_Q4_0> {
  static constexpr bool kSigned = false;
  static constexpr int kOff = 8;
  using Raw = QFrag<QT_Q4_0>::Raw;
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) { return QFrag<QT_Q4_0>::load(win, i, t); }
  // lo: the codes of elements 4t..4t+3 (A's a[0] / a[1]), hi: 16 + 4t.. (a[2] / a[3])
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t& lo, uint32_t& hi, float& sc) {
    lo = r.w & 0x0F0F0F0Fu;
    hi = (r.w >> 4) & 0x0F0F0F0Fu;
    sc = rq_f16_to_f32((uint16_t)r.d);
  }
};
#endif

template <int ID, int XK, int CT, int NS>
__global__ void __launch_bounds__(QimmaCfg<ID>::kThreads, 1) qimma_stream_kernel(QmatArgs a) {
#if defined(ROCQ_MMA_NV)
  using Cfg = QmmaStreamCfg<ID>;
  using F = QFrag<ID>;
  using D = QiFrag<ID>;
  using T = typename XStore<XK>::T;
  static_assert(F::kC == 32, "one 32-element block a product");
  constexpr int WC = F::kWC, W = Cfg::kWarps, R = Cfg::kRows, NT = Cfg::kThreads;
  constexpr int WB = Cfg::kWinBytes, SRB = Cfg::kRowBytes, SRS = Cfg::kRowStride;
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[W][R][4 * CT];

  const int tid = threadIdx.x, warp = tid / kRqMmaLanes, lane = tid % kRqMmaLanes;
  const int g = lane / 4, t = lane % 4;
  const int M = a.M, nb = (int)(a.k / 32);
  uint8_t* const xb = smem + NS * Cfg::kStageBytes;                          // [nb][M] records of 64 bytes
  int2* const xa = reinterpret_cast<int2*>(xb + (int64_t)nb * M * 64);     // [nb][M] (scale bits, sum)

  // x, record i = blk * M + m: rounded, split into bytes, stored in B order (see above).
  {
    const T* x = static_cast<const T*>(a.x);
    for (int i = tid; i < M * nb; i += NT) {
      const int m = i % M, blk = i / M;
      uint4 q[4];
      const float s = rq_xquant_block<XK, 14>(x + (int64_t)m * a.k + 32 * blk, q);
      const uint32_t w[16] = {q[0].x, q[0].y, q[0].z, q[0].w, q[1].x, q[1].y, q[1].z, q[1].w,
                              q[2].x, q[2].y, q[2].z, q[2].w, q[3].x, q[3].y, q[3].z, q[3].w};
      uint32_t hb[8] = {}, lb[8] = {};
      int sum = 0;
#pragma unroll
      for (int e = 0; e < 32; ++e) {
        const int v = (int)(int16_t)(w[e / 2] >> (16 * (e % 2)));
        const int lo = (int)(int8_t)v, hi = (v - lo) >> 8;
        const int word = 2 * ((e % 16) / 4) + e / 16, sh = 8 * (e % 4);  // quarter (e % 16) / 4, b0 / b1
        hb[word] |= (uint32_t)(hi & 0xFF) << sh;
        lb[word] |= (uint32_t)(lo & 0xFF) << sh;
        sum += v;
      }
      uint4* dst = reinterpret_cast<uint4*>(xb + (int64_t)i * 64);
      dst[0] = make_uint4(hb[0], hb[1], hb[2], hb[3]);
      dst[1] = make_uint4(hb[4], hb[5], hb[6], hb[7]);
      dst[2] = make_uint4(lb[0], lb[1], lb[2], lb[3]);
      dst[3] = make_uint4(lb[4], lb[5], lb[6], lb[7]);
      xa[i] = make_int2(__float_as_int(s), sum);
    }
    // (read after the first stage's __syncthreads)
  }

  const int64_t nch = nb;                                  // chunks (blocks) per row
  const int nc = (int)rq_ceil_div(nch, (int64_t)W * WC);  // stages per row group
  const int64_t groups = rq_ceil_div(a.n, (int64_t)R);
  StageRing<R, SRB, SRS, NT, NS> ring(tid, a, nc);  // (stage_copy.h)
  auto issue = [&]() { ring.issue(smem, Cfg::kStageBytes, tid, a, [](uint8_t*, int64_t, int) {}); };
#pragma unroll
  for (int i = 0; i < NS - 1; ++i) issue();

  // This lane's B column in each product: x row 4 ct + g / 2 (rows past M repeat the last:
  // computed, never stored), hi or lo bytes by g % 2; its C columns' x row: 4 ct + t.
  int xoff[CT], aoff[CT];
#pragma unroll
  for (int ct = 0; ct < CT; ++ct) {
    const int mb = 4 * ct + g / 2, mc = 4 * ct + t;
    xoff[ct] = (mb < M ? mb : M - 1) * 64 + (g % 2) * 32 + 8 * t;
    aoff[ct] = mc < M ? mc : M - 1;
  }

  int st = 0;
  for (int64_t grp = blockIdx.x; grp < groups; grp += gridDim.x) {
    float acc[CT][2];
#pragma unroll
    for (int ct = 0; ct < CT; ++ct) acc[ct][0] = acc[ct][1] = 0.f;
    for (int c = 0; c < nc; ++c) {
      const int64_t cb = ((int64_t)c * W + warp) * WC;  // this warp's first block in the row
      const int wc = nch - cb >= WC ? WC : (nch - cb > 0 ? (int)(nch - cb) : 0);
      rq_cp_async_wait<NS - 2>();
      __syncthreads();  // this stage landed for every thread; the previous one is free to refill
      issue();
      const uint8_t* sb = smem + st * Cfg::kStageBytes + warp * WB;
      const uint8_t* win[2] = {sb + g * SRS, sb + (g + 8) * SRS};
      auto one = [&](int i) {
        const int blk = (int)cb + i;
        uint32_t af[4];
        float sc[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) D::decode(D::load(win[h], i, t), af[h], af[2 + h], sc[h]);
        const uint8_t* xr = xb + blk * M * 64;  // (32-bit: the launcher caps M * k)
        const int2* xs = xa + blk * M;
#pragma unroll
        for (int ct = 0; ct < CT; ++ct) {
          const uint2 b = *reinterpret_cast<const uint2*>(xr + xoff[ct]);
          int cc[4];
          rq_imma_frag<D::kSigned>(cc, af, b.x, b.y);
          const int2 xv = xs[aoff[ct]];
          const float fx = __int_as_float(xv.x);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            int v = cc[2 * h] * 256 + cc[2 * h + 1];
            if constexpr (D::kOff != 0) v -= D::kOff * xv.y;
            acc[ct][h] = fmaf((float)v, sc[h] * fx, acc[ct][h]);
          }
        }
      };
      rq_window_each<WC>(wc, one);
      st = st + 1 == NS ? 0 : st + 1;
    }
    // The group is complete: each warp's sums into shared memory, then the 8 per output in warp
    // order. (red is written again only after the next group's first __syncthreads.)
#pragma unroll
    for (int ct = 0; ct < CT; ++ct)
#pragma unroll
      for (int h = 0; h < 2; ++h) red[warp][g + 8 * h][4 * ct + t] = acc[ct][h];
    __syncthreads();
    if (tid < R * 4 * CT) {
      const int rr = tid % R, m = tid / R;
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < W; ++w) v += red[w][rr][m];
      qmma_store<XK>(a, grp * R + rr, m, v);
    }
  }
  rq_cp_async_wait<0>();
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched below sm_80 (qimma_stream_plan)
#else
  (void)a;
#endif
}

}  // namespace rocq::gpu
