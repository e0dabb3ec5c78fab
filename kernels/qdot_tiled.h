// Per-format dot products of one unit (block) of a quantized weight row with the matching
// elements of up to MT rows of x, for the shared-memory-tiled decode kernel (qmatvec_impl.h's
// older path, still used by Q2_K, Q3_K and the FP6 formats). The register-blocked kernel's
// pieces are in qdot.h, which includes this file.
//
// The block's bytes arrive as a local array of 32-bit words (indexed only with constants, so
// they live in registers). The generic version calls the formats.h codec (decode8); formats
// listed below have a faster version that computes the same products with the scales
// factored out: the small integer q of each element becomes an exact float through the
// "magic number" 2^23 + q (one byte permute and one add instead of an int->float
// conversion), sub-block sums of q*x are scaled once per sub-block (and minus min*sum(x)
// for formats with a min). These results are not bit-identical to decode-then-multiply
// (sums are ordered differently) but are exact up to fp32 accumulation rounding.
// Formats with a value table (IQ4_NL, IQ4_XS, MXFP4) read it from a 16-entry float table in
// shared memory.
#pragma once

#include "qcommon.h"

namespace rocq::gpu {

constexpr float kMagic = 8388608.0f;  // 2^23

// Byte b of q4 (< 256) minus `off - 2^23`, exactly, as a float.
ROCQ_DEVICE float rq_u8f(uint32_t q4, int b, float off) {
  return rq_bits_to_float(0x4B000000u | ((q4 >> (8 * b)) & 0xFFu)) - off;
}

// s[m] += sum_b f_b * x[m][e+b] (and sx[m] += sum_b x[m][e+b] when SX).
template <int MT, bool SX, class XL>
ROCQ_DEVICE void rq_acc4(const float (&f)[4], const XL& xl, int64_t e, float (&s)[MT], float (&sx)[MT]) {
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    float xv[4];
    xl.load4(m, e, xv);
    s[m] = fmaf(f[0], xv[0], s[m]);
    s[m] = fmaf(f[1], xv[1], s[m]);
    s[m] = fmaf(f[2], xv[2], s[m]);
    s[m] = fmaf(f[3], xv[3], s[m]);
    if constexpr (SX) sx[m] += (xv[0] + xv[1]) + (xv[2] + xv[3]);
  }
}

// 4 unsigned bytes (q + bias each) against x[e..e+3].
template <int MT, bool SX, class XL>
ROCQ_DEVICE void rq_acc_u8x4(uint32_t q4, float off, const XL& xl, int64_t e, float (&s)[MT], float (&sx)[MT]) {
  const float f[4] = {rq_u8f(q4, 0, off), rq_u8f(q4, 1, off), rq_u8f(q4, 2, off), rq_u8f(q4, 3, off)};
  rq_acc4<MT, SX>(f, xl, e, s, sx);
}

// 4 table codes (one per byte, < 16) against x[e..e+3].
template <int MT, class XL>
ROCQ_DEVICE void rq_acc_lut4(uint32_t c4, const float* lut, const XL& xl, int64_t e, float (&s)[MT]) {
  const float f[4] = {lut[c4 & 15u], lut[(c4 >> 8) & 15u], lut[(c4 >> 16) & 15u], lut[(c4 >> 24) & 15u]};
  float unused[MT];
  rq_acc4<MT, false>(f, xl, e, s, unused);
}

// (b3 b2 b1 b0) -> one bit per byte (bit 0 of byte i = b_i).
ROCQ_DEVICE uint32_t rq_spread4(uint32_t b4) { return (b4 * 0x00204081u) & 0x01010101u; }

ROCQ_DEVICE float rq_lo_half(uint32_t w) { return rq_f16_to_f32((uint16_t)(w & 0xFFFFu)); }
ROCQ_DEVICE float rq_hi_half(uint32_t w) { return rq_f16_to_f32((uint16_t)(w >> 16)); }

template <int ID>
struct FastDot {
  static constexpr bool kOn = false;
  static constexpr bool kLut = false;
};

#define ROCQ_FASTDOT_HEAD(LUT)                                                                      \
  static constexpr bool kOn = true;                                                                 \
  static constexpr bool kLut = LUT;                                                                 \
  template <int MT, class XL>                                                                       \
  ROCQ_DEVICE static void dot(const uint32_t* w, uint8_t scale, const float* lut, const XL& xl, int64_t e0, \
                              float (&acc)[MT])

#define ROCQ_ZERO(a) \
  _Pragma("unroll") for (int m_ = 0; m_ < MT; ++m_) a[m_] = 0.f

