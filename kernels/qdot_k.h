// The K-quant pieces (Q2_K .. Q6_K) of the register-blocked decode kernel: see qdot.h for what
// a piece is and for the helpers (rq_cdot4: codes 0x80 | c as 1 + c/128 floats). Included by
// qdot.h, after the helpers and the ROCQ_PIECE_HEAD macro.
#pragma once

namespace rocq::gpu {

// Q4_K / Q5_K: quad Q = qs bytes 4Q..4Q+3, group g = Q/8 (32 qs bytes): A = sub-block 2g at
// element 64g + 4(Q%8) (low nibbles), B = sub-block 2g+1, 32 further (high nibbles).
// Scales and mins of sub-blocks 2g, 2g+1 from the 12 scale bytes (words s0, s1, s2):
// returns sc = scA | scB << 8, mn likewise.
ROCQ_DEVICE void rq_k4_pair(uint32_t s0, uint32_t s1, uint32_t s2, int g, uint32_t& sc, uint32_t& mn) {
  const uint32_t sh = (uint32_t)(g & 1) * 16u;
  const uint32_t h0 = (s0 >> sh) & 0xFFFFu, h1 = (s1 >> sh) & 0xFFFFu, h2 = (s2 >> sh) & 0xFFFFu;
  if (g < 2) {
    sc = h0 & 0x3F3Fu;
    mn = h1 & 0x3F3Fu;
  } else {
    sc = (h2 & 0x0F0Fu) | ((h0 >> 2) & 0x3030u);
    mn = ((h2 >> 4) & 0x0F0Fu) | ((h1 >> 2) & 0x3030u);
  }
}

template <int ID, bool Q5>
struct PieceK45 {
  ROCQ_DEVICE static int xa(int Q) { return 64 * (Q / 8) + 4 * (Q % 8); }
  ROCQ_DEVICE static int xb(int Q) { return 64 * (Q / 8) + 32 + 4 * (Q % 8); }
  ROCQ_PIECE_HEAD(false, 32, 2) {
    (void)sc; (void)lut;
    constexpr int kQs = Q5 ? 48 : 16;
    const uint32_t dm = rq_g32(blk);
    const uint32_t s0 = rq_g32(blk + 4), s1 = rq_g32(blk + 8), s2 = rq_g32(blk + 12);
    uint32_t w[NQ], qh[NQ];
    if constexpr (NQ == 2) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + kQs + 4 * Q0);
      w[0] = v.x; w[1] = v.y;
      if constexpr (Q5) {
        const uint2 h = *reinterpret_cast<const uint2*>(blk + 16 + 4 * (Q0 % 8));
        qh[0] = h.x; qh[1] = h.y;
      }
    } else {
#pragma unroll
      for (int q = 0; q < NQ; ++q) {
        w[q] = rq_g32(blk + kQs + 4 * (Q0 + q));
        if constexpr (Q5) qh[q] = rq_g32(blk + 16 + 4 * ((Q0 + q) % 8));
      }
    }
    const int g = Q0 / 8;
    uint32_t scp, mnp;
    rq_k4_pair(s0, s1, s2, g, scp, mnp);
    const float d = rq_f16_to_f32((uint16_t)dm), dmin = rq_f16_to_f32((uint16_t)(dm >> 16));
    const float dA = rq_mul(d, (float)(scp & 0xFFu)), dB = rq_mul(d, (float)(scp >> 8));
    const float mA = rq_mul(dmin, (float)(mnp & 0xFFu)), mB = rq_mul(dmin, (float)(mnp >> 8));
    float sA[MT], sB[MT];
    ROCQ_PZERO(sA);
    ROCQ_PZERO(sB);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      if constexpr (Q5) {
        rq_cdot4<MT>(rq_code5(w[q] << 2, (qh[q] >> (2 * g)) & 0x01010101u), x.a[q], sA);
        rq_cdot4<MT>(rq_code5(w[q] >> 2, (qh[q] >> (2 * g + 1)) & 0x01010101u), x.b[q], sB);
      } else {
        rq_cdot4<MT>(rq_code_lo4(w[q]), x.a[q], sA);
        rq_cdot4<MT>(rq_code_hi4(w[q]), x.b[q], sB);
      }
    }
    constexpr float kC = Q5 ? 32.f : 16.f;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float XA = x.sum_a(m), XB = x.sum_b(m);
      float v = acc[m];
      v = fmaf(dA, kC * (sA[m] - XA), v);
      v = fmaf(-mA, XA, v);
      v = fmaf(dB, kC * (sB[m] - XB), v);
      v = fmaf(-mB, XB, v);
      acc[m] = v;
    }
  }
};
template <> struct Piece<QT_Q4_K> : PieceK45<QT_Q4_K, false> {};
template <> struct Piece<QT_Q5_K> : PieceK45<QT_Q5_K, true> {};

