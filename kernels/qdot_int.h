// Integer pieces: the register-blocked decode kernel's dot products for 16-bit activations
// (fp16/bf16 x), computed with integer dot products (rq_dot2_16x8: one DP2A per two weights on
// NVIDIA) instead of one float conversion plus one FMA per weight. Formats: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, OCP MXINT8, and the 16-level table formats IQ4_NL,
// IQ4_XS, MXFP4 and OCP MXFP4 (levels looked up in registers, rq_lut16_i8x4). FP6 and FP8 keep
// the fp32 pieces (and the streaming kernel's float pieces, kStreamFloat).
// The plane formats get their block's E8M0 scale byte in `sc` (0 for the others).
//
// Why: at M = 1..2 the fp32 pieces (qdot.h) issue about 2.5 instructions per weight and the
// kernel is instruction-bound well below the memory bandwidth (ncu on the H200: 64% SM busy,
// 43% DRAM for Q4_0). Integer codes times integer x need no per-weight conversion.
//
// x in integers: qmv_xquant_kernel (qmatvec_impl.h) rounds x once per call to 16-bit fixed point
// per 32-element block, x = xq * 2^-e with one power-of-two exponent per block, chosen so that
// the block's largest |x| lands in [2^14, 2^15). For bf16 x (8 significant bits) that is exact
// for every element within a factor 2^7 of the block maximum (fp16: 2^4); otherwise the error
// of an element is at most half a step, 2^-15 of the block maximum. Products and sums are exact int32 (|sum| <
// 2^31 for every format here); the per-block float scaling happens once per piece.
// Set ROCQ_QMV_EXACT=1 to keep the fp32 pieces for 16-bit x as well (fp32 x always uses them;
// so does every x on backends without a fast integer dot, platform.h kRqIntDot: AMD for now).
#pragma once

#include "qdot.h"

namespace rocq::gpu {

// The x values of one piece as int16 pairs: run A of quad q = a[q][m][0..1] (4 elements), run
// B = b[q][m][0..1]; sa/sb: the runs' element sums; fa/fb: the x block scales 2^-e of the runs.
template <int MT, int NQ>
struct XIPiece : XRunSums<int, MT, NQ> {
  uint32_t a[NQ][MT][2], b[NQ][MT][2];
  float fa[NQ][MT], fb[NQ][MT];
};

// One run of 4 fixed-point x values (two int16 pairs, v) into o, its sum added to s.
ROCQ_DEVICE void rq_xi_run(uint2 v, uint32_t (&o)[2], int& s) {
  o[0] = v.x;
  o[1] = v.y;
  s = rq_dot2_16x8<false>(v.x, 0x0101u, rq_dot2_16x8<false>(v.y, 0x0101u, s));
}

// x in fixed point, as qmv_xquant_kernel writes it: xq [M, k] int16, and per (row, 32-block)
// the scale 2^-e (float) in xs [M, k/32].
struct XIRows {
  const int16_t* xq;
  const float* xs;
  int64_t k;
  int M;
  ROCQ_DEVICE int64_t row(int m) const { return (int64_t)(m < M ? m : M - 1); }
  // Loads run [e, e+4) (e a multiple of 4) into two int16 pairs and adds its sum to s.
  ROCQ_DEVICE void load4(int m, int64_t e, uint32_t (&o)[2], int& s) const {
    rq_xi_run(*reinterpret_cast<const uint2*>(xq + row(m) * k + e), o, s);
  }
  ROCQ_DEVICE float scale(int m, int64_t e) const { return xs[row(m) * (k / 32) + e / 32]; }
};

template <int ID>
struct PieceInt {
  static constexpr bool kOn = false;
};

// The formats without integer pieces that the streaming kernel (stream_pieces.h
// StreamPieceMxF) still runs on the fixed-point x: each element decoded to fp32 in registers and
// multiplied by x as fp32 (int16 x is exact in fp32, every element value has a significand of at
// most 4 bits, so each product is exact; only the fp32 sums round). Why: in the register-blocked
// kernel (qmatvec_impl.h) their fp32 pieces read x and the weights straight from global memory,
// and OCP MXFP8 E4M3 reached 72% of the copy bandwidth at M = 1 (H200), OCP MXFP6 43%.
template <int ID>
inline constexpr bool kStreamFloat = ID == QT_OCP_MXFP8_E4M3 || ID == QT_OCP_MXFP8_E5M2 ||
                                     ID == QT_OCP_MXFP6_E2M3 || ID == QT_OCP_MXFP6_E3M2;

// s[m] += sum over the 4 code bytes of w4 (signed) times the 4 x values of run r.
template <int MT>
ROCQ_DEVICE void rq_idot4(uint32_t w4, const uint32_t (&r)[MT][2], int (&s)[MT]) {
#pragma unroll
  for (int m = 0; m < MT; ++m) s[m] = rq_dot2_16x8<true>(r[m][1], w4, rq_dot2_16x8<false>(r[m][0], w4, s[m]));
}

// The same with the x values 4i .. 4i + 3 of row m at xw[m][2i], xw[m][2i + 1] (a run of
// int16 pairs in element order, as the wide pieces below get x).
// U: the bytes of w4 unsigned (rq_dot2_16x8).
template <int MT, int N, bool U = false>
ROCQ_DEVICE void rq_idot4_at(uint32_t w4, const uint32_t (&xw)[MT][N], int i, int (&s)[MT]) {
#pragma unroll
  for (int m = 0; m < MT; ++m)
    s[m] = rq_dot2_16x8<true, U>(xw[m][2 * i + 1], w4, rq_dot2_16x8<false, U>(xw[m][2 * i], w4, s[m]));
}

// The sum of the int16 values of x words w (rq_xi_run's sums, for whole runs of words).
template <int N>
ROCQ_DEVICE int rq_xi_sum(const uint32_t (&w)[N]) {
  int s = 0;
#pragma unroll
  for (int i = 0; i < N; ++i) s = rq_dot2_16x8<false>(w[i], 0x0101u, s);
  return s;
}

#define ROCQ_IPIECE_HEAD                                                                       \
  static constexpr bool kOn = true;                                                            \
  template <int MT, int NQ>                                                                    \
  ROCQ_DEVICE static void dot(const uint8_t* blk, int Q0, uint8_t sc, const XIPiece<MT, NQ>& x, float (&acc)[MT])

// Q4_0: quad Q = qs word Q (low nibbles: run A, high: run B); x = d * (q - 8).
template <>
struct PieceInt<QT_Q4_0> {
  ROCQ_IPIECE_HEAD {
    const float d = rq_gf16(blk);
    int s[MT] = {};
    uint32_t ws[NQ];
    rq_g32n_any<NQ>(blk + 2 + 4 * Q0, ws);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = ws[q];
      rq_idot4<MT>(w & 0x0F0F0F0Fu, x.a[q], s);
      rq_idot4<MT>((w >> 4) & 0x0F0F0F0Fu, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)(s[m] - 8 * (x.sum_a(m) + x.sum_b(m))), acc[m]);
  }
};

