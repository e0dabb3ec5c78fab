// CPU quantizer for the planar OCP MX formats. Rules, modes and the NaN/Inf policy are
// documented in quantize_mx.h; the decode side is kernels/formats_mx.h.
#include "quantize_mx.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "../../kernels/formats.h"

namespace rocq::cpu {
namespace {

inline uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// 2^e as fp32 for e in [-149, 127] (subnormal powers included), exact.
inline float pow2f(int e) { return e >= -126 ? bitsf((uint32_t)(e + 127) << 23) : bitsf(1u << (e + 149)); }

// Round to nearest integer, ties to even, for 0 <= y < 2^22 (exact float arithmetic).
inline uint32_t rne_small(float y) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  const volatile float t = y + magic;  // volatile: keep the two roundings separate
  return (uint32_t)(t - magic);
}

// floor(log2(a)) for finite a > 0 (fp32 subnormals included).
inline int ilog2f(float a) {
  const uint32_t b = fbits(a) & 0x7FFFFFFFu;
  const int ex = (int)(b >> 23);
  if (ex != 0) return ex - 127;
  int lz = 0;  // subnormal: value = mant * 2^-149
  for (uint32_t m = b & 0x7FFFFFu; m; m >>= 1) ++lz;
  return lz - 1 - 149;
}

// Minifloat with EB exponent bits, MB mantissa bits and bias B; kMaxCode = magnitude code of
// the largest finite value. encode(x): RNE, saturating, sign kept (x finite).
template <int EB, int MB, int B, uint32_t kMaxCode>
struct MiniFloat {
  static constexpr uint32_t kMagMask = (1u << (EB + MB)) - 1u;
  static uint32_t encode(float x) {
    const uint32_t sign = (fbits(x) >> 31) << (EB + MB);
    const int emin = 1 - B;
    const float maxv = decode_mag(kMaxCode);
    float a = std::fabs(x);
    if (a >= maxv) return sign | kMaxCode;
    const uint32_t ab = fbits(a);
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
  static float decode_mag(uint32_t c) {
    const uint32_t ex = c >> MB, man = c & ((1u << MB) - 1u);
    if (ex == 0) return (float)man * pow2f(1 - B - MB);
    return (float)((1u << MB) | man) * pow2f((int)ex - B - MB);
  }
};

struct Int8Elem {
  static constexpr uint32_t kMagMask = 0xFFu;  // no negative zero
  static uint32_t encode(float x) {
    const float a = std::fabs(x) * 64.0f;  // exact
    uint32_t m = a >= 127.0f ? 127u : rne_small(a);
    if (m > 127u) m = 127u;
    const int v = std::signbit(x) ? -(int)m : (int)m;
    return (uint32_t)(uint8_t)(int8_t)v;
  }
};

// Per-format parameters.
template <int ID>
struct MxTraits;
template <>
struct MxTraits<QT_OCP_MXFP4> {
  using E = MiniFloat<2, 1, 1, 0x7u>;
  static constexpr int kEmax = 2, kQuarkMbits = 1;
};
template <>
struct MxTraits<QT_OCP_MXFP6_E2M3> {
  using E = MiniFloat<2, 3, 1, 0x1Fu>;
  static constexpr int kEmax = 2, kQuarkMbits = 3;
};
template <>
struct MxTraits<QT_OCP_MXFP6_E3M2> {
  using E = MiniFloat<3, 2, 3, 0x1Fu>;
  static constexpr int kEmax = 4, kQuarkMbits = 2;
};
template <>
struct MxTraits<QT_OCP_MXFP8_E4M3> {
  using E = MiniFloat<4, 3, 7, 0x7Eu>;  // 0x7F is NaN
  static constexpr int kEmax = 8, kQuarkMbits = 3;
};
template <>
struct MxTraits<QT_OCP_MXFP8_E5M2> {
  using E = MiniFloat<5, 2, 15, 0x7Bu>;  // exponent 31 is inf/NaN
  static constexpr int kEmax = 15, kQuarkMbits = 2;
};
template <>
struct MxTraits<QT_OCP_MXINT8> {
  using E = Int8Elem;
  static constexpr int kEmax = 0, kQuarkMbits = 8;
};

inline int clamp_shared(int s) { return s < -127 ? -127 : (s > 127 ? 127 : s); }

// Shared exponent of a block from its amax (finite, >= 0).
template <class T>
int shared_exponent(float amax, int mode) {
  if (mode == kMxScaleSpec) {
    if (amax == 0.0f) return -127;
    return clamp_shared(ilog2f(amax) - T::kEmax);
  }
  // kMxScaleEven (Quark): integer add of half an ulp at kQuarkMbits, keep the exponent field.
  if (amax == 0.0f) return clamp_shared(-126 - T::kEmax);
  const uint32_t b = (fbits(amax) + (1u << (22 - T::kQuarkMbits))) & 0x7F800000u;
  const int ex = (int)(b >> 23);
  if (ex == 0) return -127;  // log2(0) = -inf, clamped
  if (ex == 255) return 127;  // rounded past FLT_MAX: +inf, clamped
  return clamp_shared(ex - 127 - T::kEmax);
}

// Writes the 32 codes of one block into the element plane (packing of formats_mx.h).
template <int ID>
void pack_block(const uint32_t* c, uint8_t* dst) {
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

template <int ID>
void quantize_rows_t(const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales, int mode) {
  using T = MxTraits<ID>;
  constexpr int kBytes = Codec<ID>::kBytes;
  const int64_t nb = k / 32;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* x = w + r * k + b * 32;
      uint8_t* dst = out + (r * nb + b) * kBytes;
      uint8_t& sc = scales[r * nb + b];
      float v[32];
      bool nan = false;
      float amax = 0.0f;
      for (int i = 0; i < 32; ++i) {
        float t = x[i];
        if (std::isnan(t)) nan = true;
        if (t > FLT_MAX) t = FLT_MAX;  // +-inf saturate
        if (t < -FLT_MAX) t = -FLT_MAX;
        v[i] = t;
        const float a = std::fabs(t);
        if (a > amax) amax = a;
      }
      uint32_t codes[32];
      if (nan) {
        sc = 255;
        for (int i = 0; i < 32; ++i) codes[i] = 0;
      } else {
        const int s = shared_exponent<T>(amax, mode);
        sc = (uint8_t)(s + 127);
        const float inv = pow2f(-s);  // 2^-s, s in [-127, 127]: exact scaling (see header)
        for (int i = 0; i < 32; ++i) codes[i] = T::E::encode(v[i] * inv);
        if (mode == kMxScaleEven)  // Quark writes +0 for every element that rounds to zero
          for (int i = 0; i < 32; ++i)
            if ((codes[i] & T::E::kMagMask) == 0) codes[i] = 0;
      }
      pack_block<ID>(codes, dst);
    }
  }
}

}  // namespace

