// Shared building blocks of rocq's quantizers (kernels/quantize_*.h). Torch-free and usable
// from host C++ (csrc/cpu: the reference) and from HIP/CUDA device code (kernels/quantize.hip:
// one thread per block), so that both produce the same bytes.
//
// Rules that keep host and device bit-identical:
//   * no std:: algorithms or containers, no host-only math calls: min/max/abs/copysign are the
//     q_* helpers below (plain comparisons and bit operations, with the exact semantics of the
//     std:: versions they replace);
//   * no static mutable state; tables are switches, arithmetic or static constexpr data;
//   * every translation unit that includes these headers must be compiled WITHOUT floating-point
//     contraction (host: -ffp-contract=off, as all of csrc/; nvcc: --fmad=false; HIP clang:
//     -ffp-contract=off; see CMakeLists.txt) and without fast-math, with IEEE division and fp32
//     denormals: the error comparisons and the rounding tricks below depend on it.
//
// Conventions used by every quantizer:
//   * A block is first copied through sanitize(): NaN becomes 0 and every value is clamped to
//     the largest magnitude the format can represent (so +-inf saturates), which keeps all
//     later sums finite.
//   * Scales are searched in fp32, then rounded to the stored precision (fp16 / 6-bit / ...);
//     the element codes are always chosen AFTER that rounding, against the stored scale, and
//     the final choice between candidates is made on the error of the exact decode.
#pragma once

#include "formats.h"

#if defined(__FAST_MATH__)
#error "rocq's quantizers must not be compiled with -ffast-math"
#endif

namespace rocq::quant {

constexpr float kHalfMax = 65504.0f;
// Blocks whose largest magnitude is below this decode to zero in every fp16-scaled format
// (the smallest fp16 subnormal is 6e-8); they are written as zero blocks.
constexpr float kTiny = 1e-20f;
constexpr float kFltMax = 0x1.fffffep+127f;
// Element-wise work is written as plain maps into small arrays (which GCC/Clang vectorize on
// the host at -O2 and -O3 alike), and the sums as 8 partial sums in a fixed order.
constexpr int kMaxRun = 32;  // longest run of elements these helpers see (a sub-block)

// ---- scalar helpers (device-callable replacements of std:: functions, same results) -------
ROCQ_HD float q_inf() { return rq_bits_to_float(0x7F800000u); }
ROCQ_HD double q_inf_d() { return (double)q_inf(); }
ROCQ_HD float q_min(float a, float b) { return b < a ? b : a; }  // std::min
ROCQ_HD float q_max(float a, float b) { return a < b ? b : a; }  // std::max
ROCQ_HD double q_max_d(double a, double b) { return a < b ? b : a; }
ROCQ_HD int q_imin(int a, int b) { return b < a ? b : a; }
ROCQ_HD int q_imax(int a, int b) { return a < b ? b : a; }
ROCQ_HD int q_iabs(int a) { return a < 0 ? -a : a; }
ROCQ_HD float q_abs(float x) { return rq_bits_to_float(rq_float_to_bits(x) & 0x7FFFFFFFu); }
// |a| for comparisons and squares only (the sign of a zero result may differ from fabs).
ROCQ_HD double q_abs_d(double a) { return a < 0.0 ? -a : a; }
ROCQ_HD float q_copysign(float mag, float s) {
  return rq_bits_to_float((rq_float_to_bits(mag) & 0x7FFFFFFFu) | (rq_float_to_bits(s) & 0x80000000u));
}
ROCQ_HD bool q_isinf(float x) { return (rq_float_to_bits(x) & 0x7FFFFFFFu) == 0x7F800000u; }
ROCQ_HD bool q_signbit(float x) { return (rq_float_to_bits(x) >> 31) != 0; }

// 2^e as fp32 for e in [-149, 127] (subnormal powers included), exact.
ROCQ_HD float pow2f(int e) {
  return e >= -126 ? rq_bits_to_float((uint32_t)(e + 127) << 23) : rq_bits_to_float(1u << (e + 149));
}

// floor(log2(a)) for finite a > 0 (fp32 subnormals included).
ROCQ_HD int ilog2f(float a) {
  const uint32_t b = rq_float_to_bits(a) & 0x7FFFFFFFu;
  const int ex = (int)(b >> 23);
  if (ex != 0) return ex - 127;
  int lz = 0;  // subnormal: value = mant * 2^-149
  for (uint32_t m = b & 0x7FFFFFu; m; m >>= 1) ++lz;
  return lz - 1 - 149;
}

// Round to the nearest integer (ties to even) for |v| < 2^22; callers clamp v first.
ROCQ_HD int iround(float v) {
  const uint32_t i = rq_float_to_bits(rq_add(v, 12582912.0f));  // 1.5 * 2^23
  return (int)(i & 0x007FFFFFu) - 0x00400000;
}

// Nearest integer to v as a float, for |v| < 2^22 (ties to even; no int conversion, so the
// host loops below vectorize). rq_add/rq_sub: two separately rounded operations.
ROCQ_HD float fround(float v) { return rq_sub(rq_add(v, 12582912.0f), 12582912.0f); }

ROCQ_HD int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
ROCQ_HD float clampf(float v, float lo, float hi) { return q_min(q_max(v, lo), hi); }

// Nearest integer in [lo, hi] to v (v finite).
ROCQ_HD int qround(float v, int lo, int hi) { return iround(clampf(v, (float)lo, (float)hi)); }

ROCQ_HD float half_round(float x) { return rq_half_bits_to_float(rq_float_to_half_bits(x)); }
// fp16 value of a scale, saturated to the finite fp16 range.
ROCQ_HD float half_scale(float x) { return half_round(clampf(x, -kHalfMax, kHalfMax)); }
// As half_scale, but a non-zero x never rounds to 0: at least the smallest fp16 subnormal
// (2^-24) keeps tiny blocks representable by larger integer sub-scales.
ROCQ_HD float half_scale_nz(float x) {
  const float h = half_scale(x);
  return (h != 0.0f || x == 0.0f) ? h : q_copysign(5.9604645e-8f, x);
}

ROCQ_HD void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xFF);
  p[1] = (uint8_t)(v >> 8);
}
ROCQ_HD void put_half(uint8_t* p, float x) { put16(p, rq_float_to_half_bits(x)); }
ROCQ_HD void put32(uint8_t* p, uint32_t v) {
  for (int b = 0; b < 4; ++b) p[b] = (uint8_t)(v >> (8 * b));
}

