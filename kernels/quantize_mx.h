// Quantizer for rocq's planar OCP MX formats (ocp_mxfp4 .. ocp_mxint8, ids 100..105): one
// 32-element group of fp32 values -> its bytes in the element plane (layout of formats_mx.h)
// and its E8M0 scale byte. Host and device (quantize_common.h says what that requires).
//
// Scale modes (one E8M0 exponent per 32 consecutive elements of a row):
//   kMxScaleSpec (0, the default; OCP MX v1.0 section 6.3, torchao's FLOOR):
//       shared = floor(log2(amax)) - emax_elem, clamped to [-127, 127]; an all-zero block
//       gets shared = -127 (E8M0 byte 0: floor(log2(0)) = -inf, clamped).
//   kMxScaleEven (1, AMD Quark's default "even"): amax is first rounded to the element's
//       mantissa width (Quark's widths: E2M1 1, E2M3 3, E3M2 2, E4M3 3, E5M2 2, INT8 8) by
//       adding half a unit in the last place to its fp32 bit pattern (ties away from zero;
//       a carry moves it to the next power of two), then shared = floor(log2(that)) - emax,
//       clamped to [-127, 127]; an all-zero block uses amax = 2^-126 as Quark does
//       (shared = max(-126 - emax, -127)). This avoids clipping blocks whose amax lies just
//       below the next power of two (E2M1: 7 * 2^s would saturate to 6 * 2^s under the spec rule).
//       Elements that round to zero get the +0 code in this mode (as Quark writes them), so
//       the output is byte-identical to an AMD Quark 0.13 export of the same weights.
//   emax_elem: E2M1 2, E2M3 2, E3M2 4, E4M3 8, E5M2 15, INT8 0.
// Elements: V / 2^shared (exact in fp32 unless the result is an fp32 subnormal) rounded to
// nearest, ties to even, in the element format (subnormals included), saturated to the largest
// finite magnitude (E2M1 6, E2M3 7.5, E3M2 28, E4M3 448, E5M2 57344, INT8 +-127/64: -128 is
// never produced). In spec mode the sign of the input is kept (IEEE conversion), so negative
// values that round to zero give the negative-zero code (INT8 has none); even mode writes +0
// there (see above).
//
// NaN / Inf policy:
//   * a block containing any NaN gets the NaN scale (E8M0 255) and element codes 0: the whole
//     block decodes to NaN (OCP: a NaN scale makes every element of its block NaN);
//   * +-Inf is treated as +-FLT_MAX (saturation): the block's scale is computed from that
//     amax, the infinite element gets the largest code of its sign and the finite elements of
//     the block become (usually) zero. The E5M2 inf code is never produced. Such an element
//     decodes to +-max_elem * 2^shared (finite, or +-inf where that product overflows fp32).
#pragma once

#include "quantize_common.h"

namespace rocq::quant {

enum MxScaleMode : int {
  kMxScaleSpec = 0,  // OCP spec: floor(log2(amax)) - emax
  kMxScaleEven = 1,  // AMD Quark "even": amax rounded to element precision first
};

// Round to nearest integer, ties to even, for 0 <= y < 2^22 (two separately rounded adds).
ROCQ_HD uint32_t rne_small(float y) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return (uint32_t)rq_sub(rq_add(y, magic), magic);
}

// Minifloat with EB exponent bits, MB mantissa bits and bias B; kMaxCode = magnitude code of
// the largest finite value. encode(x): RNE, saturating, sign kept (x finite).
template <int EB, int MB, int B, uint32_t kMaxCode>
struct MxMiniFloat {
  static constexpr uint32_t kMagMask = (1u << (EB + MB)) - 1u;
  ROCQ_HD static float decode_mag(uint32_t c) {
    const uint32_t ex = c >> MB, man = c & ((1u << MB) - 1u);
    if (ex == 0) return (float)man * pow2f(1 - B - MB);
    return (float)((1u << MB) | man) * pow2f((int)ex - B - MB);
  }
  ROCQ_HD static uint32_t encode(float x) {
    const uint32_t sign = (rq_float_to_bits(x) >> 31) << (EB + MB);
    const int emin = 1 - B;
    const float maxv = decode_mag(kMaxCode);
    const float a = q_abs(x);
    if (a >= maxv) return sign | kMaxCode;
    const uint32_t ab = rq_float_to_bits(a);
    int e = (ab >> 23) == 0 ? emin : (int)(ab >> 23) - 127;  // fp32 subnormals are far below emin
    if (e < emin) e = emin;
    uint32_t m = rne_small(a * pow2f(MB - e));  // exact scaling by a power of two, then RNE
    if (m >= (2u << MB)) {  // carried into the next binade
      m >>= 1;
      ++e;
    }
    uint32_t mag;
    if (m < (1u << MB))
      mag = m;  // subnormal (only at e == emin)
    else
      mag = ((uint32_t)(e - emin + 1) << MB) | (m - (1u << MB));
    if (mag > kMaxCode) mag = kMaxCode;  // cannot happen for a < maxv; defensive
    return sign | mag;
  }
};