bool is_mx_format(int qtype) {
  switch (qtype) {
    case QT_OCP_MXFP4:
    case QT_OCP_MXFP6_E2M3:
    case QT_OCP_MXFP6_E3M2:
    case QT_OCP_MXFP8_E4M3:
    case QT_OCP_MXFP8_E5M2:
    case QT_OCP_MXINT8:
      return true;
    default:
      return false;
  }
}

bool quantize_mx_rows(int qtype, const float* w, int64_t n, int64_t k, uint8_t* out, uint8_t* scales_out,
                      int mode) {
  if (mode != kMxScaleSpec && mode != kMxScaleEven) return false;
  if (k % 32 != 0 || scales_out == nullptr) return false;
  switch (qtype) {
    case QT_OCP_MXFP4: quantize_rows_t<QT_OCP_MXFP4>(w, n, k, out, scales_out, mode); return true;
    case QT_OCP_MXFP6_E2M3: quantize_rows_t<QT_OCP_MXFP6_E2M3>(w, n, k, out, scales_out, mode); return true;
    case QT_OCP_MXFP6_E3M2: quantize_rows_t<QT_OCP_MXFP6_E3M2>(w, n, k, out, scales_out, mode); return true;
    case QT_OCP_MXFP8_E4M3: quantize_rows_t<QT_OCP_MXFP8_E4M3>(w, n, k, out, scales_out, mode); return true;
    case QT_OCP_MXFP8_E5M2: quantize_rows_t<QT_OCP_MXFP8_E5M2>(w, n, k, out, scales_out, mode); return true;
    case QT_OCP_MXINT8: quantize_rows_t<QT_OCP_MXINT8>(w, n, k, out, scales_out, mode); return true;
    default: return false;
  }
}

}  // namespace rocq::cpu