template <>
struct FastDot<QT_Q4_0> {
  ROCQ_FASTDOT_HEAD(false) {
    float s[MT], sx[MT];
    ROCQ_ZERO(s);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t q = rq_funnel(w[i], w[i + 1], 16);
      rq_acc_u8x4<MT, false>(q & 0x0F0F0F0Fu, kMagic + 8.f, xl, e0 + 4 * i, s, sx);
      rq_acc_u8x4<MT, false>((q >> 4) & 0x0F0F0F0Fu, kMagic + 8.f, xl, e0 + 16 + 4 * i, s, sx);
    }
    const float d = rq_lo_half(w[0]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

template <>
struct FastDot<QT_Q4_1> {
  ROCQ_FASTDOT_HEAD(false) {
    float s[MT], sx[MT];
    ROCQ_ZERO(s);
    ROCQ_ZERO(sx);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t q = w[1 + i];
      rq_acc_u8x4<MT, true>(q & 0x0F0F0F0Fu, kMagic, xl, e0 + 4 * i, s, sx);
      rq_acc_u8x4<MT, true>((q >> 4) & 0x0F0F0F0Fu, kMagic, xl, e0 + 16 + 4 * i, s, sx);
    }
    const float d = rq_lo_half(w[0]), mn = rq_hi_half(w[0]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] += d * s[m] + mn * sx[m];
  }
};

template <>
struct FastDot<QT_Q5_0> {
  ROCQ_FASTDOT_HEAD(false) {
    float s[MT], sx[MT];
    ROCQ_ZERO(s);
    const uint32_t qh = rq_funnel(w[0], w[1], 16);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t q = rq_funnel(w[1 + i], w[2 + i], 16);
      const uint32_t lo = (q & 0x0F0F0F0Fu) | (rq_spread4((qh >> (4 * i)) & 15u) << 4);
      const uint32_t hi = ((q >> 4) & 0x0F0F0F0Fu) | (rq_spread4((qh >> (16 + 4 * i)) & 15u) << 4);
      rq_acc_u8x4<MT, false>(lo, kMagic + 16.f, xl, e0 + 4 * i, s, sx);
      rq_acc_u8x4<MT, false>(hi, kMagic + 16.f, xl, e0 + 16 + 4 * i, s, sx);
    }
    const float d = rq_lo_half(w[0]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

template <>
struct FastDot<QT_Q5_1> {
  ROCQ_FASTDOT_HEAD(false) {
    float s[MT], sx[MT];
    ROCQ_ZERO(s);
    ROCQ_ZERO(sx);
    const uint32_t qh = w[1];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t q = w[2 + i];
      const uint32_t lo = (q & 0x0F0F0F0Fu) | (rq_spread4((qh >> (4 * i)) & 15u) << 4);
      const uint32_t hi = ((q >> 4) & 0x0F0F0F0Fu) | (rq_spread4((qh >> (16 + 4 * i)) & 15u) << 4);
      rq_acc_u8x4<MT, true>(lo, kMagic, xl, e0 + 4 * i, s, sx);
      rq_acc_u8x4<MT, true>(hi, kMagic, xl, e0 + 16 + 4 * i, s, sx);
    }
    const float d = rq_lo_half(w[0]), mn = rq_hi_half(w[0]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] += d * s[m] + mn * sx[m];
  }
};

template <>
struct FastDot<QT_Q8_0> {
  ROCQ_FASTDOT_HEAD(false) {
    float s[MT], sx[MT];
    ROCQ_ZERO(s);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t q = rq_funnel(w[i], w[i + 1], 16) ^ 0x80808080u;  // int8 -> q + 128
      rq_acc_u8x4<MT, false>(q, kMagic + 128.f, xl, e0 + 4 * i, s, sx);
    }
    const float d = rq_lo_half(w[0]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
  }
};

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scale and min; x = (d*sc)*q - (dmin*m).
template <int ID, bool Q5>
struct FastDotK45 {
  ROCQ_FASTDOT_HEAD(false) {
    const uint8_t* b = reinterpret_cast<const uint8_t*>(w);
    const float d = rq_lo_half(w[0]), dmin = rq_hi_half(w[0]);
    constexpr int qs = Q5 ? 12 : 4;  // word index of qs
#pragma unroll
    for (int sb = 0; sb < 8; ++sb) {
      float s[MT], sx[MT];
      ROCQ_ZERO(s);
      ROCQ_ZERO(sx);
      const int sh = 4 * (sb & 1);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        uint32_t q = (w[qs + 8 * (sb / 2) + i] >> sh) & 0x0F0F0F0Fu;
        if constexpr (Q5) q |= ((w[4 + i] >> sb) & 0x01010101u) << 4;
        rq_acc_u8x4<MT, true>(q, kMagic, xl, e0 + 32 * sb + 4 * i, s, sx);
      }
      int sc, mn;
      rq_k4_scale_min(b + 4, sb, sc, mn);
      const float dl = rq_mul(d, (float)sc), ml = rq_mul(dmin, (float)mn);
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[m] += dl * s[m] - ml * sx[m];
    }
  }
};
template <> struct FastDot<QT_Q4_K> : FastDotK45<QT_Q4_K, false> {};
template <> struct FastDot<QT_Q5_K> : FastDotK45<QT_Q5_K, true> {};

template <>
struct FastDot<QT_Q6_K> {
  ROCQ_FASTDOT_HEAD(false) {
    const uint8_t* b = reinterpret_cast<const uint8_t*>(w);
    const float d = rq_lo_half(w[52]);
#pragma unroll
    for (int sb = 0; sb < 16; ++sb) {
      float s[MT], sx[MT];
      ROCQ_ZERO(s);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int e = 16 * sb + 4 * i, h = e / 128, rr = e % 128;
        const uint32_t ql = w[(64 * h + rr % 64) / 4] >> (4 * (rr / 64));
        const uint32_t qh = w[32 + (32 * h + rr % 32) / 4] >> (2 * (rr / 32));
        const uint32_t q = (ql & 0x0F0F0F0Fu) | ((qh & 0x03030303u) << 4);
        rq_acc_u8x4<MT, false>(q, kMagic + 32.f, xl, e0 + e, s, sx);
      }
      const float dl = rq_mul(d, (float)(int8_t)b[192 + sb]);
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[m] = fmaf(dl, s[m], acc[m]);
    }
  }
};

