// Shared internals of the CPU quantizers (quantize_*.cpp). Not a public interface.
//
// Conventions used by every quantizer:
//   * A block is first copied through sanitize(): NaN becomes 0 and every value is clamped to
//     the largest magnitude the format can represent (so +-inf saturates), which keeps all
//     later sums finite.
//   * Scales are searched in fp32, then rounded to the stored precision (fp16 / 6-bit / ...);
//     the element codes are always chosen AFTER that rounding, against the stored scale, and
//     the final choice between candidates is made on the error of the exact decode.
//   * No static mutable state: every function works on its arguments and the stack only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../../kernels/formats.h"

// fround() below and the exact-decode error comparisons need IEEE semantics.
#if defined(__FAST_MATH__)
#error "rocq's quantizers must not be compiled with -ffast-math"
#endif

namespace rocq::cpu::detail {

constexpr float kHalfMax = 65504.0f;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Round to the nearest integer (ties to even) for |v| < 2^22; callers clamp v first.
inline int iround(float v) {
  const float t = v + 12582912.0f;  // 1.5 * 2^23
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
inline float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// Nearest integer in [lo, hi] to v (v finite).
inline int qround(float v, int lo, int hi) { return iround(clampf(v, (float)lo, (float)hi)); }

inline float half_round(float x) { return rq_half_bits_to_float(rq_float_to_half_bits(x)); }
// fp16 value of a scale, saturated to the finite fp16 range.
inline float half_scale(float x) { return half_round(clampf(x, -kHalfMax, kHalfMax)); }
// As half_scale, but a non-zero x never rounds to 0: at least the smallest fp16 subnormal
// (2^-24) keeps tiny blocks representable by larger integer sub-scales.
inline float half_scale_nz(float x) {
  const float h = half_scale(x);
  return (h != 0.0f || x == 0.0f) ? h : std::copysign(5.9604645e-8f, x);
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xFF);
  p[1] = (uint8_t)(v >> 8);
}
inline void put_half(uint8_t* p, float x) { put16(p, rq_float_to_half_bits(x)); }

// y = x with NaN -> 0 and values clamped to [-lim, lim]. Returns max |y|.
inline float sanitize(const float* x, int n, float lim, float* y) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    float v = x[i];
    if (v != v) v = 0.0f;
    v = clampf(v, -lim, lim);
    y[i] = v;
    amax = std::max(amax, std::fabs(v));
  }
  return amax;
}

// Blocks whose largest magnitude is below this decode to zero in every fp16-scaled format
// (the smallest fp16 subnormal is 6e-8); they are written as zero blocks.
constexpr float kTiny = 1e-20f;

// Nearest integer to v as a float, for |v| < 2^22 (ties to even; no int conversion, so the
// loops below vectorize).
inline float fround(float v) { return (v + 12582912.0f) - 12582912.0f; }

// ---------------------------------------------------------------------------------------------
// Grids of levels for symmetric (scale-only) fits. index(v) is the nearest level to v,
// value(idx) its value, rv(v) == value(index(v)). lo()/hi(): extreme level values (lo < 0 < hi).
// ---------------------------------------------------------------------------------------------
struct IntGrid {
  int lo_, hi_;
  float lo() const { return (float)lo_; }
  float hi() const { return (float)hi_; }
  int index(float v) const { return qround(v, lo_, hi_); }
  float value(int q) const { return (float)q; }
  float rv(float v) const { return fround(clampf(v, (float)lo_, (float)hi_)); }
  int zero_index() const { return 0; }
};

// IQ4_NL's non-linear 16-level table. Every midpoint between neighbouring levels is a multiple
// of 1/2, so the nearest level of v is a table lookup on floor(2v).
inline constexpr float kIq4Val[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};
struct Iq4Lut {
  uint8_t idx[512];  // idx[k]: nearest level for v in [(k - 256)/2, (k - 255)/2)
};
constexpr Iq4Lut make_iq4_lut() {
  Iq4Lut t{};
  for (int k = 0; k < 512; ++k) {
    int c = 0;  // number of midpoints m with 2m <= k - 256
    for (int j = 0; j < 15; ++j)
      if (kIq4Val[j] + kIq4Val[j + 1] <= (float)(k - 256)) ++c;
    t.idx[k] = (uint8_t)c;
  }
  return t;
}
inline constexpr Iq4Lut kIq4Lut = make_iq4_lut();

