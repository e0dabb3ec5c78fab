// Word-level decoders of 32 consecutive elements (a block of 32, or a 32-element sub-block)
// for the shared-memory kernels (qgemm_impl.h, dequantize.hip). Each computes the SAME fp32
// values as its formats.h codec (same operations, same rounding: rq_mul/rq_sub never fuse),
// with the small integers turned into floats through the magic number 2^23 + q instead of an
// int->float conversion, and the block header (scales, mins) read once per 32 elements instead
// of once per 8. Formats without one (QgFast<ID>::kOn false) use four Codec::decode8 calls.
#pragma once

#include "qcommon.h"

namespace rocq::gpu {

ROCQ_DEVICE float qg_u2f(uint32_t q, float minus) {  // (float)q - minus, exact for small values
  return rq_bits_to_float(0x4B000000u | q) - minus;
}
ROCQ_DEVICE float qg_half(const uint8_t* p) { return rq_op_to_float<RqOp::F16>((uint16_t)(p[0] | (p[1] << 8))); }

template <int ID>
struct QgFast {
  static constexpr bool kOn = false;
  ROCQ_DEVICE static void dec32(const uint8_t*, uint8_t, int, float (&)[32]) {}
};

// Q4_0, Q4_1, Q5_0, Q5_1: elements j / j + 16 = low / high nibble of qs[j] (Q5: the fifth bit
// of element e is bit e of the little-endian u32 qh); x = d * q + m (MIN), else d * (q - 8)
// (Q4_0) or d * (q - 16) (Q5_0).
template <bool Q5, bool MIN>
struct QgFastQ45 {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int, float (&o)[32]) {
    const float d = qg_half(blk), m = MIN ? qg_half(blk + 2) : 0.f;
    const uint8_t* qs = blk + (MIN ? 4 : 2) + (Q5 ? 4 : 0);
    const uint32_t qh = Q5 ? rq_g32_any(blk + (MIN ? 4 : 2)) : 0u;
    constexpr float kMinus = 8388608.0f + (MIN ? 0.0f : Q5 ? 16.0f : 8.0f);  // 2^23 + the offset
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t w = rq_g32_any(qs + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        uint32_t lo = (w >> (8 * b)) & 15u, hi = (w >> (8 * b + 4)) & 15u;
        if constexpr (Q5) {
          lo |= ((qh >> (4 * i + b)) & 1u) << 4;
          hi |= ((qh >> (16 + 4 * i + b)) & 1u) << 4;
        }
        const float fl = rq_mul(d, qg_u2f(lo, kMinus)), fh = rq_mul(d, qg_u2f(hi, kMinus));
        o[4 * i + b] = MIN ? rq_add(fl, m) : fl;
        o[16 + 4 * i + b] = MIN ? rq_add(fh, m) : fh;
      }
    }
  }
};
template <> struct QgFast<QT_Q4_0> : QgFastQ45<false, false> {};
template <> struct QgFast<QT_Q4_1> : QgFastQ45<false, true> {};
template <> struct QgFast<QT_Q5_0> : QgFastQ45<true, false> {};
template <> struct QgFast<QT_Q5_1> : QgFastQ45<true, true> {};

// Q8_0: x = q * d, q signed bytes.
template <>
struct QgFast<QT_Q8_0> {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int, float (&o)[32]) {
    const float d = qg_half(blk);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t w = rq_g32_any(blk + 2 + 4 * i) ^ 0x80808080u;  // q + 128
#pragma unroll
      for (int b = 0; b < 4; ++b) o[4 * i + b] = rq_mul(qg_u2f((w >> (8 * b)) & 255u, 8388736.0f), d);
    }
  }
};

// The 16-level table formats (Q4_0 nibble order): the 32 codes at qs (16 bytes) times d. Levels
// are looked up 4 at a time in registers (rq_lut16_runs) and each made a float through the magic
// number 2^23 + (level + 128): three instructions per element (permute, subtract, multiply)
// where the codec's per-element table select and int->float conversion took about ten, the
// conversion on a quarter-rate pipe.
template <int ID>
ROCQ_DEVICE void qg_lut16_dec32(const uint8_t* qs, float d, float (&o)[32]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint32_t ra, rb;
    rq_lut16_runs<ID, true>(rq_g32_any(qs + 4 * i), ra, rb);
    ra ^= 0x80808080u;  // level + 128, unsigned
    rb ^= 0x80808080u;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      o[4 * i + b] = rq_mul(d, rq_bits_to_float(rq_byte_perm(ra, 0x4B000000u, 0x7440u | (uint32_t)b)) - 8388736.0f);
      o[16 + 4 * i + b] = rq_mul(d, rq_bits_to_float(rq_byte_perm(rb, 0x4B000000u, 0x7440u | (uint32_t)b)) - 8388736.0f);
    }
  }
}

// IQ4_NL: x = d * kvalues[nibble].
template <>
struct QgFast<QT_IQ4_NL> {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int, float (&o)[32]) {
    qg_lut16_dec32<QT_IQ4_NL>(blk + 2, qg_half(blk), o);
  }
};

// MXFP4 (GGUF): x = 2^(e-128) * (2 * E2M1 of the nibble) (the table has +0 for code 8).
template <>
struct QgFast<QT_MXFP4> {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int, float (&o)[32]) {
    qg_lut16_dec32<QT_MXFP4>(blk + 1, rq_e8m0_half(blk[0]), o);
  }
};