// Q4_1, Q5_0, Q5_1 (Q4_0 nibble order; Q5: the 5th bits of elements j and j + 16 are bits j
// and j + 16 of the qh word): x = d * q + m (Q4_1, Q5_1) or d * (q - 16) (Q5_0).
template <int ID>
struct PieceIntLegacy {
  ROCQ_IPIECE_HEAD {
    constexpr bool kQ5 = ID != QT_Q4_1, kMin = ID != QT_Q5_0;
    float d, mn = 0.f;
    uint32_t qh = 0;
    uint32_t ws[NQ];
    if constexpr (kMin) {  // 20/24-byte blocks: f16 d, f16 m, (qh), qs: 4-byte aligned
      const uint32_t dm = rq_g32(blk);
      d = rq_f16_to_f32((uint16_t)dm);
      mn = rq_f16_to_f32((uint16_t)(dm >> 16));
      if constexpr (kQ5) qh = rq_g32(blk + 4);
#pragma unroll
      for (int q = 0; q < NQ; ++q) ws[q] = rq_g32(blk + (kQ5 ? 8 : 4) + 4 * (Q0 + q));
    } else {  // Q5_0, 22-byte blocks: f16 d, qh, qs at any 2-byte alignment
      d = rq_gf16(blk);
      qh = rq_g32_any(blk + 2);
      rq_g32n_any<NQ>(blk + 6 + 4 * Q0, ws);
    }
    int s[MT] = {};
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int Q = Q0 + q;
      uint32_t ca = ws[q] & 0x0F0F0F0Fu, cb = (ws[q] >> 4) & 0x0F0F0F0Fu;
      if constexpr (kQ5) {
        ca |= rq_spread4((qh >> (4 * Q)) & 15u) << 4;
        cb |= rq_spread4((qh >> (16 + 4 * Q)) & 15u) << 4;
      }
      rq_idot4<MT>(ca, x.a[q], s);
      rq_idot4<MT>(cb, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const int X = x.sum_a(m) + x.sum_b(m);
      if constexpr (kMin)
        acc[m] = fmaf(x.fa[0][m], fmaf(d, (float)s[m], mn * (float)X), acc[m]);
      else
        acc[m] = fmaf(d * x.fa[0][m], (float)(s[m] - 16 * X), acc[m]);
    }
  }
};
template <> struct PieceInt<QT_Q4_1> : PieceIntLegacy<QT_Q4_1> {};
template <> struct PieceInt<QT_Q5_0> : PieceIntLegacy<QT_Q5_0> {};
template <> struct PieceInt<QT_Q5_1> : PieceIntLegacy<QT_Q5_1> {};