struct Iq4Grid {
  float lo() const { return -127.0f; }
  float hi() const { return 113.0f; }
  int index(float v) const { return kIq4Lut.idx[(int)(2.0f * clampf(v, -128.0f, 127.75f) + 256.0f)]; }
  float value(int q) const { return kIq4Val[q]; }
  float rv(float v) const { return kIq4Val[index(v)]; }
  int zero_index() const { return 8; }  // value 1: decodes to 0 when the scale is 0
};

// Element-wise work is written as plain maps into small arrays (which GCC/Clang vectorize at
// -O2 and -O3 alike, with no -ffast-math), and the sums as 8 partial sums in a fixed order.
constexpr int kMaxRun = 32;  // longest run of elements these helpers see (a sub-block)

// Sum of t[0..n) (n a multiple of 8) as 8 interleaved partial sums, combined pairwise.
inline float sum8(const float* t, int n) {
  float a[8] = {};
  for (int i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l) a[l] += t[i + l];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// <x, v> and <v, v> for v = nearest levels of x*id (n a multiple of 8, <= kMaxRun).
template <class Grid>
inline void sym_dots(const float* x, int n, const Grid& g, float id, float& sxv, float& svv) {
  float txv[kMaxRun], tvv[kMaxRun];
  for (int i = 0; i < n; ++i) {
    const float v = g.rv(x[i] * id);
    txv[i] = x[i] * v;
    tvv[i] = v * v;
  }
  sxv = sum8(txv, n);
  svv = sum8(tvv, n);
}

// Least-squares scale fit x ~ d * level: tries scales that map the largest-magnitude element
// to each end of the grid, stretched by factors 1 + t*rel (t = -ntry..ntry); for each, codes
// are the nearest levels and d is refitted by least squares (d = <x,v>/<v,v>); then a few
// alternating (codes, d) passes from the best. Returns the fp32 scale (0 for a zero block)
// and the codes for it in q. n: a multiple of 8.
template <class Grid>
float sym_fit(const float* x, int n, const Grid& g, int ntry, float rel, int* q) {
  float amax = 0.0f, xm = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), xm = x[i];
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = g.zero_index();
    return 0.0f;
  }
  float best_score = -1.0f, best_d = 0.0f;  // score = <x,v>^2/<v,v> (error = |x|^2 - score)
  for (int side = 0; side < 2; ++side) {
    const float L = side ? g.lo() : g.hi();
    for (int t = -ntry; t <= ntry; ++t) {
      float sxv, svv;
      sym_dots(x, n, g, (L * (1.0f + t * rel)) / xm, sxv, svv);
      if (svv > 0.0f && sxv * sxv / svv > best_score) best_score = sxv * sxv / svv, best_d = sxv / svv;
    }
  }
  for (int it = 0; it < 3 && best_d != 0.0f; ++it) {
    float sxv, svv;
    sym_dots(x, n, g, 1.0f / best_d, sxv, svv);
    if (!(svv > 0.0f) || sxv * sxv / svv <= best_score * (1.0f + 1e-7f)) break;
    best_score = sxv * sxv / svv;
    best_d = sxv / svv;
  }
  const float id = best_d != 0.0f ? 1.0f / best_d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = best_d != 0.0f ? g.index(x[i] * id) : g.zero_index();
  return best_d;
}

// Codes for a fixed (stored) scale d and the exact decode error sum((rq_mul(d, v) - x)^2).
template <class Grid>
float sym_codes(const float* x, int n, const Grid& g, float d, int* q) {
  float err = 0.0f;
  if (d == 0.0f) {
    for (int i = 0; i < n; ++i) q[i] = g.zero_index(), err += x[i] * x[i];
    return err;
  }
  const float id = 1.0f / d;
  for (int i = 0; i < n; ++i) {
    const int c = g.index(x[i] * id);
    const float e = rq_mul(d, g.value(c)) - x[i];
    q[i] = c;
    err += e * e;
  }
  return err;
}

// Among candidate fp32 scales, the fp16-rounded one with the smallest exact decode error;
// its codes go to q. Returns the stored scale.
template <class Grid>
float pick_half_scale(const float* x, int n, const Grid& g, const float* cand, int nc, int* q) {
  float best = kInf, bd = 0.0f;
  int tmp[256];
  for (int c = 0; c < nc; ++c) {
    const float d = half_scale(cand[c]);
    const float err = sym_codes(x, n, g, d, tmp);
    if (err < best) {
      best = err, bd = d;
      std::copy(tmp, tmp + n, q);
    }
  }
  return bd;
}