// Q4_K / Q5_K: sub-block sb = e32/32: x = (d*sc)*q - dmin*m; q = nibble (sb&1) of
// qs[32*(sb/2) + j], Q5_K: plus bit sb of qh[j] as the fifth bit.
template <bool Q5>
struct QgFastK45 {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int e32, float (&o)[32]) {
    const int sb = e32 / 32;
    int sc, mn;
    rq_k4_scale_min(blk + 4, sb, sc, mn);
    const float dl = rq_mul(qg_half(blk), (float)sc), ml = rq_mul(qg_half(blk + 2), (float)mn);
    const uint8_t* qs = blk + (Q5 ? 48 : 16) + 32 * (sb / 2);
    const uint32_t sh = 4u * (uint32_t)(sb & 1);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      uint32_t q = (rq_g32_any(qs + 4 * i) >> sh) & 0x0F0F0F0Fu;
      if constexpr (Q5) q |= ((rq_g32_any(blk + 16 + 4 * i) >> sb) & 0x01010101u) << 4;
#pragma unroll
      for (int b = 0; b < 4; ++b) o[4 * i + b] = rq_sub(rq_mul(dl, qg_u2f((q >> (8 * b)) & 31u, 8388608.0f)), ml);
    }
  }
};
template <> struct QgFast<QT_Q4_K> : QgFastK45<false> {};
template <> struct QgFast<QT_Q5_K> : QgFastK45<true> {};

// Q6_K: the 32 elements e32.. lie in one quarter r of half h: low nibbles (r < 2) or high of
// ql[64h + 32(r%2) + j], two bits 2r of qh[32h + j]; q - 32; a scale per 16 elements.
template <>
struct QgFast<QT_Q6_K> {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int e32, float (&o)[32]) {
    const int h = e32 / 128, r = (e32 % 128) / 32;
    const float d = qg_half(blk + 208);
    const float dl0 = rq_mul(d, (float)(int8_t)blk[192 + e32 / 16]);
    const float dl1 = rq_mul(d, (float)(int8_t)blk[192 + e32 / 16 + 1]);
    const uint8_t* ql = blk + 64 * h + 32 * (r % 2);
    const uint8_t* qh = blk + 128 + 32 * h;
    const uint32_t shl = 4u * (uint32_t)(r / 2), shh = 2u * (uint32_t)r;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t q = ((rq_g32_any(ql + 4 * i) >> shl) & 0x0F0F0F0Fu) | (((rq_g32_any(qh + 4 * i) >> shh) & 0x03030303u) << 4);
#pragma unroll
      for (int b = 0; b < 4; ++b) o[4 * i + b] = rq_mul(i < 4 ? dl0 : dl1, qg_u2f((q >> (8 * b)) & 63u, 8388640.0f));
    }
  }
};

// Q2_K / Q3_K: the 32 elements e32.. are bytes qs[32 (e32 / 128) + j] >> 2s, s = (e32 % 128) / 32,
// in sub-blocks e32 / 16 (j < 16) and the next. Q2_K: x = (d * sc) * q - dmin * m; Q3_K:
// x = (d * (scale - 32)) * (q - 4 + 4 * bit e32 / 32 of hmask[j]).
template <bool Q3>
struct QgFastK23 {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int e32, float (&o)[32]) {
    const int sb = e32 / 16;
    float dl[2], ml[2] = {0.f, 0.f};
    if constexpr (Q3) {
      const float d = qg_half(blk + 108);
#pragma unroll
      for (int h = 0; h < 2; ++h) dl[h] = rq_mul(d, (float)Codec<QT_Q3_K>::scale(blk + 96, sb + h));
    } else {
      const float d = qg_half(blk + 80), dmin = qg_half(blk + 82);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        dl[h] = rq_mul(d, (float)(blk[sb + h] & 15));
        ml[h] = rq_mul(dmin, (float)(blk[sb + h] >> 4));
      }
    }
    const uint8_t* qs = blk + (Q3 ? 32 : 16) + 32 * (e32 / 128);
    const uint32_t sh = 2u * (uint32_t)((e32 % 128) / 32), hb = (uint32_t)(e32 / 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      uint32_t q = (rq_g32_any(qs + 4 * i) >> sh) & 0x03030303u;
      if constexpr (Q3) q |= ((rq_g32_any(blk + 4 * i) >> hb) & 0x01010101u) << 2;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const float v = rq_mul(dl[i / 4], qg_u2f((q >> (8 * b)) & 7u, Q3 ? 8388612.0f : 8388608.0f));
        o[4 * i + b] = Q3 ? v : rq_sub(v, ml[i / 4]);
      }
    }
  }
};
template <> struct QgFast<QT_Q2_K> : QgFastK23<false> {};
template <> struct QgFast<QT_Q3_K> : QgFastK23<true> {};

// IQ4_XS: sub-block sb: dl = d * (6-bit scale - 32), x = dl * kvalues[nibble], Q4_0 order.
template <>
struct QgFast<QT_IQ4_XS> {
  static constexpr bool kOn = true;
  ROCQ_DEVICE static void dec32(const uint8_t* blk, uint8_t, int e32, float (&o)[32]) {
    const int sb = e32 / 32;
    const float dl = rq_mul(qg_half(blk), (float)rq_iq4xs_subscale(rq_g32_any(blk), rq_g32_any(blk + 4), sb));
    qg_lut16_dec32<QT_IQ4_XS>(blk + 8 + 16 * sb, dl, o);
  }
};

}  // namespace rocq::gpu