// Q8_0: quad Q = signed bytes 8Q..8Q+7 (run A: the first word, run B: the second).
template <>
struct PieceInt<QT_Q8_0> {
  ROCQ_IPIECE_HEAD {
    const float d = rq_gf16(blk);
    int s[MT] = {};
    uint32_t ws[2 * NQ];
    rq_g32n_any<2 * NQ>(blk + 2 + 8 * Q0, ws);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      rq_idot4<MT>(ws[2 * q], x.a[q], s);
      rq_idot4<MT>(ws[2 * q + 1], x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)s[m], acc[m]);
  }
};

// OCP MXINT8: as Q8_0 (quad Q = signed bytes 8Q..8Q+7, element order: run A the first word,
// run B the second), the scale the block's E8M0 byte times 2^-6 (qdot.h Piece<QT_OCP_MXINT8>).
template <>
struct PieceInt<QT_OCP_MXINT8> {
  ROCQ_IPIECE_HEAD {
    const float d = rq_mul(rq_e8m0(sc), 0.015625f);
    int s[MT] = {};
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * (Q0 + q));
      rq_idot4<MT>(v.x, x.a[q], s);
      rq_idot4<MT>(v.y, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)s[m], acc[m]);
  }
};

// Q4_K / Q5_K: as PieceK45 (qdot.h): run A = low nibbles (sub-block 2g), run B = high nibbles
// (sub-block 2g + 1), Q5_K's 5th bits from qh word Q % 8; x = (d * sc) * q - dmin * mn.
template <bool Q5>
struct PieceIntK45 {
  ROCQ_IPIECE_HEAD {
    constexpr int kQs = Q5 ? 48 : 16;
    const int g = Q0 / 8;
    const uint32_t dm = rq_g32(blk);
    uint32_t scp, mnp;
    rq_k4_pair(rq_g32(blk + 4), rq_g32(blk + 8), rq_g32(blk + 12), g, scp, mnp);
    const float d = rq_f16_to_f32((uint16_t)dm), dmin = rq_f16_to_f32((uint16_t)(dm >> 16));
    const float dA = rq_mul(d, (float)(scp & 0xFFu)), dB = rq_mul(d, (float)(scp >> 8));
    const float mA = rq_mul(dmin, (float)(mnp & 0xFFu)), mB = rq_mul(dmin, (float)(mnp >> 8));
    int sA[MT] = {}, sB[MT] = {};
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = rq_g32(blk + kQs + 4 * (Q0 + q));
      uint32_t ca = w & 0x0F0F0F0Fu, cb = (w >> 4) & 0x0F0F0F0Fu;
      if constexpr (Q5) {
        const uint32_t qh = rq_g32(blk + 16 + 4 * ((Q0 + q) % 8));
        ca |= ((qh >> (2 * g)) & 0x01010101u) << 4;
        cb |= ((qh >> (2 * g + 1)) & 0x01010101u) << 4;
      }
      rq_idot4<MT>(ca, x.a[q], sA);
      rq_idot4<MT>(cb, x.b[q], sB);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = acc[m];
      v = fmaf(x.fa[0][m], fmaf(dA, (float)sA[m], -mA * (float)x.sum_a(m)), v);
      v = fmaf(x.fb[0][m], fmaf(dB, (float)sB[m], -mB * (float)x.sum_b(m)), v);
      acc[m] = v;
    }
  }
};
template <> struct PieceInt<QT_Q4_K> : PieceIntK45<false> {};
template <> struct PieceInt<QT_Q5_K> : PieceIntK45<true> {};