// y = x with NaN -> 0 and values clamped to [-lim, lim]. Returns max |y|.
ROCQ_HD float sanitize(const float* x, int n, float lim, float* y) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    float v = x[i];
    if (v != v) v = 0.0f;
    v = clampf(v, -lim, lim);
    y[i] = v;
    amax = q_max(amax, q_abs(v));
  }
  return amax;
}

// ---------------------------------------------------------------------------------------------
// Grids of levels for symmetric (scale-only) fits. index(v) is the nearest level to v,
// value(idx) its value, rv(v) == value(index(v)). lo()/hi(): extreme level values (lo < 0 < hi).
// ---------------------------------------------------------------------------------------------
struct IntGrid {
  int lo_, hi_;
  ROCQ_HD float lo() const { return (float)lo_; }
  ROCQ_HD float hi() const { return (float)hi_; }
  ROCQ_HD int index(float v) const { return qround(v, lo_, hi_); }
  ROCQ_HD float value(int q) const { return (float)q; }
  ROCQ_HD float rv(float v) const { return fround(clampf(v, (float)lo_, (float)hi_)); }
  ROCQ_HD int zero_index() const { return 0; }
};

// IQ4_NL's non-linear 16-level table (the values of rq_iq4nl_value in formats.h). Every
// midpoint between neighbouring levels is a multiple of 1/2, so the nearest level of v is a
// table lookup on floor(2v). The tables are constexpr (function-local static constexpr below:
// read-only data on the host and on the device, nvcc and HIP clang alike).
struct Iq4Tables {
  float val[16];
  uint8_t idx[512];  // idx[k]: nearest level for v in [(k - 256)/2, (k - 255)/2)
};
constexpr Iq4Tables make_iq4_tables() {
  Iq4Tables t{{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}, {}};
  for (int k = 0; k < 512; ++k) {
    int c = 0;  // number of midpoints m with 2m <= k - 256
    for (int j = 0; j < 15; ++j)
      if (t.val[j] + t.val[j + 1] <= (float)(k - 256)) ++c;
    t.idx[k] = (uint8_t)c;
  }
  return t;
}

inline constexpr Iq4Tables kIq4Tables = make_iq4_tables();

struct Iq4Grid {
  ROCQ_HD static const Iq4Tables& tables() {
    static constexpr Iq4Tables t = kIq4Tables;  // a copy local to the function: device data too
    return t;
  }
  ROCQ_HD float lo() const { return -127.0f; }
  ROCQ_HD float hi() const { return 113.0f; }
  ROCQ_HD int index(float v) const { return tables().idx[(int)(2.0f * clampf(v, -128.0f, 127.75f) + 256.0f)]; }
  ROCQ_HD float value(int q) const { return tables().val[q]; }
  ROCQ_HD float rv(float v) const { return tables().val[index(v)]; }
  ROCQ_HD int zero_index() const { return 8; }  // value 1: decodes to 0 when the scale is 0
};

