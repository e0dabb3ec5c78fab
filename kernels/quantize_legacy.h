// Quantizers for ggml's 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, GGUF's MXFP4
// and IQ4_NL. One call quantizes one block: 32 fp32 values in, Codec<ID>::kBytes bytes out
// (layouts: kernels/formats.h). Host and device (quantize_common.h says what that requires).
// Input handling (NaN -> 0, saturation): quantize_blocks.h.
//
// Each block is a small least-squares search (quantize_common.h) whose candidates always
// include the scale that gguf-py's reference quantizer would store; the final choice is made
// on the exact decode error, so no block is ever worse than gguf-py's.
//
// IQ4_NL: sym_fit sweeps scales mapping the largest element to either end of the table
// (-127 or +113), nearest-level codes, least-squares refit of the scale; the stored fp16 scale
// is chosen on the exact decode error.
#pragma once

#include "quantize_common.h"

namespace rocq::quant {

// Signed element of largest magnitude (the first one on ties, as numpy's argmax).
ROCQ_HD float signed_absmax(const float* x, int n) {
  float amax = -1.0f, xm = 0.0f;
  for (int i = 0; i < n; ++i)
    if (q_abs(x[i]) > amax) amax = q_abs(x[i]), xm = x[i];
  return xm;
}

// Symmetric 32-blocks (Q4_0, Q5_0, Q8_0): stored fp16 scale and codes in [lo, hi].
ROCQ_HD float sym32(const float* in, int lo, int hi, float ref_div, int ntry, float rel, int* q) {
  constexpr int n = 32;
  float x[n];
  const float amax = sanitize(in, n, kHalfMax * (float)-lo, x);
  const IntGrid g{lo, hi};
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return 0.0f;
  }
  float cand[3];
  cand[0] = sym_fit(x, n, g, ntry, rel, q);
  cand[1] = signed_absmax(x, n) / ref_div;  // gguf-py's scale
  cand[2] = 0.0f;                           // all zeros (wins only for blocks below fp16 range)
  return pick_half_scale(x, n, g, cand, 3, q);
}

// Exact decode error of stored (d, m) in an asymmetric block, codes to q.
ROCQ_HD float asym_codes(const float* x, int n, int nmax, float d, float m, int* q) {
  float err = 0.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) {
    const int c = d > 0.0f ? qround((x[i] - m) * id, 0, nmax) : 0;
    const float e = rq_add(rq_mul(d, (float)c), m) - x[i];
    q[i] = c;
    err += e * e;
  }
  return err;
}

// Asymmetric 32-blocks (Q4_1, Q5_1): stored fp16 (d, m) and codes in [0, nmax].
ROCQ_HD void asym32(const float* in, int nmax, float& d, float& m, int* q) {
  constexpr int n = 32;
  float x[n];
  sanitize(in, n, kHalfMax * 8.0f, x);
  float xmin = x[0], xmax = x[0];
  for (int i = 1; i < n; ++i) xmin = q_min(xmin, x[i]), xmax = q_max(xmax, x[i]);
  float a, b;
  asym_fit(x, n, nmax, false, 12, 0.25f, a, b);
  const float cd[3] = {a, (xmax - xmin) / (float)nmax, 0.0f};  // ours, gguf-py's, zeros
  const float cm[3] = {b, xmin, 0.0f};
  float best = q_inf();
  int tmp[n];
  d = m = 0.0f;
  for (int i = 0; i < n; ++i) q[i] = 0;
  for (int c = 0; c < 3; ++c) {
    const float dd = q_max(half_scale(cd[c]), 0.0f), mm = half_scale(cm[c]);
    const float err = asym_codes(x, n, nmax, dd, mm, tmp);
    if (err < best) {
      best = err, d = dd, m = mm;
      for (int i = 0; i < n; ++i) q[i] = tmp[i];
    }
  }
}

// Q4_0 nibble order: element j (< 16) low nibble of byte j, element j + 16 high nibble.
ROCQ_HD void pack_nibbles32(const int* u, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = (uint8_t)((u[j] & 15) | ((u[j + 16] & 15) << 4));
}
ROCQ_HD void pack_bit5(const int* u, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= (uint32_t)((u[j] >> 4) & 1) << j;
  for (int b = 0; b < 4; ++b) qh[b] = (uint8_t)(h >> (8 * b));
}