// Q6_K: as Piece<QT_Q6_K> (qdot.h): 6-bit codes from ql nibbles and 2 qh bits; runs A and B
// each lie in one 16-element sub-block (int8 scale); x = d * sc * (q - 32).
template <>
struct PieceInt<QT_Q6_K> {
  ROCQ_IPIECE_HEAD {
    const int h = Q0 / 16, u = Q0 % 16;
    const float d = rq_gf16(blk + 208);
    const float dA = rq_mul(d, (float)(int8_t)blk[192 + 8 * h + u / 4]);
    const float dB = rq_mul(d, (float)(int8_t)blk[196 + 8 * h + u / 4]);
    const int shA = 2 * (u / 8);
    int sA[MT] = {}, sB[MT] = {};
    // the piece's ql words and qh words (word (Q % 16) % 8 of half h: consecutive, since Q0 is a
    // multiple of NQ <= 4) as aligned runs (210-byte blocks are only 2-byte aligned)
    uint32_t wl[NQ], wh[NQ];
    rq_g32n_any<NQ>(blk + 4 * Q0, wl);
    rq_g32n_any<NQ>(blk + 128 + 4 * (8 * h + u % 8), wh);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = wl[q], qh = wh[q];
      rq_idot4<MT>((w & 0x0F0F0F0Fu) | (((qh >> shA) & 0x03030303u) << 4), x.a[q], sA);
      rq_idot4<MT>(((w >> 4) & 0x0F0F0F0Fu) | (((qh >> (shA + 4)) & 0x03030303u) << 4), x.b[q], sB);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = fmaf(x.fa[0][m] * dA, (float)(sA[m] - 32 * x.sum_a(m)), acc[m]);
      acc[m] = fmaf(x.fb[0][m] * dB, (float)(sB[m] - 32 * x.sum_b(m)), v);
    }
  }
};

// Q2_K / Q3_K (qdot_k.h: rq_k23_fields, rq_k23_quad): the two quads of a piece use different
// sub-blocks and x blocks, so everything is per quad.
template <int ID>
struct PieceIntK23 {
  ROCQ_IPIECE_HEAD {
    const K23Fields f = rq_k23_fields<ID>(blk, Q0);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const K23Quad k = rq_k23_quad<ID>(blk, f, Q0 + q);
      int sA[MT] = {}, sB[MT] = {};
      rq_idot4<MT>(k.ca, x.a[q], sA);
      rq_idot4<MT>(k.cb, x.b[q], sB);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        const float v = fmaf(x.fa[q][m], fmaf(k.dA, (float)sA[m], -k.mA * (float)x.sa[q][m]), acc[m]);
        acc[m] = fmaf(x.fb[q][m], fmaf(k.dB, (float)sB[m], -k.mB * (float)x.sb[q][m]), v);
      }
    }
  }
};
template <> struct PieceInt<QT_Q2_K> : PieceIntK23<QT_Q2_K> {};
template <> struct PieceInt<QT_Q3_K> : PieceIntK23<QT_Q3_K> {};

// The 64-element pieces of Q2_K, Q3_K and Q6_K (8 quads: Q0 = 0, 8, 16, 24) take the 16-element
// runs at elem0(Q0) + 32 j, j = 0..3, of their 256-element block.
// sub(..., acc, acc2): adds a sub-block to acc; kSplitSums: to two sums per row instead (acc,
// acc2), which finish() scales and adds once per piece.
struct PieceInt64Runs {
  static constexpr bool kSplitSums = false;
  ROCQ_DEVICE static int elem0(int Q0) { return 128 * (Q0 / 16) + 16 * ((Q0 / 8) % 2); }
};