// Sums of an asymmetric least-squares problem x ~ a*q + b.
struct AsymSums {
  float n = 0, sx = 0, sxx = 0, sq = 0, sqq = 0, sxq = 0;
};

// Least-squares (a, b) for fixed codes; with nonpos_b the offset is held <= 0. Returns false
// for a degenerate code set (all codes equal) or a negative slope. err: the squared error.
inline bool asym_solve(const AsymSums& s, bool nonpos_b, float& a, float& b, double& err) {
  const double n = s.n, sx = s.sx, sq = s.sq, sqq = s.sqq, sxq = s.sxq;
  const double det = n * sqq - sq * sq;
  if (!(det > 0.0)) return false;
  double da = (n * sxq - sq * sx) / det, db = (sqq * sx - sq * sxq) / det;
  if (nonpos_b && db > 0.0) db = 0.0, da = sxq / sqq;
  if (!(da >= 0.0)) return false;
  err = (double)s.sxx - 2 * da * sxq - 2 * db * sx + da * da * sqq + 2 * da * db * sq + n * db * db;
  a = (float)da, b = (float)db;
  return true;
}

inline void asym_accumulate(const float* x, int n, int nmax, float a, float b, AsymSums& s) {
  const float ia = 1.0f / a, fmax = (float)nmax;
  float tq[kMaxRun], tqq[kMaxRun], txq[kMaxRun];
  for (int i = 0; i < n; ++i) {
    const float q = fround(clampf((x[i] - b) * ia, 0.0f, fmax));
    tq[i] = q, tqq[i] = q * q, txq[i] = x[i] * q;
  }
  s.sq = sum8(tq, n), s.sqq = sum8(tqq, n), s.sxq = sum8(txq, n);
}

// Asymmetric fit x ~ a*q + b, q in [0, nmax], a >= 0; with nonpos_b, b <= 0 (K-quants store
// the offset as a non-negative 'min' that is subtracted). Sweeps a over range/(nmax + t*step)
// with b at the block minimum, refits (a, b) by least squares on each code set, then
// alternates (codes, fit) from the best. Writes a, b (a = 0: constant block).
inline void asym_fit(const float* x, int n, int nmax, bool nonpos_b, int ntry, float step, float& a, float& b) {
  AsymSums s;
  float xmin = x[0], xmax = x[0];
  s.n = (float)n;
  for (int i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i]), xmax = std::max(xmax, x[i]);
    s.sx += x[i], s.sxx += x[i] * x[i];
  }
  if (nonpos_b) xmin = std::min(xmin, 0.0f);
  a = 0.0f, b = xmin;
  if (!(xmax - xmin > kTiny)) return;
  a = (xmax - xmin) / (float)nmax;  // the plain min/max fit, kept if no candidate beats it
  double best;
  {
    asym_accumulate(x, n, nmax, a, b, s);
    best = (double)s.sxx - 2.0 * a * s.sxq - 2.0 * b * s.sx + (double)a * a * s.sqq + 2.0 * a * b * s.sq +
           (double)n * b * b;
  }
  for (int t = -ntry; t <= ntry; ++t) {
    const float at = (xmax - xmin) / ((float)nmax + (float)t * step);
    if (!(at > 0.0f)) continue;
    asym_accumulate(x, n, nmax, at, xmin, s);
    float fa, fb;
    double err;
    if (asym_solve(s, nonpos_b, fa, fb, err) && fa > 0.0f && err < best) best = err, a = fa, b = fb;
  }
  for (int it = 0; it < 4; ++it) {
    asym_accumulate(x, n, nmax, a, b, s);
    float fa, fb;
    double err;
    if (!asym_solve(s, nonpos_b, fa, fb, err) || !(fa > 0.0f) || !(err < best * (1.0 - 1e-6))) break;
    best = err, a = fa, b = fb;
  }
}

// Two-level symmetric blocks (Q3_K, Q6_K, IQ4_XS): nsub sub-blocks of len elements, each with
// an integer scale sc in [slo, shi] times one fp16 super-scale d; element j of sub-block s
// decodes to rq_mul(rq_mul(d, sc[s]), level[q[j]]).

