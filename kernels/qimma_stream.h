// The streaming integer matrix-unit kernel: 1..8 rows of 16-bit x multiplied on the int8 matrix
// units (platform_mma.h rq_imma_frag: one 16 x 8 x 32 product per 32-element (sub-)block), with
// the weights fed by the streaming matrix-unit kernel's pipeline and stage layout (qmma_stream.h:
// a persistent CTA of 8 warps walks 16-row groups; each stage holds 8 windows of every row of the
// group, one per warp, copied by the whole CTA NS - 1 stages ahead; OCP MX: with the E8M0 bytes).
// Formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, IQ4_NL, IQ4_XS, MXFP4, OCP MXFP4
// (kQiFragOn). NVIDIA sm_80+ only for now (as the other matrix-unit kernels; AMD's int8 MFMA /
// WMMA mappings are not written). Included by qimma_stream.hip.
//
// Why: the bf16 matrix-unit kernel (qmma_stream.h) turns every code into a 16-bit operand (a
// permute and a packed subtraction per two codes), needs two products per 32 elements and reads
// its x fragments from global memory per block; the integer pieces of the streaming decode
// kernel (qmatvec_stream.h) cost one dot-product instruction per two codes and row of x, so their
// time grows with M. Here the codes go to the matrix unit as bytes (Q4_0: a mask and a shift per
// 8 codes; the table formats: three byte permutes per 4), one product serves 4 rows of x, and x
// sits in shared memory in the order the matrix unit takes it. (Session 16 wrote it with no GPU
// to run it on: not yet measured, so launch_qmatvec takes it only when asked, ROCQ_QIMMA.)
//
// x: each CTA rounds x to 14-bit fixed point per 32-element block (rq_xquant_block<XK, 14>: no
// separate launch, no workspace) and splits each value into signed bytes, v = 256 hi + lo (|hi|
// <= 64, lo in -128..127). The products' B columns are 2j: the hi bytes of x row j, 2j + 1: its
// lo bytes (4 rows of x a product; M = 5..8 two products, CT = 2). With a sub-block's codes of 16
// weight rows as A, lane (g, t) gets C[g][2t] and C[g][2t + 1], the hi and lo sums of x row t
// against weight row g (and row g + 8): 256 hi + lo is the sub-block's exact integer dot product,
// minus kOff times the x block's sum for codes stored with an offset, then scaled in fp32 by the
// weight sub-block's scale and the x block's (plus min times the x sum for Q4_1, Q5_1, Q4_K, Q5_K).
//
// Shared memory: NS stages (QmmaStreamCfg::kStageBytes each), then x as [block][x row] records of
// 64 bytes (hi bytes, lo bytes; in each, lane quarter t's 8 bytes at 8t, its b0 and b1, in the
// decoder's element order: qimma_x_slot), then [block][x row] pairs (scale bits, sum of the 32
// fixed-point values). A warp's 8-byte B loads of one block cover 4 consecutive records: 256
// contiguous bytes, no bank conflicts.
#pragma once

#include <type_traits>

#include "qmatvec_impl.h"
#include "qmma_stream.h"