// Q2_K / Q3_K for the streaming kernel (stream_pieces.h StreamPieceSubs), 64 elements a piece:
// those whose 2-bit codes fill 16 qs bytes (half c, bytes 16 lh .. 16 lh + 15), i.e. fields j =
// 0..3 of those bytes: 4 sub-blocks of 16 elements (8c + 2j + lh), each inside one x block. Codes
// times x are summed per sub-block in integers and the sub-block's scale (and Q2_K's min) applied
// once per 16 elements, where the 2-quad pieces (PieceIntK23) convert and apply two scales and
// mins per 4 (from the SASS of the H200 build, M = 1, per weight and row: Q2_K ~7.3 instructions
// there, ~3.4 here; Q3_K ~10.6, ~4.8). The kernel feeds x one sub-block at a time (16 int16
// values in natural order, their sum, the x block's scale) to every row of the piece.
// Q2_K's codes stay in place in their bytes (field j times 4^j: one mask, no shift, unsigned bytes
// up to 192, |dot| * 15 < 2^31), the 4^-j folds into x's scale; its scale and min sums per row
// go apart (kSplitSums: f * sc * dot and f * X * min), d and dmin applied once per piece (finish).
// Per 16 elements and row that is 4 masks and 5 scale instructions instead of 7 and 7.
template <int ID>
struct PieceIntK23Wide : PieceInt64Runs {
  static constexpr bool kSplitSums = ID == QT_Q2_K;
  struct Row {
    uint32_t w[4], hm[4];  // qs words (fields j = 0..3); Q3_K: hmask words (bit j: load())
    uint32_t sc4;          // Q3_K: the 6-bit scales of sub-blocks j = 0..3, byte j (unsigned: + 32)
    float d, dmin;
  };
  ROCQ_DEVICE static Row load(const uint8_t* blk, int Q0) {
    const int c = Q0 / 16, lh = (Q0 / 8) % 2;
    Row r;
    if constexpr (ID == QT_Q2_K) {  // 84-byte blocks: 4-byte aligned
#pragma unroll
      for (int i = 0; i < 4; ++i) r.w[i] = rq_g32(blk + 16 + 32 * c + 16 * lh + 4 * i);
      const uint32_t dd = rq_g32(blk + 80);
      r.d = rq_f16_to_f32((uint16_t)dd);
      r.dmin = rq_f16_to_f32((uint16_t)(dd >> 16));
    } else {  // 110-byte blocks: 2-byte aligned
      rq_g32n_any<4>(blk + 32 + 32 * c + 16 * lh, r.w);
      rq_g32n_any<4>(blk + 16 * lh, r.hm);
#pragma unroll
      for (int i = 0; i < 4; ++i) r.hm[i] >>= 4 * c;  // the piece's high bits j = 0..3 at bit j of each byte
      // The four sub-blocks' scales (sb = 8c + 2j + lh, Codec<QT_Q3_K>::scale) at once: low
      // nibbles c of bytes lh + 2j, high pairs at bits 4c + 2 (j / 2) of bytes 8 + (lh + 2j) % 4.
      uint32_t sw[3];
      rq_g32n_any<3>(blk + 96, sw);
      const uint32_t lo = (rq_byte_perm(sw[0], sw[1], 0x6420u + 0x1111u * lh) >> (4 * c)) & 0x0F0F0F0Fu;
      const uint32_t hb = rq_byte_perm(sw[2], sw[2], 0x2020u + 0x1111u * lh) >> (4 * c);
      const uint32_t hi = (hb & 0x00000303u) | ((hb >> 2) & 0x03030000u);
      r.sc4 = lo | (hi << 4);
      r.d = rq_gf16(blk + 108);
      r.dmin = 0.f;
    }
    return r;
  }
  // The sub-block j part of the row: xw[m] the sub-block's 16 x values (int16 pairs), X[m] their
  // sum, f[m] the x block's scale. Q3_K adds it to acc; Q2_K adds f * sc * dot to acc and
  // f * X * min to acc2 (finish).
  template <int MT>
  ROCQ_DEVICE static void sub(const uint8_t* blk, int Q0, const Row& r, int j, const uint32_t (&xw)[MT][8],
                              const int (&X)[MT], const float (&f)[MT], float (&acc)[MT], float (&acc2)[MT]) {
    const int c = Q0 / 16, sb = 8 * c + 2 * j + (Q0 / 8) % 2;
    int s[MT] = {};
    if constexpr (ID == QT_Q2_K) {
#pragma unroll
      for (int i = 0; i < 4; ++i) rq_idot4_at<MT, 8, true>(r.w[i] & (0x03030303u << (2 * j)), xw, i, s);
      const int sc = blk[sb] & 15, mn = blk[sb] >> 4;
      const float p = 1.f / (float)(1 << (2 * j));  // the codes' 4^j
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        acc[m] = fmaf(f[m] * p, (float)(sc * s[m]), acc[m]);
        acc2[m] = fmaf(f[m] * (float)X[m], (float)mn, acc2[m]);
      }
    } else {  // x = d * sc * (q - 4), q = low 2 bits | high bit << 2
      // q in place times p = 2^sl: the low field at bit sl of each byte (fields 0..2 where they
      // are, field 3 shifted down to 4), the high bit shifted up beside it; q * p <= 112, so the
      // bytes stay positive int8, and p * sum (q - 4) x is exact in int32 (|.| * 32 < 2^31).
      constexpr int kMaxSl = 4;
      const int sl = j < 3 ? 2 * j : kMaxSl;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t wj = j < 3 ? r.w[i] : r.w[i] >> 2;
        const uint32_t code = (wj & (0x03030303u << sl)) | ((r.hm[i] << (sl + 2 - j)) & (0x04040404u << sl));
        rq_idot4_at<MT>(code, xw, i, s);
      }
      const int sc = (int)((r.sc4 >> (8 * j)) & 0xFFu) - 32;
      const float inv_p = 1.f / (float)(1 << sl);
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[m] = fmaf(f[m] * inv_p * r.d, (float)(sc * (s[m] - (4 << sl) * X[m])), acc[m]);
    }
  }
  // Q2_K: the piece's two sums of a row into acc (x = d * sc * q - dmin * min).
  template <int MT>
  ROCQ_DEVICE static void finish(const Row& r, const float (&a)[MT], const float (&a2)[MT], float (&acc)[MT]) {
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(r.d, a[m], fmaf(-r.dmin, a2[m], acc[m]));
  }
};