struct MxInt8Elem {
  static constexpr uint32_t kMagMask = 0xFFu;  // no negative zero
  ROCQ_HD static uint32_t encode(float x) {
    const float a = q_abs(x) * 64.0f;  // exact
    uint32_t m = a >= 127.0f ? 127u : rne_small(a);
    if (m > 127u) m = 127u;
    const int v = q_signbit(x) ? -(int)m : (int)m;
    return (uint32_t)(uint8_t)(int8_t)v;
  }
};

// Per-format parameters.
template <int ID>
struct MxTraits;
template <>
struct MxTraits<QT_OCP_MXFP4> {
  using E = MxMiniFloat<2, 1, 1, 0x7u>;
  static constexpr int kEmax = 2, kQuarkMbits = 1;
};
template <>
struct MxTraits<QT_OCP_MXFP6_E2M3> {
  using E = MxMiniFloat<2, 3, 1, 0x1Fu>;
  static constexpr int kEmax = 2, kQuarkMbits = 3;
};
template <>
struct MxTraits<QT_OCP_MXFP6_E3M2> {
  using E = MxMiniFloat<3, 2, 3, 0x1Fu>;
  static constexpr int kEmax = 4, kQuarkMbits = 2;
};
template <>
struct MxTraits<QT_OCP_MXFP8_E4M3> {
  using E = MxMiniFloat<4, 3, 7, 0x7Eu>;  // 0x7F is NaN
  static constexpr int kEmax = 8, kQuarkMbits = 3;
};
template <>
struct MxTraits<QT_OCP_MXFP8_E5M2> {
  using E = MxMiniFloat<5, 2, 15, 0x7Bu>;  // exponent 31 is inf/NaN
  static constexpr int kEmax = 15, kQuarkMbits = 2;
};
template <>
struct MxTraits<QT_OCP_MXINT8> {
  using E = MxInt8Elem;
  static constexpr int kEmax = 0, kQuarkMbits = 8;
};

ROCQ_HD int mx_clamp_shared(int s) { return s < -127 ? -127 : (s > 127 ? 127 : s); }

// Shared exponent of a block from its amax (finite, >= 0).
template <class T>
ROCQ_HD int mx_shared_exponent(float amax, int mode) {
  if (mode == kMxScaleSpec) {
    if (amax == 0.0f) return -127;
    return mx_clamp_shared(ilog2f(amax) - T::kEmax);
  }
  // kMxScaleEven (Quark): integer add of half an ulp at kQuarkMbits, keep the exponent field.
  if (amax == 0.0f) return mx_clamp_shared(-126 - T::kEmax);
  const uint32_t b = (rq_float_to_bits(amax) + (1u << (22 - T::kQuarkMbits))) & 0x7F800000u;
  const int ex = (int)(b >> 23);
  if (ex == 0) return -127;   // log2(0) = -inf, clamped
  if (ex == 255) return 127;  // rounded past FLT_MAX: +inf, clamped
  return mx_clamp_shared(ex - 127 - T::kEmax);
}

// Writes the 32 codes of one block into the element plane (packing of formats_mx.h).
template <int ID>
ROCQ_HD void mx_pack_block(const uint32_t* c, uint8_t* dst) {
  if constexpr (ID == QT_OCP_MXFP4) {
    for (int i = 0; i < 16; ++i) dst[i] = (uint8_t)(c[2 * i] | (c[2 * i + 1] << 4));
  } else if constexpr (ID == QT_OCP_MXFP6_E2M3 || ID == QT_OCP_MXFP6_E3M2) {
    for (int j = 0; j < 8; ++j) {
      const uint32_t v = c[4 * j] | (c[4 * j + 1] << 6) | (c[4 * j + 2] << 12) | (c[4 * j + 3] << 18);
      dst[3 * j] = (uint8_t)v;
      dst[3 * j + 1] = (uint8_t)(v >> 8);
      dst[3 * j + 2] = (uint8_t)(v >> 16);
    }
  } else {
    for (int i = 0; i < 32; ++i) dst[i] = (uint8_t)c[i];
  }
}

// One 32-element group: x[32] -> dst[Codec<ID>::kBytes] and its E8M0 byte *scale.
// mode: kMxScaleSpec or kMxScaleEven (any other value is treated as kMxScaleEven; callers
// validate it).
template <int ID>
ROCQ_HD void quantize_block_mx(const float* x, uint8_t* dst, uint8_t* scale, int mode) {
  using T = MxTraits<ID>;
  float v[32];
  bool nan = false;
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) {
    float t = x[i];
    if (t != t) nan = true;
    if (t > kFltMax) t = kFltMax;  // +-inf saturate
    if (t < -kFltMax) t = -kFltMax;
    v[i] = t;
    const float a = q_abs(t);
    if (a > amax) amax = a;
  }
  uint32_t codes[32];
  if (nan) {
    *scale = 255;
    for (int i = 0; i < 32; ++i) codes[i] = 0;
  } else {
    const int s = mx_shared_exponent<T>(amax, mode);
    *scale = (uint8_t)(s + 127);
    const float inv = pow2f(-s);  // 2^-s, s in [-127, 127]
    for (int i = 0; i < 32; ++i) codes[i] = T::E::encode(v[i] * inv);
    if (mode == kMxScaleEven)  // Quark writes +0 for every element that rounds to zero
      for (int i = 0; i < 32; ++i)
        if ((codes[i] & T::E::kMagMask) == 0) codes[i] = 0;
  }
  mx_pack_block<ID>(codes, dst);
}

}  // namespace rocq::quant