ROCQ_HD void quantize_block_q4_0(const float* x, uint8_t* out) {
  static_assert(Codec<QT_Q4_0>::kElems == 32);
  int q[32];
  const float d = sym32(x, -8, 7, -8.0f, 10, 0.025f, q);
  put_half(out, d);
  for (int i = 0; i < 32; ++i) q[i] += 8;
  pack_nibbles32(q, out + 2);
}

ROCQ_HD void quantize_block_q5_0(const float* x, uint8_t* out) {
  static_assert(Codec<QT_Q5_0>::kElems == 32);
  int q[32];
  const float d = sym32(x, -16, 15, -16.0f, 10, 0.0125f, q);
  put_half(out, d);
  for (int i = 0; i < 32; ++i) q[i] += 16;
  pack_bit5(q, out + 2);
  pack_nibbles32(q, out + 6);
}

ROCQ_HD void quantize_block_q8_0(const float* x, uint8_t* out) {
  static_assert(Codec<QT_Q8_0>::kElems == 32);
  int q[32];
  // gguf-py's reference scale is amax/127 (the grid is symmetric enough that its sign is moot).
  const float d = sym32(x, -128, 127, 127.0f, 4, 0.002f, q);
  put_half(out, d);
  for (int i = 0; i < 32; ++i) out[2 + i] = (uint8_t)(int8_t)q[i];
}

ROCQ_HD void quantize_block_q4_1(const float* x, uint8_t* out) {
  static_assert(Codec<QT_Q4_1>::kElems == 32);
  int q[32];
  float d, m;
  asym32(x, 15, d, m, q);
  put_half(out, d);
  put_half(out + 2, m);
  pack_nibbles32(q, out + 4);
}

ROCQ_HD void quantize_block_q5_1(const float* x, uint8_t* out) {
  static_assert(Codec<QT_Q5_1>::kElems == 32);
  int q[32];
  float d, m;
  asym32(x, 31, d, m, q);
  put_half(out, d);
  put_half(out + 2, m);
  pack_bit5(q, out + 4);
  pack_nibbles32(q, out + 8);
}

// MXFP4: the E8M0 exponent is chosen among the OCP rule's (floor(log2 amax) - 2, what gguf-py
// stores) and its two neighbours, on the exact decode error; each element takes the nearest
// finite code (first code on ties).
ROCQ_HD void quantize_block_mxfp4(const float* in, uint8_t* out) {
  constexpr int n = Codec<QT_MXFP4>::kElems;
  float x[n];
  const float amax = sanitize(in, n, kFltMax, x);
  int q[n] = {};
  int best_e = 0;
  if (amax > 0.0f) {
    const int e0 = ilog2f(amax) - 2 + 127;
    double best = q_inf_d();
    for (int e = e0 - 1; e <= e0 + 1; ++e) {
      const int ec = clampi(e, 0, 254);
      const float d = rq_e8m0_half((uint8_t)ec);
      float val[16];
      for (int c = 0; c < 16; ++c) val[c] = rq_mul(d, (float)rq_e2m1x2_value(c));
      double err = 0.0;
      int tmp[n];
      for (int i = 0; i < n; ++i) {
        double be = q_inf_d();
        int bc = 0;
        for (int c = 0; c < 16; ++c) {
          if (q_isinf(val[c])) continue;
          const double diff = q_abs_d((double)val[c] - (double)x[i]);
          if (diff < be) be = diff, bc = c;
        }
        tmp[i] = bc;
        err += be * be;
      }
      if (err < best) {
        best = err, best_e = ec;
        for (int i = 0; i < n; ++i) q[i] = tmp[i];
      }
    }
  }
  out[0] = (uint8_t)best_e;
  pack_nibbles32(q, out + 1);
}

ROCQ_HD void quantize_block_iq4_nl(const float* in, uint8_t* out) {
  constexpr int n = Codec<QT_IQ4_NL>::kElems;
  static_assert(n == 32);
  float x[n];
  int q[n];
  const Iq4Grid g;
  float d = 0.0f;
  if (sanitize(in, n, kHalfMax * 113.0f, x) < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = g.zero_index();
  } else {
    const float cand[2] = {sym_fit(x, n, g, 4, 0.05f, q), 0.0f};  // 0: zeros, for blocks below fp16 range
    d = pick_half_scale(x, n, g, cand, 2, q);
  }
  put_half(out, d);
  for (int j = 0; j < 16; ++j) out[2 + j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

}  // namespace rocq::quant