// Q6_K for the streaming kernel (stream_pieces.h StreamPieceSubs), 64 elements a piece: half h,
// bytes 16 lh .. 16 lh + 15 of each 32-byte ql run and of the half's qh run, i.e. sub-blocks
// 8h + 2r + lh (r = 0..3: ql run r % 2, nibble r / 2, qh bits 2r), each inside x block 4h + r.
// Codes times x summed per 16-element sub-block in integers, the int8 scale applied once per 16
// (PieceInt<QT_Q6_K>: 4-quad pieces, scales per 16 but x read 4 elements at a time and every
// piece's words re-aligned). Used like PieceIntK23Wide (load once per row, sub() per sub-block).
struct PieceIntQ6Wide : PieceInt64Runs {
  struct Row {
    uint32_t ql[8], qh[4];  // ql runs 0, 1 (4 words each), qh
    float d;
  };
  ROCQ_DEVICE static Row load(const uint8_t* blk, int Q0) {  // 210-byte blocks: 2-byte aligned
    const int h = Q0 / 16, lh = (Q0 / 8) % 2;
    Row w;
    uint32_t t[4];
#pragma unroll
    for (int run = 0; run < 2; ++run) {
      rq_g32n_any<4>(blk + 64 * h + 32 * run + 16 * lh, t);
#pragma unroll
      for (int i = 0; i < 4; ++i) w.ql[4 * run + i] = t[i];
    }
    rq_g32n_any<4>(blk + 128 + 32 * h + 16 * lh, w.qh);
    w.d = rq_gf16(blk + 208);
    return w;
  }
  template <int MT>
  ROCQ_DEVICE static void sub(const uint8_t* blk, int Q0, const Row& w, int r, const uint32_t (&xw)[MT][8],
                              const int (&X)[MT], const float (&f)[MT], float (&acc)[MT], float (&)[MT]) {
    const int sb = 8 * (Q0 / 16) + 2 * r + (Q0 / 8) % 2;
    int s[MT] = {};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t code = ((w.ql[4 * (r % 2) + i] >> (4 * (r / 2))) & 0x0F0F0F0Fu) | (((w.qh[i] >> (2 * r)) & 0x03030303u) << 4);
      rq_idot4_at<MT>(code, xw, i, s);
    }
    const float dl = rq_mul(w.d, (float)(int8_t)blk[192 + sb]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(f[m] * dl, (float)(s[m] - 32 * X[m]), acc[m]);  // |.| < 2^24: exact
  }
};

// Q4_K / Q5_K for the streaming kernel (stream_pieces.h StreamPieceK45), 64 elements a piece:
// group g = Q0 / 8 (32 qs bytes), sub-blocks 2g (low nibbles, run A) and 2g + 1 (high nibbles),
// each one x block. Codes times x summed per sub-block in integers, scale and min applied once
// per 32 elements; the scale pair unpacked once per 64 (PieceIntK45: per 32, and each piece's x
// read 4 elements at a time). The kernel passes both sub-blocks' x (16 int16 pairs each, in
// element order), their sums and scales.
template <bool Q5>
struct PieceIntK45Wide {
  template <int MT>
  ROCQ_DEVICE static void dot(const uint8_t* blk, int g, const uint32_t (&xa)[MT][16], const uint32_t (&xb)[MT][16],
                              const int (&XA)[MT], const int (&XB)[MT], const float (&fa)[MT], const float (&fb)[MT],
                              float (&acc)[MT]) {
    constexpr int kQs = Q5 ? 48 : 16;
    // 144- and 176-byte blocks in 16-byte aligned stage rows: 16-byte aligned
    const uint4 h = *reinterpret_cast<const uint4*>(blk);  // d, dmin, scales 0..11
    const uint32_t dm = h.x;
    uint32_t scp, mnp;
    rq_k4_pair(h.y, h.z, h.w, g, scp, mnp);
    int sA[MT] = {}, sB[MT] = {};
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const uint4 v = *reinterpret_cast<const uint4*>(blk + kQs + 32 * g + 16 * hh);
      const uint32_t w4[4] = {v.x, v.y, v.z, v.w};
      uint32_t q4[4] = {0u, 0u, 0u, 0u};
      if constexpr (Q5) {
        const uint4 qv = *reinterpret_cast<const uint4*>(blk + 16 + 16 * hh);
        q4[0] = qv.x; q4[1] = qv.y; q4[2] = qv.z; q4[3] = qv.w;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int wi = 4 * hh + i;  // word: elements 4 wi .. 4 wi + 3 of each sub-block
        uint32_t ca = w4[i] & 0x0F0F0F0Fu, cb = (w4[i] >> 4) & 0x0F0F0F0Fu;
        if constexpr (Q5) {
          ca |= ((q4[i] >> (2 * g)) & 0x01010101u) << 4;
          cb |= ((q4[i] >> (2 * g + 1)) & 0x01010101u) << 4;
        }
        rq_idot4_at<MT>(ca, xa, wi, sA);
        rq_idot4_at<MT>(cb, xb, wi, sB);
      }
    }
    const float d = rq_f16_to_f32((uint16_t)dm), dmin = rq_f16_to_f32((uint16_t)(dm >> 16));
    const int scA = (int)(scp & 0xFFu), scB = (int)(scp >> 8), mnA = (int)(mnp & 0xFFu), mnB = (int)(mnp >> 8);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = fmaf(fa[m], fmaf(d, (float)(scA * sA[m]), -dmin * (float)(mnA * XA[m])), acc[m]);
      acc[m] = fmaf(fb[m], fmaf(d, (float)(scB * sB[m]), -dmin * (float)(mnB * XB[m])), v);
    }
  }
};

