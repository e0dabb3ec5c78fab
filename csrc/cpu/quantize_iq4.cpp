// CPU quantizers for the non-linear 4-bit formats IQ4_NL (32-blocks, one fp16 scale) and
// IQ4_XS (256-blocks: fp16 super-scale times a signed 6-bit scale per 32 elements). Both use
// the 16-level table of kernels/formats.h (Iq4Grid). Input handling: quantize_gguf.cpp.
//
// IQ4_NL: sym_fit sweeps scales mapping the largest element to either end of the table
// (-127 or +113), nearest-level codes, least-squares refit of the scale; the stored fp16 scale
// is chosen on the exact decode error. IQ4_XS: the same per sub-block, then sym2_block
// quantizes the sub-block scales (quantize_common.h).
#include "quantize_common.h"

namespace rocq::cpu::detail {

void quantize_block_iq4_nl(const float* in, uint8_t* out) {
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

void quantize_block_iq4_xs(const float* in, uint8_t* out) {
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

}  // namespace rocq::cpu::detail