// Q6_K: quad Q = ql bytes 4Q..4Q+3; h = Q/16, u = Q%16: A = elements 128h + 4u (low nibbles,
// qh bits 2(u/8)), B = A + 64 (high nibbles, qh bits 4 + 2(u/8)); qh word 8h + u%8;
// scales 8h + u/4 (A) and 8h + 4 + u/4 (B). Codes 0x80 | 2q.
template <>
struct Piece<QT_Q6_K> {
  ROCQ_DEVICE static int xa(int Q) { return 128 * (Q / 16) + 4 * (Q % 16); }
  ROCQ_DEVICE static int xb(int Q) { return 128 * (Q / 16) + 64 + 4 * (Q % 16); }
  ROCQ_PIECE_HEAD(false, 32, 2) {
    (void)sc; (void)lut;
    const int h = Q0 / 16, u = Q0 % 16;
    const float d = rq_gf16(blk + 208);
    const float dA = rq_mul(d, (float)(int8_t)blk[192 + 8 * h + u / 4]);
    const float dB = rq_mul(d, (float)(int8_t)blk[196 + 8 * h + u / 4]);
    const int shA = 2 * (u / 8);
    float sA[MT], sB[MT];
    ROCQ_PZERO(sA);
    ROCQ_PZERO(sB);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int Q = Q0 + q;
      const uint32_t w = rq_g32_any(blk + 4 * Q);
      const uint32_t qh = rq_g32_any(blk + 128 + 4 * (8 * h + (Q % 16) % 8));
      const uint32_t ca = ((w & 0x0F0F0F0Fu) << 1) | (((qh >> shA) & 0x03030303u) << 5) | 0x80808080u;
      const uint32_t cb = ((w >> 3) & 0x1E1E1E1Eu) | (((qh >> (shA + 4)) & 0x03030303u) << 5) | 0x80808080u;
      rq_cdot4<MT>(ca, x.a[q], sA);
      rq_cdot4<MT>(cb, x.b[q], sB);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = fmaf(dA, fmaf(64.f, sA[m], -96.f * x.sum_a(m)), acc[m]);
      acc[m] = fmaf(dB, fmaf(64.f, sB[m], -96.f * x.sum_b(m)), v);
    }
  }
};

// Q2_K / Q3_K: qs word wi = Q/2 holds bytes l..l+3 (l = 4(wi%8)) of 32-byte half c = wi/8; its
// 2-bit fields j = 0..3 are 4 runs of elements 128c + 32j + l..; quad Q takes runs A: j =
// 2(Q%2), B: j + 1 (so a pair of quads Q0, Q0+1 shares one word). Every run lies in one
// 16-element sub-block, 8c + 2j + l/16. The helpers below decode a quad's codes (one byte per
// element) and run scales; the fp32 pieces here and the integer ones (qdot_int.h) use them.
struct PieceK23Order {
  ROCQ_DEVICE static int xa(int Q) { return 128 * (Q / 16) + 64 * (Q % 2) + 4 * ((Q / 2) % 8); }
  ROCQ_DEVICE static int xb(int Q) { return xa(Q) + 32; }
};

// The fields a piece of a K23 block loads once (its quads Q0, Q0 + 1 share qs word Q0 / 2), and
// one quad's code bytes of runs A and B with the runs' value = dX * q - mX.
struct K23Fields {
  float d, dmin;  // dmin: Q2_K only
  uint32_t w, hm;  // hm: Q3_K only
  int c, l;
};
struct K23Quad {
  uint32_t ca, cb;
  float dA, mA, dB, mB;
};