// Sum of t[0..n) (n a multiple of 8) as 8 interleaved partial sums, combined pairwise.
ROCQ_HD float sum8(const float* t, int n) {
  float a[8] = {};
  for (int i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l) a[l] += t[i + l];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// <x, v> and <v, v> for v = nearest levels of x*id (n a multiple of 8, <= kMaxRun).
template <class Grid>
ROCQ_HD void sym_dots(const float* x, int n, const Grid& g, float id, float& sxv, float& svv) {
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
// and the codes for it in q. n: a multiple of 8, <= kMaxRun.
template <class Grid>
ROCQ_HD float sym_fit(const float* x, int n, const Grid& g, int ntry, float rel, int* q) {
  float amax = 0.0f, xm = 0.0f;
  for (int i = 0; i < n; ++i)
    if (q_abs(x[i]) > amax) amax = q_abs(x[i]), xm = x[i];
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
ROCQ_HD float sym_codes(const float* x, int n, const Grid& g, float d, int* q) {
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
// its codes go to q. Returns the stored scale. n <= kMaxRun.
template <class Grid>
ROCQ_HD float pick_half_scale(const float* x, int n, const Grid& g, const float* cand, int nc, int* q) {
  float best = q_inf(), bd = 0.0f;
  int tmp[kMaxRun];
  for (int c = 0; c < nc; ++c) {
    const float d = half_scale(cand[c]);
    const float err = sym_codes(x, n, g, d, tmp);
    if (err < best) {
      best = err, bd = d;
      for (int i = 0; i < n; ++i) q[i] = tmp[i];
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
ROCQ_HD bool asym_solve(const AsymSums& s, bool nonpos_b, float& a, float& b, double& err) {
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

ROCQ_HD void asym_accumulate(const float* x, int n, int nmax, float a, float b, AsymSums& s) {
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
// alternates (codes, fit) from the best. Writes a, b (a = 0: constant block). n <= kMaxRun.
ROCQ_HD void asym_fit(const float* x, int n, int nmax, bool nonpos_b, int ntry, float step, float& a, float& b) {
  AsymSums s;
  float xmin = x[0], xmax = x[0];
  s.n = (float)n;
  for (int i = 0; i < n; ++i) {
    xmin = q_min(xmin, x[i]), xmax = q_max(xmax, x[i]);
    s.sx += x[i], s.sxx += x[i] * x[i];
  }
  if (nonpos_b) xmin = q_min(xmin, 0.0f);
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

// ---------------------------------------------------------------------------------------------
// Two-level symmetric blocks (Q3_K, Q6_K, IQ4_XS): nsub sub-blocks of len elements, each with
// an integer scale sc in [slo, shi] times one fp16 super-scale d; element j of sub-block s
// decodes to rq_mul(rq_mul(d, sc[s]), level[q[j]]).
// ---------------------------------------------------------------------------------------------

// Exact decode error sum((rq_mul(d, level) - x)^2) with nearest levels (len: a multiple of 8).
template <class Grid>
ROCQ_HD float sym_err(const float* x, int len, const Grid& g, float d) {
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
ROCQ_HD float sym2_sub(const float* x, int len, const Grid& g, float d, int slo, int shi, int radius, int& sc,
                       int* q) {
  float best = q_inf();
  int bs = sc;
  for (int s = q_imax(slo, sc - radius); s <= q_imin(shi, sc + radius); ++s) {
    const float err = sym_err(x, len, g, rq_mul(d, (float)s));
    if (err < best) best = err, bs = s;
  }
  if (q_iabs(sc) > radius) {  // sc = 0 (the sub-block decodes to zeros) bounds the error by |x|^2
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
// decode error. Writes sc[nsub], q[nsub*len] (nsub <= 16, nsub*len <= 256); returns the stored
// d. x: sanitized.
template <class Grid>
ROCQ_HD float sym2_block(const float* x, const Grid& g, int nsub, int len, int slo, int shi, int ntry, float rel,
                         int* sc, int* q) {
  float s[16], smax = 0.0f, sm = 0.0f;
  for (int j = 0; j < nsub; ++j) {
    s[j] = sym_fit(x + j * len, len, g, ntry, rel, q + j * len);
    if (q_abs(s[j]) > smax) smax = q_abs(s[j]), sm = s[j];
  }
  for (int j = 0; j < nsub; ++j) sc[j] = 0;
  if (!(smax > 0.0f)) {
    for (int i = 0; i < nsub * len; ++i) q[i] = g.zero_index();
    return 0.0f;
  }
  const float cand[2] = {sm / (float)slo, smax / (float)shi};
  float best = q_inf(), best_d = 0.0f;
  int csc[16], cq[256];
  for (int ci = 0; ci < 2; ++ci) {
    float d = half_scale_nz(cand[ci]);
    for (int pass = 0; pass < 3 && d != 0.0f; ++pass) {
      float err = 0.0f;
      for (int j = 0; j < nsub; ++j) {
        csc[j] = qround(s[j] / d, slo, shi);
        err += sym2_sub(x + j * len, len, g, d, slo, shi, 1, csc[j], cq + j * len);
      }
      if (err < best) {
        best = err, best_d = d;
        for (int j = 0; j < nsub; ++j) sc[j] = csc[j];
        for (int i = 0; i < nsub * len; ++i) q[i] = cq[i];
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

}  // namespace rocq::quant