namespace rocq::gpu {

// The formats with a byte decoder below (every pass sees it; the decoders are NVIDIA sm_80+ code).
template <int ID>
inline constexpr bool kQiFragOn = ID == QT_Q4_0 || ID == QT_Q4_1 || ID == QT_Q5_0 || ID == QT_Q5_1 || ID == QT_Q8_0 ||
                                  ID == QT_Q4_K || ID == QT_Q5_K || ID == QT_IQ4_NL || ID == QT_IQ4_XS || ID == QT_MXFP4 ||
                                  ID == QT_OCP_MXFP4;

// The formats whose decoder reads its E8M0 scales from a 256-entry table in shared memory
// (QiFragTable kE8; counted in QimmaCfg::static_smem).
template <int ID>
inline constexpr bool kQiE8 = ID == QT_MXFP4 || ID == QT_OCP_MXFP4;

// Bytes of shared memory per row of x and 32-element block: 64 of hi and lo bytes, 8 of scale
// and sum.
constexpr int kQimmaXBytes = 72;

// (the stage geometry is instantiated only for formats with a decoder)
template <int ID>
constexpr bool qimma_on() {
  if constexpr (kQiFragOn<ID>) return QmmaStreamCfg<ID>::kOn;
  else return false;
}

template <int ID>
struct QimmaCfg {
  using G = QmmaStreamCfg<ID>;  // the stage geometry (windows, row stride, copies)
  static constexpr int kThreads = G::kThreads, kStages = 3;
  // dynamic shared memory: ns stages, M rows of x; static: the kernel's reduction tile (red),
  // table words and E8M0 scales (QiFrag kE8: the E8M0 formats)
  static constexpr int64_t smem(int ns, int64_t k, int64_t M) { return ns * G::kStageBytes + M * (k / 32) * kQimmaXBytes; }
  static constexpr int64_t static_smem(int ct) {
    return G::kWarps * G::kRows * 4 * ct * 4 + 16 + (kQiE8<ID> ? 1024 : 4);
  }
};

// The order of a block's 32 elements in lane quarter t's 8 bytes of B (b0: bytes 0-3, b1: 4-7),
// matching the order a decoder's A bytes come in:
//   kNatural: b0 = elements 4t..4t+3, b1 = 16 + 4t..: a GGUF qs word's low nibbles (or bytes)
//             give a[0], its high nibbles a[2], after a mask and a shift;
//   kPair:    b0 = elements 4t, 16 + 4t, 4t + 1, 17 + 4t, b1 = 4t + 2, 18 + 4t, 4t + 3, 19 + 4t:
//             a GGUF qs word's nibbles in place, as a byte permute's selector takes its halves
//             (the table formats);
//   kLinear:  b0 = elements 8t..8t+3, b1 = 8t + 4..: an OCP FP4 word (element 2j the low nibble
//             of byte j) as the same permutes take it.
enum class QiOrder : int { kNatural, kPair, kLinear };
// element e's byte: t * 8 + its byte in b0 (0-3) or b1 (4-7)
template <QiOrder O>
ROCQ_HD constexpr int qimma_x_slot(int e) {
  const int j = e % 16, t = j / 4;
  if constexpr (O == QiOrder::kPair) return t * 8 + (j % 4 >= 2 ? 4 : 0) + 2 * (j % 2) + e / 16;
  else if constexpr (O == QiOrder::kLinear) return e;
  else return t * 8 + (e / 16) * 4 + e % 4;
}

#if defined(ROCQ_MMA_NV)
// Byte decoders, on top of the fragment loads of qfrag.h (a chunk of kP 32-element sub-blocks;
// lane quarter t's code words at bytes 4t.. of each). decode(raw, tab, lo, hi, sc, mn): for product p
// of the chunk, lo[p], hi[p] the A operand bytes of this row (a[0] / a[1] and a[2] / a[3]) in the
// order qimma_x_slot<kOrder> gives x, unsigned codes (kSigned false) or signed values; that
// sub-block's weights are W = sc[p] * (code - kOff) + mn[p] (mn: kMin only).
template <int ID>
struct QiFrag;

// A decoder's constants that the kernel keeps for its whole life (tab(sw, e8), once per thread,
// from the 4 words tab_word(0..3) and, kE8, the 256 floats e8_value(0..255) the kernel stored in
// shared memory; passed to every decode): none but for the table formats.
struct QiNoTab {
  static constexpr bool kE8 = false;
  struct Tab {};
  ROCQ_DEVICE static uint32_t tab_word(int) { return 0u; }
  ROCQ_DEVICE static float e8_value(int) { return 0.f; }
  ROCQ_DEVICE static Tab tab(const uint32_t*, const float*) { return {}; }
};

// Q4_0, Q4_1, Q5_0, Q5_1 (qfrag.h QFragLegacy's loads; Q4_0's own): codes as unsigned bytes, the
// fifth bit of Q5_0 / Q5_1 at bit 4; W = d * (q - 8), d * q + m, d * (q - 16), d * q + m.
template <int ID>
struct QiFragLegacy : QiNoTab {
  using L = QFrag<ID>;
  static constexpr bool kSigned = false, kMin = ID == QT_Q4_1 || ID == QT_Q5_1;
  static constexpr QiOrder kOrder = QiOrder::kNatural;
  static constexpr int kP = 1, kOff = ID == QT_Q4_0 ? 8 : ID == QT_Q5_0 ? 16 : 0;
  using Raw = typename L::Raw;
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) { return L::load(win, i, t); }
  ROCQ_DEVICE static void decode(const Raw& r, const Tab&, uint32_t (&lo)[kP], uint32_t (&hi)[kP], float (&sc)[kP],
                                 float (&mn)[kP]) {
    lo[0] = r.w & 0x0F0F0F0Fu;
    hi[0] = (r.w >> 4) & 0x0F0F0F0Fu;
    if constexpr (ID == QT_Q4_0) {
      sc[0] = rq_f16_to_f32((uint16_t)r.d);
    } else {
      if constexpr (ID != QT_Q4_1) lo[0] |= r.h0, hi[0] |= r.h1;
      sc[0] = rq_lo_half(r.dm);
      if constexpr (kMin) mn[0] = rq_hi_half(r.dm);
    }
  }
};
template <> struct QiFrag<QT_Q4_0> : QiFragLegacy<QT_Q4_0> {};
template <> struct QiFrag<QT_Q4_1> : QiFragLegacy<QT_Q4_1> {};
template <> struct QiFrag<QT_Q5_0> : QiFragLegacy<QT_Q5_0> {};
template <> struct QiFrag<QT_Q5_1> : QiFragLegacy<QT_Q5_1> {};