// Q2_K: q 2-bit; scales[sb] = sc (low nibble) | mn << 4; value (d * sc) * q - dmin * mn.
// Q3_K: q 3-bit = 2 low bits (as Q2_K, qs at 32) | hmask bit (4c + j of bytes l..) << 2; value
// d * sc * (q - 4) with sc a signed 6-bit scale: dX = d * sc, mX = 4 dX.
template <int ID>
ROCQ_DEVICE K23Fields rq_k23_fields(const uint8_t* blk, int Q0) {
  const int wi = Q0 / 2, c = wi / 8, l = 4 * (wi % 8);
  if constexpr (ID == QT_Q2_K) {
    const uint32_t dd = rq_g32(blk + 80);
    return {rq_f16_to_f32((uint16_t)dd), rq_f16_to_f32((uint16_t)(dd >> 16)), rq_g32(blk + 16 + 4 * wi), 0u, c, l};
  } else {
    return {rq_gf16(blk + 108), 0.f, rq_g32_any(blk + 32 + 4 * wi), rq_g32_any(blk + l), c, l};
  }
}
template <int ID>
ROCQ_DEVICE K23Quad rq_k23_quad(const uint8_t* blk, const K23Fields& f, int Q) {
  const int jA = 2 * (Q % 2), sbA = 8 * f.c + 2 * jA + f.l / 16;
  uint32_t ca = (f.w >> (2 * jA)) & 0x03030303u, cb = (f.w >> (2 * jA + 2)) & 0x03030303u;
  if constexpr (ID == QT_Q2_K) {
    const uint32_t scA = blk[sbA], scB = blk[sbA + 2];
    return {ca, cb, rq_mul(f.d, (float)(scA & 15u)), rq_mul(f.dmin, (float)(scA >> 4)), rq_mul(f.d, (float)(scB & 15u)),
            rq_mul(f.dmin, (float)(scB >> 4))};
  } else {
    ca |= ((f.hm >> (4 * f.c + jA)) & 0x01010101u) << 2;
    cb |= ((f.hm >> (4 * f.c + jA + 1)) & 0x01010101u) << 2;
    const float dA = rq_mul(f.d, (float)Codec<QT_Q3_K>::scale(blk + 96, sbA));
    const float dB = rq_mul(f.d, (float)Codec<QT_Q3_K>::scale(blk + 96, sbA + 2));
    return {ca, cb, dA, 4.f * dA, dB, 4.f * dB};
  }
}

// fp32 pieces: codes 0x80 | q << (7 - BITS) are floats 1 + q / 2^BITS, so sum q x = 2^BITS (s - X).
template <int ID, int BITS>
struct PieceK23 : PieceK23Order {
  ROCQ_PIECE_HEAD(false, 32, 2) {
    (void)sc; (void)lut;
    const K23Fields f = rq_k23_fields<ID>(blk, Q0);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const K23Quad k = rq_k23_quad<ID>(blk, f, Q0 + q);
      float sA[MT], sB[MT];
      ROCQ_PZERO(sA);
      ROCQ_PZERO(sB);
      rq_cdot4<MT>((k.ca << (7 - BITS)) | 0x80808080u, x.a[q], sA);
      rq_cdot4<MT>((k.cb << (7 - BITS)) | 0x80808080u, x.b[q], sB);
      constexpr float kC = (float)(1 << BITS);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        const float XA = x.sa[q][m], XB = x.sb[q][m];
        float v = fmaf(k.dA, kC * (sA[m] - XA), acc[m]);
        v = fmaf(-k.mA, XA, v);
        v = fmaf(k.dB, kC * (sB[m] - XB), v);
        acc[m] = fmaf(-k.mB, XB, v);
      }
    }
  }
};
template <> struct Piece<QT_Q2_K> : PieceK23<QT_Q2_K, 2> {};
template <> struct Piece<QT_Q3_K> : PieceK23<QT_Q3_K, 3> {};

}  // namespace rocq::gpu
