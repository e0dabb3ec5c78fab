// Per-format dot products for the register-blocked decode kernel (qmatvec): a thread owns a
// "piece" of a block and keeps the matching x in registers across several weight rows.
// Float pieces here (K-quants in qdot_k.h), integer pieces for 16-bit x in qdot_int.h.
#pragma once

#include "qcommon.h"

namespace rocq::gpu {

constexpr float kMagic = 8388608.0f;  // 2^23: the float 2^23 + u has u in its low mantissa bits

// (b3 b2 b1 b0) -> one bit per byte (bit 0 of byte i = b_i).
ROCQ_DEVICE uint32_t rq_spread4(uint32_t b4) { return (b4 * 0x00204081u) & 0x01010101u; }

ROCQ_DEVICE float rq_lo_half(uint32_t w) { return rq_f16_to_f32((uint16_t)(w & 0xFFFFu)); }
ROCQ_DEVICE float rq_hi_half(uint32_t w) { return rq_f16_to_f32((uint16_t)(w >> 16)); }

// =============================================================================================
// Pieces: the per-format dot products of the register-blocked decode kernel (qmv_piece_kernel
// in qmatvec_impl.h). A thread owns a "piece" of NQ quads of one block (unit); a quad is 8
// elements that sit in two runs of 4 consecutive k positions (run A at block offset xa(Q), run
// B at xb(Q), both multiples of 4). The kernel loads x for those positions once into
// registers (XPiece, with the run sums) and calls dot() for several weight rows, so each x
// value is reused from registers; dot() loads its few weight bytes straight from global
// memory (small aligned loads, no shared-memory staging).
//
// Integer codes become floats without conversions: a byte 0x80|c (c < 128) permuted under
// 0x3F.. gives the float 1 + c/128 (one byte permute), so sum_j (1 + c_j/128) x_j = X + sum c x
// /128 with X = sum_j x_j, known per run: sum c x = 128 (s - X). With c = q * 2^(7-b) for b-bit
// q, the fp32 cancellation loses at most b+1 bits of the per-piece sum (relative error ~2^-17
// at b = 6, far below the fp32 tolerance). 8-bit codes use the exact "2^23 + u" float and one
// subtraction instead. Table formats read a 16-entry float table from shared memory.
// =============================================================================================

// The sums of x over each quad's run A (sa) and run B (sb), per row of x; S = float for the
// fp32 pieces, int for the integer ones (qdot_int.h).
template <class S, int MT, int NQ>
struct XRunSums {
  S sa[NQ][MT], sb[NQ][MT];
  ROCQ_DEVICE S sum_a(int m) const {
    S v = 0;
#pragma unroll
    for (int q = 0; q < NQ; ++q) v += sa[q][m];
    return v;
  }
  ROCQ_DEVICE S sum_b(int m) const {
    S v = 0;
#pragma unroll
    for (int q = 0; q < NQ; ++q) v += sb[q][m];
    return v;
  }
  ROCQ_DEVICE S sum(int m) const { return sum_a(m) + sum_b(m); }
};

template <int MT, int NQ>
struct XPiece : XRunSums<float, MT, NQ> {
  float a[NQ][MT][4], b[NQ][MT][4];
};

ROCQ_DEVICE float rq_gf16(const uint8_t* p) { return rq_f16_to_f32((uint16_t)rq_g16(p)); }

// Nibble codes of a Q4_0-order word (low nibbles = run A, high = run B) as 0x80 | 8q bytes.
ROCQ_DEVICE uint32_t rq_code_lo4(uint32_t w) { return ((w << 3) & 0x78787878u) | 0x80808080u; }
ROCQ_DEVICE uint32_t rq_code_hi4(uint32_t w) { return ((w >> 1) & 0x78787878u) | 0x80808080u; }

// s[m] += sum_j (1 + c_j/128) * x[m][j] for the 4 code bytes 0x80 | c_j of `code`.
template <int MT>
ROCQ_DEVICE void rq_cdot4(uint32_t code, const float (&x)[MT][4], float (&s)[MT]) {
  float f[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = rq_bits_to_float(rq_byte_perm(code, 0x3F000000u, 0x7044u | ((uint32_t)j << 8)));
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[m] = fmaf(f[j], x[m][j], s[m]);
}

// s[m] += sum_j (u_j - off + 2^23) * x[m][j] for the 4 bytes u_j of u4 (exact small integers).
template <int MT>
ROCQ_DEVICE void rq_mdot4(uint32_t u4, float off, const float (&x)[MT][4], float (&s)[MT]) {
  float f[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = rq_bits_to_float(rq_byte_perm(u4, 0x4B000000u, 0x7440u | (uint32_t)j)) - off;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[m] = fmaf(f[j], x[m][j], s[m]);
}

// s[m] += sum_j lut[code at bit sh0 + step*j of w (MASK: 4- or 6-bit codes)] * x[m][j].
template <int MT, int SH0, int STEP, uint32_t MASK = 15u>
ROCQ_DEVICE void rq_ldot4(uint32_t w, const float* lut, const float (&x)[MT][4], float (&s)[MT]) {
  float f[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = lut[(w >> (SH0 + STEP * j)) & MASK];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[m] = fmaf(f[j], x[m][j], s[m]);
}

// s[m] += sum_j f[j] * x[m][j] for 4 ready floats.
template <int MT>
ROCQ_DEVICE void rq_fdot4(const float (&f)[4], const float (&x)[MT][4], float (&s)[MT]) {
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[m] = fmaf(f[j], x[m][j], s[m]);
}

template <int ID>
struct Piece {
  static constexpr bool kOn = false;
};

// kQuads: quads per unit; kMaxNQ: quads a thread may take at once (sharing scales); table
// formats (kLut) read kLutSize floats table(0..kLutSize-1) from shared memory (at most 64).
#define ROCQ_PIECE_HEAD(LUT, QUADS, MAXNQ) ROCQ_PIECE_HEAD_L(LUT, 16, QUADS, MAXNQ)
#define ROCQ_PIECE_HEAD_L(LUT, LUTSIZE, QUADS, MAXNQ)                                               \
  static constexpr bool kOn = true;                                                                 \
  static constexpr bool kLut = LUT;                                                                 \
  static constexpr int kLutSize = LUTSIZE;                                                          \
  static constexpr int kQuads = QUADS, kMaxNQ = MAXNQ;                                              \
  template <int MT, int NQ>                                                                         \
  ROCQ_DEVICE static void dot(const uint8_t* blk, int Q0, uint8_t sc, const XPiece<MT, NQ>& x,      \
                              const float* lut, float (&acc)[MT])
#define ROCQ_PZERO(a) \
  _Pragma("unroll") for (int m_ = 0; m_ < MT; ++m_) a[m_] = 0.f

// 32-element blocks in Q4_0 nibble order: quad Q = qs bytes 4Q..4Q+3, A = elements 4Q..,
// B = 16 + 4Q.. .
struct PieceQ40Order {
  ROCQ_DEVICE static int xa(int Q) { return 4 * Q; }
  ROCQ_DEVICE static int xb(int Q) { return 16 + 4 * Q; }
};

template <>
struct Piece<QT_Q4_0> : PieceQ40Order {
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)sc; (void)lut;
    const float d = rq_gf16(blk);
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = rq_g32_any(blk + 2 + 4 * (Q0 + q));
      rq_cdot4<MT>(rq_code_lo4(w), x.a[q], s);
      rq_cdot4<MT>(rq_code_hi4(w), x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, fmaf(16.f, s[m], -24.f * x.sum(m)), acc[m]);
  }
};

template <>
struct Piece<QT_Q4_1> : PieceQ40Order {
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)sc; (void)lut;
    const uint32_t dm = rq_g32(blk);
    const float d = rq_f16_to_f32((uint16_t)dm), mn = rq_f16_to_f32((uint16_t)(dm >> 16));
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = rq_g32(blk + 4 + 4 * (Q0 + q));
      rq_cdot4<MT>(rq_code_lo4(w), x.a[q], s);
      rq_cdot4<MT>(rq_code_hi4(w), x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float X = x.sum(m);
      acc[m] = fmaf(d, 16.f * (s[m] - X), fmaf(mn, X, acc[m]));
    }
  }
};