// 32-element blocks of 4-bit codes in Q4_0 nibble order starting at byte `qs_byte`, looked up
// in `lut` and scaled by d.
template <int MT, class XL>
ROCQ_DEVICE void rq_lut_block32(const uint32_t* w, int qs_word, int qs_shift, float d, const float* lut,
                                const XL& xl, int64_t e0, float (&acc)[MT]) {
  float s[MT];
  ROCQ_ZERO(s);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t q = rq_funnel(w[qs_word + i], w[qs_word + i + 1], qs_shift);
    rq_acc_lut4<MT>(q & 0x0F0F0F0Fu, lut, xl, e0 + 4 * i, s);
    rq_acc_lut4<MT>((q >> 4) & 0x0F0F0F0Fu, lut, xl, e0 + 16 + 4 * i, s);
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = fmaf(d, s[m], acc[m]);
}

template <>
struct FastDot<QT_IQ4_NL> {
  ROCQ_FASTDOT_HEAD(true) { rq_lut_block32<MT>(w, 0, 16, rq_lo_half(w[0]), lut, xl, e0, acc); }
  ROCQ_HD static float table(int i) { return (float)rq_iq4nl_value(i); }
};

template <>
struct FastDot<QT_MXFP4> {
  ROCQ_FASTDOT_HEAD(true) { rq_lut_block32<MT>(w, 0, 8, rq_e8m0_half((uint8_t)(w[0] & 0xFFu)), lut, xl, e0, acc); }
  ROCQ_HD static float table(int i) { return (float)rq_e2m1x2_value(i); }
};

template <>
struct FastDot<QT_IQ4_XS> {
  ROCQ_FASTDOT_HEAD(true) {
    const float d = rq_lo_half(w[0]);
    const uint32_t sh = w[0] >> 16, sl = w[1];
#pragma unroll
    for (int sb = 0; sb < 8; ++sb) {
      const int ls = (sl >> (4 * sb)) & 15, hs = (sh >> (2 * sb)) & 3;
      const float dl = rq_mul(d, (float)((ls | (hs << 4)) - 32));
      rq_lut_block32<MT>(w + 2 + 4 * sb, 0, 0, dl, lut, xl, e0 + 32 * sb, acc);
    }
  }
  ROCQ_HD static float table(int i) { return (float)rq_iq4nl_value(i); }
};

// Dense formats: a unit is 8 consecutive elements.
template <>
struct FastDot<QT_F32> {
  ROCQ_FASTDOT_HEAD(false) {
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float xv[8];
      xl.load8(m, e0, xv);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[m] = fmaf(rq_bits_to_float(w[j]), xv[j], acc[m]);
    }
  }
};

template <int XW>
struct FastDot16 {
  ROCQ_FASTDOT_HEAD(false) {
    float f[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) rq_unpack2<XW>(w[i], f[2 * i], f[2 * i + 1]);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float xv[8];
      xl.load8(m, e0, xv);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[m] = fmaf(f[j], xv[j], acc[m]);
    }
  }
};
template <> struct FastDot<QT_F16> : FastDot16<(int)DType::F16> {};
template <> struct FastDot<QT_BF16> : FastDot16<(int)DType::BF16> {};

#undef ROCQ_FASTDOT_HEAD
#undef ROCQ_ZERO

// Any format: decode8 of the codec, 8 elements at a time.
template <class C, int MT, class XL>
ROCQ_DEVICE void rq_generic_dot(const uint32_t* w, uint8_t scale, const XL& xl, int64_t e0, float (&acc)[MT]) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(w);
#pragma unroll
  for (int r = 0; r < Unit<C>::kElems / 8; ++r) {
    float v[8];
    C::decode8(b, scale, r, v);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float xv[8];
      xl.load8(m, e0 + 8 * r, xv);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[m] = fmaf(v[j], xv[j], acc[m]);
    }
  }
}

}  // namespace rocq::gpu
