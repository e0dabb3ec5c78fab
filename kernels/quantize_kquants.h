// Quantizers for the 256-element super-block formats: ggml's K-quants Q2_K, Q3_K, Q4_K, Q5_K,
// Q6_K, and IQ4_XS.
// One call quantizes one super-block: 256 fp32 values in, Codec<ID>::kBytes bytes out (layouts:
// kernels/formats.h). Host and device (quantize_common.h says what that requires).
// Input handling (NaN -> 0, saturation): quantize_blocks.h.
//
// Q2_K / Q4_K / Q5_K ("scale + min"): every sub-block gets its own least-squares affine fit
// x ~ a*q - m (asym_fit, m >= 0); the sub-block a's and m's are then quantized to 4/6-bit
// integers times fp16 super-scales d / dmin; each integer pair is searched +-1 on the exact
// decode error, and (d, dmin) are refitted by least squares for the chosen integers.
// Q3_K / Q6_K (symmetric): sym2_block (quantize_common.h), the same scheme without a min.
#pragma once

#include "quantize_common.h"

namespace rocq::quant {

constexpr int kQK = 256;

// Exact decode error of one sub-block for stored (dl, ml), x ~ rq_sub(rq_mul(dl, q), ml), with
// nearest codes; the codes go to q when q is not null. len: a multiple of 8.
ROCQ_HD float asym_sub_codes(const float* x, int len, int nmax, float dl, float ml, int* q) {
  const float id = dl > 0.0f ? 1.0f / dl : 0.0f, fmax = (float)nmax;
  float t[kMaxRun];
  for (int i = 0; i < len; ++i) {
    const float c = fround(clampf((x[i] + ml) * id, 0.0f, fmax));
    const float e = rq_sub(rq_mul(dl, c), ml) - x[i];
    t[i] = e * e;
  }
  if (q)
    for (int i = 0; i < len; ++i) q[i] = dl > 0.0f ? qround((x[i] + ml) * id, 0, nmax) : 0;
  return sum8(t, len);
}

// Best (sc, mn) within +-1 of the given pair for stored d, dmin; codes to q. Returns error.
ROCQ_HD float asym_sub_search(const float* x, int len, int nmax, int smax, float d, float dmin, int& sc, int& mn, int* q) {
  float best = q_inf();
  int bs = sc, bm = mn;
  for (int s = q_imax(0, sc - 1); s <= q_imin(smax, sc + 1); ++s)
    for (int m = q_imax(0, mn - 1); m <= q_imin(smax, mn + 1); ++m) {
      const float err = asym_sub_codes(x, len, nmax, rq_mul(d, (float)s), rq_mul(dmin, (float)m), nullptr);
      if (err < best) best = err, bs = s, bm = m;
    }
  if (sc > 1 || mn > 1) {  // (0, 0): the sub-block decodes to zeros; bounds the error by |x|^2
    const float err = asym_sub_codes(x, len, nmax, 0.0f, 0.0f, nullptr);
    if (err < best) best = err, bs = 0, bm = 0;
  }
  sc = bs, mn = bm;
  asym_sub_codes(x, len, nmax, rq_mul(d, (float)sc), rq_mul(dmin, (float)mn), q);
  return best;
}

// A super-scale for non-negative sub-scales v[0..n): the d (fp32) whose integer grid
// round(v/d) in [0, smax] reproduces v with the least weighted squared error; tries d =
// vmax/(smax - t/4) and the least-squares d for each resulting set of integers.
ROCQ_HD float grid_scale(const float* v, const float* wt, int n, int smax) {
  float vmax = 0.0f;
  for (int j = 0; j < n; ++j) vmax = q_max(vmax, v[j]);
  if (!(vmax > 0.0f)) return 0.0f;
  float best = q_inf(), bd = vmax / (float)smax;
  for (int t = 0; t < 8; ++t) {
    const float id = ((float)smax - 0.25f * (float)t) / vmax;
    float svs = 0.0f, sss = 0.0f;
    for (int j = 0; j < n; ++j) {
      const float q = fround(clampf(v[j] * id, 0.0f, (float)smax));
      svs += wt[j] * v[j] * q, sss += wt[j] * q * q;
    }
    if (!(sss > 0.0f)) continue;
    const float dd = svs / sss;
    float err = 0.0f;
    for (int j = 0; j < n; ++j) {
      const float e = dd * fround(clampf(v[j] / dd, 0.0f, (float)smax)) - v[j];
      err += wt[j] * e * e;
    }
    if (err < best) best = err, bd = dd;
  }
  return bd;
}

// Scale+min super-block. x: sanitized 256 values. Writes d, dmin, sc/mn[nsub], q[256].
ROCQ_HD void asym2_block(const float* x, int nsub, int nmax, int smax, int ntry, float step, float& d, float& dmin,
                 int* sc, int* mn, int* q) {
  const int len = kQK / nsub;
  float a[16], m[16], amax = 0.0f, mmax = 0.0f;
  for (int j = 0; j < nsub; ++j) {
    float b;
    asym_fit(x + j * len, len, nmax, true, ntry, step, a[j], b);
    m[j] = -b;
    amax = q_max(amax, a[j]), mmax = q_max(mmax, m[j]);
  }
  float wa[16], wm[16];
  for (int j = 0; j < nsub; ++j) {
    // Sensitivity of the sub-block error to its scale (sum of squared codes) and min (count).
    float s2 = 0.0f;
    for (int i = 0; i < len; ++i) {
      const float c = a[j] > 0.0f ? fround(clampf((x[j * len + i] + m[j]) / a[j], 0.0f, (float)nmax)) : 0.0f;
      s2 += c * c;
    }
    wa[j] = s2, wm[j] = (float)len;
  }
  (void)amax, (void)mmax;
  float cd = half_scale_nz(grid_scale(a, wa, nsub, smax)), cdm = half_scale_nz(grid_scale(m, wm, nsub, smax));
  float best = q_inf();
  int csc[16], cmn[16], cq[kQK];
  d = dmin = 0.0f;
  for (int j = 0; j < nsub; ++j) sc[j] = mn[j] = 0;
  for (int i = 0; i < kQK; ++i) q[i] = 0;
  for (int pass = 0; pass < 3; ++pass) {
    float err = 0.0f;
    for (int j = 0; j < nsub; ++j) {
      csc[j] = cd > 0.0f ? qround(a[j] / cd, 0, smax) : 0;
      cmn[j] = cdm > 0.0f ? qround(m[j] / cdm, 0, smax) : 0;
      err += asym_sub_search(x + j * len, len, nmax, smax, cd, cdm, csc[j], cmn[j], cq + j * len);
    }
    if (err < best) {
      best = err, d = cd, dmin = cdm;
      for (int j = 0; j < nsub; ++j) sc[j] = csc[j], mn[j] = cmn[j];
      for (int i = 0; i < kQK; ++i) q[i] = cq[i];
    }
    // Least squares for (d, dmin) with the integers fixed: x ~ d*u - dmin*v, u = sc*q, v = mn.
    double suu = 0, suv = 0, svv = 0, sxu = 0, sxv = 0;
    for (int j = 0; j < nsub; ++j)
      for (int i = 0; i < len; ++i) {
        const double u = (double)csc[j] * cq[j * len + i], v = cmn[j], xi = x[j * len + i];
        suu += u * u, suv += u * v, svv += v * v, sxu += xi * u, sxv += xi * v;
      }
    double nd, ndm;
    const double det = suu * svv - suv * suv;
    if (svv == 0.0) {
      if (!(suu > 0.0)) break;
      nd = sxu / suu, ndm = 0.0;
    } else if (det > 1e-12 * suu * svv) {
      nd = (sxu * svv - sxv * suv) / det;
      ndm = (sxu * suv - sxv * suu) / det;
    } else {
      break;
    }
    const float fd = half_scale((float)q_max_d(nd, 0.0)), fdm = half_scale((float)q_max_d(ndm, 0.0));
    if (fd == cd && fdm == cdm) break;
    // Keep the relative sub-block scales: rescale a, m so that the same integers come out.
    for (int j = 0; j < nsub; ++j) {
      a[j] = csc[j] * fd;
      m[j] = cmn[j] * fdm;
    }
    cd = fd, cdm = fdm;
  }
}

// 6-bit scale/min packing of Q4_K / Q5_K (scales[12]).
ROCQ_HD void pack_k4_scales(const int* sc, const int* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

ROCQ_HD void quantize_block_q4_k(const float* in, uint8_t* out) {
  static_assert(Codec<QT_Q4_K>::kElems == kQK);
  float x[kQK];
  int sc[8], mn[8], q[kQK];
  float d = 0.0f, dmin = 0.0f;
  if (sanitize(in, kQK, kHalfMax * 63.0f, x) < kTiny) {
    for (int j = 0; j < 8; ++j) sc[j] = mn[j] = 0;
    for (int i = 0; i < kQK; ++i) q[i] = 0;
  } else {
    asym2_block(x, 8, 15, 63, 8, 0.25f, d, dmin, sc, mn, q);
  }
  for (int i = 0; i < Codec<QT_Q4_K>::kBytes; ++i) out[i] = 0;
  put_half(out, d);
  put_half(out + 2, dmin);
  pack_k4_scales(sc, mn, out + 4);
  uint8_t* qs = out + 16;
  for (int e = 0; e < kQK; ++e) qs[32 * (e / 64) + e % 32] |= (uint8_t)((q[e] & 15) << (4 * ((e / 32) & 1)));
}

ROCQ_HD void quantize_block_q5_k(const float* in, uint8_t* out) {
  static_assert(Codec<QT_Q5_K>::kElems == kQK);
  float x[kQK];
  int sc[8], mn[8], q[kQK];
  float d = 0.0f, dmin = 0.0f;
  if (sanitize(in, kQK, kHalfMax * 63.0f, x) < kTiny) {
    for (int j = 0; j < 8; ++j) sc[j] = mn[j] = 0;
    for (int i = 0; i < kQK; ++i) q[i] = 0;
  } else {
    asym2_block(x, 8, 31, 63, 8, 0.5f, d, dmin, sc, mn, q);
  }
  for (int i = 0; i < Codec<QT_Q5_K>::kBytes; ++i) out[i] = 0;
  put_half(out, d);
  put_half(out + 2, dmin);
  pack_k4_scales(sc, mn, out + 4);
  uint8_t* qh = out + 16;
  uint8_t* qs = out + 48;
  for (int e = 0; e < kQK; ++e) {
    qs[32 * (e / 64) + e % 32] |= (uint8_t)((q[e] & 15) << (4 * ((e / 32) & 1)));
    qh[e % 32] |= (uint8_t)(((q[e] >> 4) & 1) << (e / 32));
  }
}

ROCQ_HD void quantize_block_q2_k(const float* in, uint8_t* out) {
  static_assert(Codec<QT_Q2_K>::kElems == kQK);
  float x[kQK];
  int sc[16], mn[16], q[kQK];
  float d = 0.0f, dmin = 0.0f;
  if (sanitize(in, kQK, kHalfMax * 15.0f, x) < kTiny) {
    for (int j = 0; j < 16; ++j) sc[j] = mn[j] = 0;
    for (int i = 0; i < kQK; ++i) q[i] = 0;
  } else {
    asym2_block(x, 16, 3, 15, 5, 0.16f, d, dmin, sc, mn, q);
  }
  for (int i = 0; i < Codec<QT_Q2_K>::kBytes; ++i) out[i] = 0;
  for (int j = 0; j < 16; ++j) out[j] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
  uint8_t* qs = out + 16;
  for (int e = 0; e < kQK; ++e) qs[32 * (e / 128) + e % 32] |= (uint8_t)((q[e] & 3) << (2 * ((e % 128) / 32)));
  put_half(out + 80, d);
  put_half(out + 82, dmin);
}

ROCQ_HD void quantize_block_q6_k(const float* in, uint8_t* out) {
  static_assert(Codec<QT_Q6_K>::kElems == kQK);
  float x[kQK];
  int sc[16] = {}, q[kQK] = {};
  float d = 0.0f;
  if (sanitize(in, kQK, kHalfMax * 127.0f * 31.0f, x) >= kTiny)
    d = sym2_block(x, IntGrid{-32, 31}, 16, 16, -128, 127, 6, 0.02f, sc, q);
  for (int i = 0; i < Codec<QT_Q6_K>::kBytes; ++i) out[i] = 0;
  uint8_t* ql = out;
  uint8_t* qh = out + 128;
  for (int e = 0; e < kQK; ++e) {
    const int h = e / 128, r = e % 128, u = q[e] + 32;
    ql[64 * h + r % 64] |= (uint8_t)((u & 15) << (4 * (r / 64)));
    qh[32 * h + r % 32] |= (uint8_t)((u >> 4) << (2 * (r / 32)));
  }
  for (int j = 0; j < 16; ++j) out[192 + j] = (uint8_t)(int8_t)sc[j];
  put_half(out + 208, d);
}

ROCQ_HD void quantize_block_q3_k(const float* in, uint8_t* out) {
  static_assert(Codec<QT_Q3_K>::kElems == kQK);
  float x[kQK];
  int sc[16] = {}, q[kQK] = {};
  float d = 0.0f;
  if (sanitize(in, kQK, kHalfMax * 31.0f * 3.0f, x) >= kTiny)
    d = sym2_block(x, IntGrid{-4, 3}, 16, 16, -32, 31, 3, 0.12f, sc, q);
  for (int i = 0; i < Codec<QT_Q3_K>::kBytes; ++i) out[i] = 0;
  uint8_t* hm = out;
  uint8_t* qs = out + 32;
  uint8_t* s = out + 96;
  for (int e = 0; e < kQK; ++e) {
    const int u = q[e] + 4;
    qs[32 * (e / 128) + e % 32] |= (uint8_t)((u & 3) << (2 * ((e % 128) / 32)));
    if (u & 4) hm[e % 32] |= (uint8_t)(1 << (e / 32));
  }
  for (int i = 0; i < 16; ++i) {
    const int ls = sc[i] + 32;
    if (i < 8)
      s[i] |= (uint8_t)(ls & 15);
    else
      s[i - 8] |= (uint8_t)((ls & 15) << 4);
    s[8 + (i & 3)] |= (uint8_t)(((ls >> 4) & 3) << (2 * (i >> 2)));
  }
  put_half(out + 108, d);
}

// IQ4_XS: 256-blocks of an fp16 super-scale times a signed 6-bit scale per 32 elements, with
// the 16-level table of IQ4_NL (Iq4Grid); sym_fit per sub-block, then sym2_block quantizes
// the sub-block scales.
ROCQ_HD void quantize_block_iq4_xs(const float* in, uint8_t* out) {
  constexpr int n = Codec<QT_IQ4_XS>::kElems;
  static_assert(n == 256);
  float x[n];
  int sc[8] = {}, q[n];
  const Iq4Grid g;
  float d = 0.0f;
  if (sanitize(in, n, kHalfMax * 31.0f * 113.0f, x) < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = g.zero_index();
  } else {
    d = sym2_block(x, g, 8, 32, -32, 31, 4, 0.05f, sc, q);
  }
  put_half(out, d);
  uint16_t sh = 0;
  uint8_t* sl = out + 4;
  sl[0] = sl[1] = sl[2] = sl[3] = 0;
  for (int j = 0; j < 8; ++j) {
    const int ls = sc[j] + 32;
    sl[j / 2] |= (uint8_t)((ls & 15) << (4 * (j & 1)));
    sh |= (uint16_t)(((ls >> 4) & 3) << (2 * j));
  }
  put16(out + 2, sh);
  for (int j = 0; j < 8; ++j) {
    const int* qj = q + 32 * j;
    for (int i = 0; i < 16; ++i) out[8 + 16 * j + i] = (uint8_t)(qj[i] | (qj[i + 16] << 4));
  }
}

}  // namespace rocq::quant
