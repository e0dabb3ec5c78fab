// Integer pieces: the register-blocked decode kernel's dot products for 16-bit activations
// (fp16/bf16 x), computed with integer dot products (rq_dot2_16x8: one DP2A per two weights on
// NVIDIA) instead of one float conversion plus one FMA per weight. Formats: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, OCP MXINT8, and the 16-level table formats IQ4_NL,
// IQ4_XS, MXFP4 and OCP MXFP4 (levels looked up in registers, rq_lut16_i8x4). FP6 and FP8 keep
// the fp32 pieces (and the streaming kernel's float pieces, kStreamFloat). The streaming kernel's
// own wider integer pieces build on these: qdot_int_stream.h.
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
  static constexpr int kCodes = ID == QT_IQ4_NL ? 2 : ID == QT_MXFP4 ? 1 : ID == QT_IQ4_XS ? 8 : 0;  // code bytes' offset
  template <int NQ>
  ROCQ_DEVICE static void words(const uint8_t* blk, int Q0, uint32_t (&ws)[NQ]) {
    if constexpr (ID == QT_IQ4_XS || ID == QT_OCP_MXFP4) {
#pragma unroll
      for (int q = 0; q < NQ; ++q) ws[q] = rq_g32(blk + kCodes + 4 * (Q0 + q));
    } else {
      rq_g32n_any<NQ>(blk + kCodes + 4 * Q0, ws);
    }
  }
  // The same where the caller knows blk's offset past a 4-byte boundary, lo (the streaming
  // kernel: one per thread; rq_g32n_sh, whose extra word may lie up to 4 bytes past the block:
  // past a stage's last row, in the next stage or the x rows that follow the stages).
  template <int NQ>
  ROCQ_DEVICE static void words_at(const uint8_t* blk, int lo, int Q0, uint32_t (&ws)[NQ]) {
    if constexpr (ID == QT_IQ4_XS || ID == QT_OCP_MXFP4) {
      words<NQ>(blk, Q0, ws);
    } else {
      const int plo = (lo + kCodes) & 3;
      rq_g32n_sh<NQ>(reinterpret_cast<const uint32_t*>(blk + kCodes + 4 * Q0 - plo), 8u * (uint32_t)plo, ws);
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

#undef ROCQ_IPIECE_HEAD

}  // namespace rocq::gpu