// Q8_0: the signed bytes as they are (w0: elements 4t.., w1: 16 + 4t..); W = d * q.
template <>
struct QiFrag<QT_Q8_0> : QiNoTab {
  static constexpr bool kSigned = true, kMin = false;
  static constexpr QiOrder kOrder = QiOrder::kNatural;
  static constexpr int kP = 1, kOff = 0;
  using Raw = QFrag<QT_Q8_0>::Raw;
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) { return QFrag<QT_Q8_0>::load(win, i, t); }
  ROCQ_DEVICE static void decode(const Raw& r, const Tab&, uint32_t (&lo)[kP], uint32_t (&hi)[kP], float (&sc)[kP],
                                 float (&)[kP]) {
    lo[0] = r.w0;
    hi[0] = r.w1;
    sc[0] = rq_f16_to_f32((uint16_t)r.d);
  }
};

// Q4_K, Q5_K (qfrag.h QFragK45's loads: chunk p = sub-blocks 2p, 2p + 1, the low and high
// nibbles of qs words w0 (elements 4t..) and w1 (16 + 4t..); Q5_K's fifth bits in h0, h1):
// W = (d * sc) * q - dmin * m per sub-block (mn = -dmin * m).
template <int ID>
struct QiFragK45 : QiNoTab {
  using L = QFrag<ID>;
  static constexpr bool kSigned = false, kMin = true, kQ5 = ID == QT_Q5_K;
  static constexpr QiOrder kOrder = QiOrder::kNatural;
  static constexpr int kP = 2, kOff = 0;
  using Raw = typename L::Raw;
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) { return L::load(win, i, t); }
  ROCQ_DEVICE static void decode(const Raw& r, const Tab&, uint32_t (&lo)[kP], uint32_t (&hi)[kP], float (&sc)[kP],
                                 float (&mn)[kP]) {
    lo[0] = r.w0 & 0x0F0F0F0Fu;
    hi[0] = r.w1 & 0x0F0F0F0Fu;
    lo[1] = (r.w0 >> 4) & 0x0F0F0F0Fu;
    hi[1] = (r.w1 >> 4) & 0x0F0F0F0Fu;
    if constexpr (kQ5) {
      const int j = 2 * r.p;
      lo[0] |= ((r.h0 >> j) & 0x01010101u) << 4;
      hi[0] |= ((r.h1 >> j) & 0x01010101u) << 4;
      lo[1] |= ((r.h0 >> (j + 1)) & 0x01010101u) << 4;
      hi[1] |= ((r.h1 >> (j + 1)) & 0x01010101u) << 4;
    }
    uint32_t scp, mnp;
    rq_k4_pair(r.s0, r.s1, r.s2, r.p, scp, mnp);
    const float d = rq_f16_to_f32((uint16_t)r.dm), dmin = rq_f16_to_f32((uint16_t)(r.dm >> 16));
    sc[0] = rq_mul(d, (float)(scp & 0xFFu));
    sc[1] = rq_mul(d, (float)(scp >> 8));
    mn[0] = -rq_mul(dmin, (float)(mnp & 0xFFu));
    mn[1] = -rq_mul(dmin, (float)(mnp >> 8));
  }
};
template <> struct QiFrag<QT_Q4_K> : QiFragK45<QT_Q4_K> {};
template <> struct QiFrag<QT_Q5_K> : QiFragK45<QT_Q5_K> {};