// 5-bit codes (nibble | high bit << 4) as 0x80 | 4q bytes.
ROCQ_DEVICE uint32_t rq_code5(uint32_t nib_shifted_x4, uint32_t hbits) {
  return (nib_shifted_x4 & 0x3C3C3C3Cu) | (hbits << 6) | 0x80808080u;
}

template <>
struct Piece<QT_Q5_0> : PieceQ40Order {
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)sc; (void)lut;
    const float d = rq_gf16(blk);
    const uint32_t qh = rq_g32_any(blk + 2);
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int Q = Q0 + q;
      const uint32_t w = rq_g32_any(blk + 6 + 4 * Q);
      rq_cdot4<MT>(rq_code5(w << 2, rq_spread4((qh >> (4 * Q)) & 15u)), x.a[q], s);
      rq_cdot4<MT>(rq_code5(w >> 2, rq_spread4((qh >> (16 + 4 * Q)) & 15u)), x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, fmaf(32.f, s[m], -48.f * x.sum(m)), acc[m]);
  }
};

template <>
struct Piece<QT_Q5_1> : PieceQ40Order {
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)sc; (void)lut;
    const uint32_t dm = rq_g32(blk);
    const float d = rq_f16_to_f32((uint16_t)dm), mn = rq_f16_to_f32((uint16_t)(dm >> 16));
    const uint32_t qh = rq_g32(blk + 4);
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int Q = Q0 + q;
      const uint32_t w = rq_g32(blk + 8 + 4 * Q);
      rq_cdot4<MT>(rq_code5(w << 2, rq_spread4((qh >> (4 * Q)) & 15u)), x.a[q], s);
      rq_cdot4<MT>(rq_code5(w >> 2, rq_spread4((qh >> (16 + 4 * Q)) & 15u)), x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float X = x.sum(m);
      acc[m] = fmaf(d, 32.f * (s[m] - X), fmaf(mn, X, acc[m]));
    }
  }
};