// Exact decode error sum((rq_mul(d, level) - x)^2) with nearest levels (len: a multiple of 8).
template <class Grid>
float sym_err(const float* x, int len, const Grid& g, float d) {
  float t[kMaxRun];
  if (d == 0.0f) {
    for (int i = 0; i < len; ++i) t[i] = x[i] * x[i];
  } else {
    const float id = 1.0f / d;
    for (int i = 0; i < len; ++i) {
      const float e = rq_mul(d, g.rv(x[i] * id)) - x[i];
      t[i] = e * e;
    }
  }
  return sum8(t, len);
}

// Best sc within +-radius of sc for stored d (exact decode error); codes to q. Returns error.
template <class Grid>
float sym2_sub(const float* x, int len, const Grid& g, float d, int slo, int shi, int radius, int& sc, int* q) {
  float best = kInf;
  int bs = sc;
  for (int s = std::max(slo, sc - radius); s <= std::min(shi, sc + radius); ++s) {
    const float err = sym_err(x, len, g, rq_mul(d, (float)s));
    if (err < best) best = err, bs = s;
  }
  if (std::abs(sc) > radius) {  // sc = 0 (the sub-block decodes to zeros) bounds the error by |x|^2
    const float err = sym_err(x, len, g, 0.0f);
    if (err < best) best = err, bs = 0;
  }
  sc = bs;
  sym_codes(x, len, g, rq_mul(d, (float)bs), q);
  return best;
}

// Fits every sub-block (sym_fit), then quantizes the sub-block scales against a few candidate
// super-scales (largest sub-scale mapped to either end of [slo, shi], then least-squares
// refits of d for the chosen integers), each followed by a +-1 search of every sc on the exact
// decode error. Writes sc[nsub], q[nsub*len]; returns the stored d. x: sanitized.
template <class Grid>
float sym2_block(const float* x, const Grid& g, int nsub, int len, int slo, int shi, int ntry, float rel,
                 int* sc, int* q) {
  float s[16], smax = 0.0f, sm = 0.0f;
  for (int j = 0; j < nsub; ++j) {
    s[j] = sym_fit(x + j * len, len, g, ntry, rel, q + j * len);
    if (std::fabs(s[j]) > smax) smax = std::fabs(s[j]), sm = s[j];
  }
  for (int j = 0; j < nsub; ++j) sc[j] = 0;
  if (!(smax > 0.0f)) {
    for (int i = 0; i < nsub * len; ++i) q[i] = g.zero_index();
    return 0.0f;
  }
  const float cand[2] = {sm / (float)slo, smax / (float)shi};
  float best = kInf, best_d = 0.0f;
  int csc[16], cq[256];
  for (float c : cand) {
    float d = half_scale_nz(c);
    for (int pass = 0; pass < 3 && d != 0.0f; ++pass) {
      float err = 0.0f;
      for (int j = 0; j < nsub; ++j) {
        csc[j] = qround(s[j] / d, slo, shi);
        err += sym2_sub(x + j * len, len, g, d, slo, shi, 1, csc[j], cq + j * len);
      }
      if (err < best) {
        best = err, best_d = d;
        std::copy(csc, csc + nsub, sc);
        std::copy(cq, cq + nsub * len, q);
      }
      double sxu = 0.0, suu = 0.0;
      for (int j = 0; j < nsub; ++j)
        for (int i = 0; i < len; ++i) {
          const double u = (double)csc[j] * g.value(cq[j * len + i]);
          sxu += u * x[j * len + i], suu += u * u;
        }
      if (!(suu > 0.0)) break;
      const float nd = half_scale((float)(sxu / suu));
      if (nd == d) break;
      d = nd;
    }
  }
  return best_d;
}

// One block of each format: kElems fp32 values in, kBytes bytes out (kernels/formats.h).
void quantize_block_q4_0(const float* x, uint8_t* out);
void quantize_block_q4_1(const float* x, uint8_t* out);
void quantize_block_q5_0(const float* x, uint8_t* out);
void quantize_block_q5_1(const float* x, uint8_t* out);
void quantize_block_q8_0(const float* x, uint8_t* out);
void quantize_block_mxfp4(const float* x, uint8_t* out);
void quantize_block_q2_k(const float* x, uint8_t* out);
void quantize_block_q3_k(const float* x, uint8_t* out);
void quantize_block_q4_k(const float* x, uint8_t* out);
void quantize_block_q5_k(const float* x, uint8_t* out);
void quantize_block_q6_k(const float* x, uint8_t* out);
void quantize_block_iq4_nl(const float* x, uint8_t* out);
void quantize_block_iq4_xs(const float* x, uint8_t* out);

}  // namespace rocq::cpu::detail