// IQ4_NL, MXFP4, IQ4_XS (qfrag.h's loads: QFragQ40Lut's; IQ4_XS's chunk = one sub-block) and
// OCP MXFP4 (its own load: lane quarter t's word = element bytes 4t..4t+3; the chunk's E8M0
// byte, from the stage's copy of the scale plane, set by the kernel): a nibble's value is an int8
// of a 16-entry table (the IQ4 levels; doubled E2M1 values), looked up four at a time with byte
// permutes on the table's halves (entries 0-7, 8-15), which take a word's half as their
// selector: the pair order (GGUF nibbles) or the linear one (OCP). Bit 3 of each selector nibble
// would switch the permute to sign replication, so it is masked off for the two lookups and
// picks between their results in a third. W = d * value (IQ4_NL, d f16), 2^(e - 128) * value
// (MXFP4, OCP MXFP4: e the E8M0 byte; OCP's e = 255 is NaN, GGUF's keeps ggml's 2^127),
// d * (6-bit sub-block scale - 32) * value (IQ4_XS).
template <int ID>
ROCQ_HD constexpr uint32_t qi_tab_word(int j) {
  uint32_t w = 0;
  for (int b = 0; b < 4; ++b) {
    const int q = 4 * j + b;
    const int v = ID == QT_MXFP4 || ID == QT_OCP_MXFP4 ? rq_e2m1x2_value(q) : rq_iq4nl_value(q);
    w |= (uint32_t)(v & 0xFF) << (8 * b);
  }
  return w;
}
template <int ID>
struct QiFragTable {
  static constexpr bool kSigned = true, kMin = false, kOcp = ID == QT_OCP_MXFP4;
  static constexpr QiOrder kOrder = kOcp ? QiOrder::kLinear : QiOrder::kPair;
  static constexpr int kP = 1, kOff = 0;
  struct OcpRaw { uint32_t w, e; };
  using Raw = std::conditional_t<kOcp, OcpRaw, typename QFrag<ID>::Raw>;
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    if constexpr (kOcp) return {rq_g32(win + i * 16 + 4 * t), 0u};
    else return QFrag<ID>::load(win, i, t);
  }
  // The table's words in registers, read from shared memory once (sw: 4 words, written by the
  // kernel before a barrier): as constants, the compiler rebuilt them before every permute (8
  // moves a product in the sm_90 SASS). E8M0 formats: their 256 scales in shared memory too
  // (kE8: 3 instructions a row's scale instead of 7).
  static constexpr bool kE8 = kQiE8<ID>;
  struct Tab { uint32_t w[4]; const float* e8; };
  ROCQ_DEVICE static uint32_t tab_word(int j) { return qi_tab_word<ID>(j); }
  ROCQ_DEVICE static float e8_value(int e) {
    // (OCP MX: e = 255 is NaN; GGUF MXFP4 keeps ggml's 2^127)
    return kOcp ? rq_e8m0((uint8_t)e) * 0.5f : rq_e8m0_half((uint8_t)e);
  }
  ROCQ_DEVICE static Tab tab(const uint32_t* sw, const float* e8) { return {{sw[0], sw[1], sw[2], sw[3]}, e8}; }
  // the values of the four nibbles of sel7's low half (nibble i -> byte i; pick: the half each is in)
  ROCQ_DEVICE static uint32_t values4(const Tab& t, uint32_t sel7, uint32_t pick) {
    return __byte_perm(__byte_perm(t.w[0], t.w[1], sel7), __byte_perm(t.w[2], t.w[3], sel7), pick);
  }
  ROCQ_DEVICE static void decode(const Raw& r, const Tab& t, uint32_t (&lo)[kP], uint32_t (&hi)[kP], float (&sc)[kP],
                                 float (&)[kP]) {
    const uint32_t sel7 = r.w & 0x77777777u;                          // entry within a half
    const uint32_t pick = ((r.w >> 1) & 0x44444444u) | 0x32103210u;  // byte i of the low or high half
    lo[0] = values4(t, sel7, pick);
    hi[0] = values4(t, sel7 >> 16, pick >> 16);
    if constexpr (ID == QT_MXFP4) sc[0] = t.e8[r.d];
    else if constexpr (kOcp) sc[0] = t.e8[r.e];
    else if constexpr (ID == QT_IQ4_XS) sc[0] = rq_mul(rq_lo_half(r.h), (float)rq_iq4xs_subscale(r.h, r.l, r.sb));
    else sc[0] = rq_lo_half(r.d);
  }
};
template <> struct QiFrag<QT_IQ4_NL> : QiFragTable<QT_IQ4_NL> {};
template <> struct QiFrag<QT_MXFP4> : QiFragTable<QT_MXFP4> {};
template <> struct QiFrag<QT_IQ4_XS> : QiFragTable<QT_IQ4_XS> {};
template <> struct QiFrag<QT_OCP_MXFP4> : QiFragTable<QT_OCP_MXFP4> {};
#endif