// Q8_0: quad Q = bytes 8Q..8Q+7 (A = first 4, B = next 4).
template <>
struct Piece<QT_Q8_0> {
  ROCQ_DEVICE static int xa(int Q) { return 8 * Q; }
  ROCQ_DEVICE static int xb(int Q) { return 8 * Q + 4; }
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)sc; (void)lut;
    const float d = rq_gf16(blk);
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int Q = Q0 + q;
      const uint32_t wa = rq_g32_any(blk + 2 + 8 * Q), wb = rq_g32_any(blk + 6 + 8 * Q);
      rq_mdot4<MT>(wa ^ 0x80808080u, kMagic + 128.f, x.a[q], s);
      rq_mdot4<MT>(wb ^ 0x80808080u, kMagic + 128.f, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

}  // namespace rocq::gpu
#include "qdot_k.h"  // the K-quant pieces (Q2_K .. Q6_K)
namespace rocq::gpu {

// Table formats with Q4_0 nibble order (IQ4_NL, MXFP4): s = sum table[q] x, times the scale.
template <int MT, int NQ>
ROCQ_DEVICE void rq_lut_q40(const uint8_t* qs_q0, const float* lut, const XPiece<MT, NQ>& x, float (&s)[MT]) {
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    const uint32_t w = rq_g32_any(qs_q0 + 4 * q);
    rq_ldot4<MT, 0, 8>(w, lut, x.a[q], s);
    rq_ldot4<MT, 4, 8>(w, lut, x.b[q], s);
  }
}