// Table formats: each 4-bit code selects one of 16 int8 levels (IQ4_NL's, or E2M1 doubled:
// formats.h), so the products with the fixed-point x stay exact integers. The table lives in 4
// registers (constants) and is read with byte permutes: per 4 codes, two permutes pick the
// level among codes 0..7 and 8..15 by the code's low 3 bits and a third picks by bit 3. (A
// shared-memory float table costs a load and an FMA per weight: the fp32 pieces.)
// (rq_lut16_word, rq_lut16_i8x4, rq_lut16_runs: qcommon.h, shared with decode32.h.)
// What a piece of quads Q0.. of a table format's block needs: the block scale (sc: the plane
// formats' E8M0 byte) and the NQ code words from quad Q0: IQ4_NL (18-byte blocks: f16 d, 16 code
// bytes) and MXFP4 (17: E8M0, ggml's half scale) at any alignment, IQ4_XS (136-byte blocks,
// 32-element sub-blocks) and OCP MXFP4 (16 code bytes a unit, the table E2M1 doubled) aligned.
// kQ40: Q4_0 nibble order (low nibbles: elements 0..15); OCP's nibbles are in element order.
template <int ID>
struct Lut16Block {
  static constexpr bool kQ40 = ID != QT_OCP_MXFP4;
  ROCQ_DEVICE static float scale(const uint8_t* blk, int Q0, uint8_t sc) {
    if constexpr (ID == QT_IQ4_NL) return rq_gf16(blk);
    else if constexpr (ID == QT_MXFP4) return rq_e8m0_half(blk[0]);
    else if constexpr (ID == QT_IQ4_XS) return Piece<QT_IQ4_XS>::scale(blk, Q0 / 4);
    else return rq_e8m0(sc) * 0.5f;
  }
  template <int NQ>
  ROCQ_DEVICE static void words(const uint8_t* blk, int Q0, uint32_t (&ws)[NQ]) {
    constexpr int kCodes = ID == QT_IQ4_NL ? 2 : ID == QT_MXFP4 ? 1 : ID == QT_IQ4_XS ? 8 : 0;
    if constexpr (ID == QT_IQ4_XS || ID == QT_OCP_MXFP4) {
#pragma unroll
      for (int q = 0; q < NQ; ++q) ws[q] = rq_g32(blk + kCodes + 4 * (Q0 + q));
    } else {
      rq_g32n_any<NQ>(blk + kCodes + 4 * Q0, ws);
    }
  }
};
template <int ID>
struct PieceIntLut16 {
  ROCQ_IPIECE_HEAD {
    using B = Lut16Block<ID>;
    int s[MT] = {};
    const float d = B::scale(blk, Q0, sc);
    uint32_t ws[NQ];
    B::template words<NQ>(blk, Q0, ws);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      uint32_t ra, rb;
      rq_lut16_runs<ID, B::kQ40>(ws[q], ra, rb);
      rq_idot4<MT>(ra, x.a[q], s);
      rq_idot4<MT>(rb, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)s[m], acc[m]);
  }
};
template <> struct PieceInt<QT_IQ4_NL> : PieceIntLut16<QT_IQ4_NL> {};
template <> struct PieceInt<QT_IQ4_XS> : PieceIntLut16<QT_IQ4_XS> {};
template <> struct PieceInt<QT_MXFP4> : PieceIntLut16<QT_MXFP4> {};
template <> struct PieceInt<QT_OCP_MXFP4> : PieceIntLut16<QT_OCP_MXFP4> {};