template <int ID, int XK, int CT, int NS>
// (two CTAs a multiprocessor, 128 registers, for one product of x: its x leaves room for two
// where M <= 2 at k = 8192)
__global__ void __launch_bounds__(QimmaCfg<ID>::kThreads, CT == 1 ? 2 : 1) qimma_stream_kernel(QmatArgs a, int early) {
#if defined(ROCQ_MMA_NV)
  using Cfg = QmmaStreamCfg<ID>;
  using F = QFrag<ID>;
  using D = QiFrag<ID>;
  using T = typename XStore<XK>::T;
  constexpr int P = D::kP;  // products (32-element sub-blocks) a chunk
  static_assert(F::kC == 32 * P, "whole 32-element sub-blocks a chunk");
  constexpr int WC = F::kWC, W = Cfg::kWarps, R = Cfg::kRows, NT = Cfg::kThreads;
  constexpr int WB = Cfg::kWinBytes, SRB = Cfg::kRowBytes, SRS = Cfg::kRowStride;
  constexpr bool kPlane = rq_has_scale_plane(ID);
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[W][R][4 * CT];  // (QimmaCfg::static_smem)

  const int tid = threadIdx.x, warp = tid / kRqMmaLanes, lane = tid % kRqMmaLanes;
  const int g = lane / 4, t = lane % 4;
  const int M = a.M, nb = (int)(a.k / 32);
  uint8_t* const xb = smem + NS * Cfg::kStageBytes;                          // [nb][M] records of 64 bytes
  int2* const xa = reinterpret_cast<int2*>(xb + (int64_t)nb * M * 64);     // [nb][M] (scale bits, sum)

  const int64_t nch = nb / P;                              // chunks per row
  const int nc = (int)rq_ceil_div(nch, (int64_t)W * WC);  // stages per row group
  const int64_t groups = rq_ceil_div(a.n, (int64_t)R);
  StageRing<R, SRB, SRS, NT, NS> ring(tid, a, nc);  // (stage_copy.h)
  // (OCP MX: each item's E8M0 bytes travel with it, after its weight rows; the launcher takes
  // only scale planes in words, rq_plane_words)
  auto issue = [&]() {
    ring.issue(smem, Cfg::kStageBytes, tid, a, [&](uint8_t* dst, int64_t ig, int ic) {
      if constexpr (kPlane) qmma_stage_plane<R, W * WC, NT>(dst + Cfg::kWBytes, a, ig * R, (int64_t)ic * W * WC, tid);
      else (void)dst, (void)ig, (void)ic;
    });
  };
  // The first NS - 1 items' copies: before rounding x where `early` (their latency then overlaps
  // it; measured slower for the streaming decode kernel at M = 1, qmatvec_stream.h, but this
  // kernel's x takes up to 8 times longer), else after.
  if (early) {
#pragma unroll
    for (int i = 0; i < NS - 1; ++i) issue();
  }
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
        const int slot = qimma_x_slot<D::kOrder>(e), word = slot / 4, sh = 8 * (slot % 4);
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

  if (!early) {
#pragma unroll
    for (int i = 0; i < NS - 1; ++i) issue();
  }

  // This lane's B column in each product: x row 4 ct + g / 2 (rows past M repeat the last:
  // computed, never stored), hi or lo bytes by g % 2; its C columns' x row: 4 ct + t.
  // xl, al: its bytes and (scale, sum) pair in block 0's records; block b's are b * xstep bytes
  // and b * M pairs further.
  const int xstep = M * 64;  // (32-bit: the launcher caps M * k)
  const uint8_t* xl[CT];
  const int2* al[CT];
#pragma unroll
  for (int ct = 0; ct < CT; ++ct) {
    const int mb = 4 * ct + g / 2, mc = 4 * ct + t;
    xl[ct] = xb + (mb < M ? mb : M - 1) * 64 + (g % 2) * 32 + 8 * t;
    al[ct] = xa + (mc < M ? mc : M - 1);
  }

  __shared__ uint32_t tabw[4];               // (D::tab: read after the barrier)
  __shared__ float e8[D::kE8 ? 256 : 1];     // (QimmaCfg::static_smem)
  if (tid < 4) tabw[tid] = D::tab_word(tid);
  if constexpr (D::kE8) {
    for (int i = tid; i < 256; i += NT) e8[i] = D::e8_value(i);
  }
  __syncthreads();
  const typename D::Tab tab = D::tab(tabw, e8);
  int st = 0;
  for (int64_t grp = blockIdx.x; grp < groups; grp += gridDim.x) {
    float acc[CT][2];
#pragma unroll
    for (int ct = 0; ct < CT; ++ct) acc[ct][0] = acc[ct][1] = 0.f;
    for (int c = 0; c < nc; ++c) {
      const int64_t cb = ((int64_t)c * W + warp) * WC;  // this warp's first chunk in the row
      const int wc = nch - cb >= WC ? WC : (nch - cb > 0 ? (int)(nch - cb) : 0);
      rq_cp_async_wait<NS - 2>();
      __syncthreads();  // this stage landed for every thread; the previous one is free to refill
      issue();
      const uint8_t* sb = smem + st * Cfg::kStageBytes + warp * WB;
      const uint8_t* win[2] = {sb + g * SRS, sb + (g + 8) * SRS};
      // (kPlane) this warp's E8M0 bytes of rows g, g + 8: row r's at r * W * WC
      const uint8_t* ssc = smem + st * Cfg::kStageBytes + Cfg::kWBytes + warp * WC;
      // this lane's x of the window's first block (its block j at j * xstep, j * M further)
      const uint8_t* xw[CT];
      const int2* aw[CT];
#pragma unroll
      for (int ct = 0; ct < CT; ++ct) {
        xw[ct] = xl[ct] + (int)cb * P * xstep;
        aw[ct] = al[ct] + (int)cb * P * M;
      }
      auto one = [&](int i) {
        uint32_t lo[2][P], hi[2][P];
        float sc[2][P], mn[2][P];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          auto raw = D::load(win[h], i, t);
          if constexpr (kPlane) raw.e = ssc[(g + 8 * h) * W * WC + i];
          D::decode(raw, tab, lo[h], hi[h], sc[h], mn[h]);
        }
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const uint32_t af[4] = {lo[0][p], lo[1][p], hi[0][p], hi[1][p]};
          const int j = i * P + p;  // the x block, from the window's first
#pragma unroll
          for (int ct = 0; ct < CT; ++ct) {
            const uint2 b = *reinterpret_cast<const uint2*>(xw[ct] + j * xstep);
            int cc[4];
            rq_imma_frag<D::kSigned>(cc, af, b.x, b.y);
            const int2 xv = aw[ct][j * M];
            const float fx = __int_as_float(xv.x);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              int v = cc[2 * h] * 256 + cc[2 * h + 1];
              if constexpr (D::kOff != 0) v -= D::kOff * xv.y;
              if constexpr (D::kMin) {
                acc[ct][h] = fmaf(fmaf((float)v, sc[h][p], mn[h][p] * (float)xv.y), fx, acc[ct][h]);
              } else {
                acc[ct][h] = fmaf((float)v, sc[h][p] * fx, acc[ct][h]);
              }
            }
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
  (void)a, (void)early;
#endif
}

}  // namespace rocq::gpu