template <>
struct Piece<QT_IQ4_NL> : PieceQ40Order {
  ROCQ_PIECE_HEAD(true, 4, 2) {
    (void)sc;
    const float d = rq_gf16(blk);
    float s[MT];
    ROCQ_PZERO(s);
    rq_lut_q40<MT, NQ>(blk + 2 + 4 * Q0, lut, x, s);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
  ROCQ_HD static float table(int i) { return (float)rq_iq4nl_value(i); }
};

template <>
struct Piece<QT_MXFP4> : PieceQ40Order {
  ROCQ_PIECE_HEAD(true, 4, 2) {
    (void)sc;
    const float d = rq_e8m0_half(blk[0]);
    float s[MT];
    ROCQ_PZERO(s);
    rq_lut_q40<MT, NQ>(blk + 1 + 4 * Q0, lut, x, s);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
  ROCQ_HD static float table(int i) { return (float)rq_e2m1x2_value(i); }
};

// IQ4_XS: quad Q: sub-block Q/4 (32 elements, Q4_0 nibble order), qs bytes 4Q.. at 8.
template <>
struct Piece<QT_IQ4_XS> {
  ROCQ_DEVICE static int xa(int Q) { return 32 * (Q / 4) + 4 * (Q % 4); }
  ROCQ_DEVICE static int xb(int Q) { return 32 * (Q / 4) + 16 + 4 * (Q % 4); }
  ROCQ_PIECE_HEAD(true, 32, 2) {
    (void)sc;
    const float dl = scale(blk, Q0 / 4);
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = rq_g32(blk + 8 + 4 * (Q0 + q));
      rq_ldot4<MT, 0, 8>(w, lut, x.a[q], s);
      rq_ldot4<MT, 4, 8>(w, lut, x.b[q], s);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(dl, s[m], acc[m]);
  }
  ROCQ_HD static float table(int i) { return (float)rq_iq4nl_value(i); }
  // scale of sub-block sb (0..7): d * (6-bit sub-scale - 32), as the codec computes it
  ROCQ_DEVICE static float scale(const uint8_t* blk, int sb) {
    const uint32_t w0 = rq_g32(blk);
    return rq_mul(rq_f16_to_f32((uint16_t)w0), (float)rq_iq4xs_subscale(w0, rq_g32(blk + 4), sb));
  }
};

// Planar OCP MX formats: 32-element blocks, element j of the block in order; quad Q = elements
// 8Q..8Q+7. The E8M0 scale byte comes from the scale plane (sc).
struct PieceMxOrder {
  ROCQ_DEVICE static int xa(int Q) { return 8 * Q; }
  ROCQ_DEVICE static int xb(int Q) { return 8 * Q + 4; }
};

template <>
struct Piece<QT_OCP_MXFP4> : PieceMxOrder {
  ROCQ_PIECE_HEAD(true, 4, 2) {
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = rq_g32(blk + 4 * (Q0 + q));
      rq_ldot4<MT, 0, 4>(w, lut, x.a[q], s);
      rq_ldot4<MT, 16, 4>(w, lut, x.b[q], s);
    }
    const float d = rq_e8m0(sc);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
  ROCQ_HD static float table(int i) { return rq_fp4_e2m1((uint32_t)i); }
};

// Two FP8 E5M2 codes (bytes 0, 1 of v; HI: bytes 2, 3) -> IEEE half bits (low half, high half):
// E5M2 is the top byte of a half (exact, inf/NaN kept). One permute either way.
template <bool HI = false>
ROCQ_DEVICE uint32_t rq_e5m2x2_to_f16x2(uint32_t v) { return rq_byte_perm(v, 0u, HI ? 0x3424u : 0x1404u); }

// 4 FP8 E4M3 codes -> floats (exact, NaN kept).
ROCQ_DEVICE void rq_e4m3x4(uint32_t w, float (&f)[4]) {
#if defined(ROCQ_HAS_E4M3X2_CVT)
  const uint32_t lo = rq_e4m3x2_to_f16x2(w & 0xFFFFu), hi = rq_e4m3x2_to_f16x2(w >> 16);
  f[0] = rq_lo_half(lo); f[1] = rq_hi_half(lo); f[2] = rq_lo_half(hi); f[3] = rq_hi_half(hi);
#else
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = rq_fp8_e4m3(w >> (8 * j));
#endif
}

template <>
struct Piece<QT_OCP_MXFP8_E4M3> : PieceMxOrder {
  ROCQ_PIECE_HEAD(false, 4, 1) {
    (void)lut;
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * (Q0 + q));
      float fa[4], fb[4];
      rq_e4m3x4(v.x, fa);
      rq_e4m3x4(v.y, fb);
      rq_fdot4<MT>(fa, x.a[q], s);
      rq_fdot4<MT>(fb, x.b[q], s);
    }
    const float d = rq_e8m0(sc);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

// E5M2 is the top byte of an IEEE half: exact, inf/NaN kept.
template <>
struct Piece<QT_OCP_MXFP8_E5M2> : PieceMxOrder {
  ROCQ_PIECE_HEAD(false, 4, 1) {
    (void)lut;
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * (Q0 + q));
      float fa[4], fb[4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const uint32_t ha = j ? rq_e5m2x2_to_f16x2<true>(v.x) : rq_e5m2x2_to_f16x2(v.x);
        const uint32_t hb = j ? rq_e5m2x2_to_f16x2<true>(v.y) : rq_e5m2x2_to_f16x2(v.y);
        fa[2 * j] = rq_lo_half(ha); fa[2 * j + 1] = rq_hi_half(ha);
        fb[2 * j] = rq_lo_half(hb); fb[2 * j + 1] = rq_hi_half(hb);
      }
      rq_fdot4<MT>(fa, x.a[q], s);
      rq_fdot4<MT>(fb, x.b[q], s);
    }
    const float d = rq_e8m0(sc);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

template <>
struct Piece<QT_OCP_MXINT8> : PieceMxOrder {
  ROCQ_PIECE_HEAD(false, 4, 1) {
    (void)lut;
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * (Q0 + q));
      rq_mdot4<MT>(v.x ^ 0x80808080u, kMagic + 128.f, x.a[q], s);
      rq_mdot4<MT>(v.y ^ 0x80808080u, kMagic + 128.f, x.b[q], s);
    }
    const float d = rq_mul(rq_e8m0(sc), 0.015625f);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

// Dense formats: a unit is 8 elements (one quad: A = 0..3, B = 4..7).
// OCP FP6 (E2M3, E3M2): quad Q = bytes 6Q..6Q+5, two little-endian 24-bit groups of four
// 6-bit codes (run A = elements 8Q.., run B = 8Q + 4..), each decoded in registers
// (Codec::elem: on the device a few integer ops and one exact multiply, formats_mx.h); run B's
// word is read from byte 6Q + 2 so that no load passes the unit's last byte. (A 64-entry
// shared-memory table cost one load per element with bank conflicts between the lanes' random
// codes: ocp_mxfp6_e2m3 ran at 41% of the copy bandwidth at M = 1 on the H200.)
template <int ID>
struct PieceFp6 : PieceMxOrder {
  ROCQ_PIECE_HEAD(false, 4, 2) {
    (void)lut;
    float s[MT];
    ROCQ_PZERO(s);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint8_t* p = blk + 6 * (Q0 + q);
      const uint32_t wa = rq_g32_any(p), wb = rq_g32_any(p + 2) >> 8;
      float fa[4], fb[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        fa[j] = Codec<ID>::elem(wa >> (6 * j));
        fb[j] = Codec<ID>::elem(wb >> (6 * j));
      }
      rq_fdot4<MT>(fa, x.a[q], s);
      rq_fdot4<MT>(fb, x.b[q], s);
    }
    const float d = rq_e8m0(sc);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};
template <> struct Piece<QT_OCP_MXFP6_E2M3> : PieceFp6<QT_OCP_MXFP6_E2M3> {};
template <> struct Piece<QT_OCP_MXFP6_E3M2> : PieceFp6<QT_OCP_MXFP6_E3M2> {};

template <int FID>
struct PieceDense {
  ROCQ_DEVICE static int xa(int) { return 0; }
  ROCQ_DEVICE static int xb(int) { return 4; }
  ROCQ_PIECE_HEAD(false, 1, 1) {
    (void)sc; (void)lut; (void)Q0;
    float fa[4], fb[4];
    if constexpr (FID == QT_F32) {
      const float4 a = reinterpret_cast<const float4*>(blk)[0], b = reinterpret_cast<const float4*>(blk)[1];
      fa[0] = a.x; fa[1] = a.y; fa[2] = a.z; fa[3] = a.w;
      fb[0] = b.x; fb[1] = b.y; fb[2] = b.z; fb[3] = b.w;
    } else {
      constexpr int W = FID == QT_F16 ? (int)DType::F16 : (int)DType::BF16;
      const uint4 v = *reinterpret_cast<const uint4*>(blk);
      rq_unpack2<W>(v.x, fa[0], fa[1]);
      rq_unpack2<W>(v.y, fa[2], fa[3]);
      rq_unpack2<W>(v.z, fb[0], fb[1]);
      rq_unpack2<W>(v.w, fb[2], fb[3]);
    }
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      rq_fdot4<MT>(fa, x.a[q], acc);
      rq_fdot4<MT>(fb, x.b[q], acc);
    }
  }
};
template <> struct Piece<QT_F32> : PieceDense<QT_F32> {};
template <> struct Piece<QT_F16> : PieceDense<QT_F16> {};
template <> struct Piece<QT_BF16> : PieceDense<QT_BF16> {};

#undef ROCQ_PIECE_HEAD
#undef ROCQ_PIECE_HEAD_L
#undef ROCQ_PZERO

}  // namespace rocq::gpu