// The same table formats for the streaming kernel (stream_pieces.h), which lays x out for them:
// each half of the table (codes 0..7, codes 8..15) holds levels of one sign, so the levels split
// into two magnitude tables of 8 bytes, read with one permute per 4 codes each; a code of the
// other half selects with its selector's bit 3 set, which replicates the sign bit of a magnitude
// byte: 0. The two halves' dot products are kept apart and subtracted at the end. Per 8 codes:
// 4 permutes, 1 XOR, 2 shifts (rq_lut16_runs: 8 permutes and ~6 mask operations) and 8 DP2A
// instead of 4: the integer-ALU pipe (permutes, masks, shifts) was the limit (ncu on the H200,
// MXFP4 M = 1: 55% of the instructions there, 21% of warp stalls waiting on it), the DP2A run on
// the multiply-add pipe. The four level bytes a word's low half selects are those of its nibbles
// 0..3 in order; for Q4_0 nibble order that is elements (4q, 16 + 4q, 4q + 1, 17 + 4q), so the
// kernel stores each 32-element x block as the pairs (x[j], x[16 + j]) (kPairX: run A of quad q
// is x positions 8q .. 8q + 3 of the block, run B the next 4); OCP MXFP4's nibbles are in element
// order, x as is (the same positions).
template <int ID>
struct Lut16Split {
  static constexpr int level(int c) { return rq_lut16_level<ID>(c); }
  // the sign the nonzero levels of half h share
  static constexpr int sign(int h) { return level(8 * h + 7) < 0 ? -1 : 1; }
  static constexpr uint32_t mags(int h, int j) {  // magnitudes of codes 8h + 4j .. + 3, a byte each
    uint32_t w = 0;
    for (int b = 0; b < 4; ++b) {
      const int v = level(8 * h + 4 * j + b);
      w |= (uint32_t)(v < 0 ? -v : v) << (8 * b);
    }
    return w;
  }
  static constexpr bool valid() {
    for (int c = 0; c < 16; ++c) {
      const int v = level(c);
      if (v * sign(c / 8) < 0 || v > 127 || v < -127) return false;
    }
    return true;
  }
  static_assert(valid(), "each table half must hold levels of one sign, magnitudes below 128");
};

template <int ID>
struct PieceIntLut16Split {
  static constexpr bool kPairX = Lut16Block<ID>::kQ40;
  // The magnitude bytes of codes 0..3 and of codes 8..11 (the permutes' first operands; codes
  // 4..7 and 12..15 are immediates): the kernel passes them in registers loaded from shared
  // memory, tab[j] = tab_word(j). (As constants, ptxas copies one into a register before every
  // permute: 1 extra instruction per 4 codes.)
  static constexpr bool kTab = true;
  ROCQ_HD static constexpr uint32_t tab_word(int j) { return Lut16Split<ID>::mags(j, 0); }
  // (the kernel's call: NQ given, MT deduced)
  template <int NQ, int MT>
  ROCQ_DEVICE static void dot(const uint32_t (&tab)[2], const uint8_t* blk, int Q0, uint8_t sc,
                              const XIPiece<MT, NQ>& x, float (&acc)[MT]) {
    using L = Lut16Split<ID>;
    int s0[MT] = {}, s1[MT] = {};
    const float d = Lut16Block<ID>::scale(blk, Q0, sc);
    uint32_t ws[NQ];
    Lut16Block<ID>::template words<NQ>(blk, Q0, ws);
    const uint32_t t0 = tab[0], t1 = tab[1];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = ws[q], wn = w ^ 0x88888888u;
      rq_idot4<MT>(rq_prmt_sx(t0, L::mags(0, 1), w), x.a[q], s0);
      rq_idot4<MT>(rq_prmt_sx(t0, L::mags(0, 1), w >> 16), x.b[q], s0);
      rq_idot4<MT>(rq_prmt_sx(t1, L::mags(1, 1), wn), x.a[q], s1);
      rq_idot4<MT>(rq_prmt_sx(t1, L::mags(1, 1), wn >> 16), x.b[q], s1);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)(L::sign(0) * s0[m] + L::sign(1) * s1[m]), acc[m]);
  }
};

#undef ROCQ_IPIECE_HEAD

}  // namespace rocq::gpu
