// The streaming kernel's own integer pieces (stream_pieces.h): the K-quants' 64-element pieces,
// which sum codes times x per 16- or 32-element sub-block in integers and apply each sub-block's
// scale once (PieceIntK23Wide, PieceIntQ6Wide, PieceIntK45Wide), and the 16-level table formats'
// split-table pieces (PieceIntLut16Split). The register-blocked kernel's integer pieces, the
// fixed-point x they share, and what these build on: qdot_int.h.
#pragma once

#include "qdot_int.h"

namespace rocq::gpu {

// The 64-element pieces of Q2_K, Q3_K and Q6_K (8 quads: Q0 = 0, 8, 16, 24) take the 16-element
// runs at elem0(Q0) + 32 j, j = 0..3, of their 256-element block.
// sub(..., acc, acc2): adds a sub-block to acc; kSplitSums: to two sums per row instead (acc,
// acc2), which finish() scales and adds once per piece.
struct PieceInt64Runs {
  static constexpr bool kSplitSums = false;
  ROCQ_DEVICE static int elem0(int Q0) { return 128 * (Q0 / 16) + 16 * ((Q0 / 8) % 2); }
};

// Q2_K / Q3_K for the streaming kernel (stream_pieces.h StreamPieceSubs), 64 elements a piece:
// those whose 2-bit codes fill 16 qs bytes (half c, bytes 16 lh .. 16 lh + 15), i.e. fields j =
// 0..3 of those bytes: 4 sub-blocks of 16 elements (8c + 2j + lh), each inside one x block. Codes
// times x are summed per sub-block in integers and the sub-block's scale (and Q2_K's min) applied
// once per 16 elements, where the 2-quad pieces (PieceIntK23) convert and apply two scales and
// mins per 4 (from the SASS of the H200 build, M = 1, per weight and row: Q2_K ~7.3 instructions
// there, ~3.4 here; Q3_K ~10.6, ~4.8). The kernel feeds x one sub-block at a time (16 int16
// values in natural order, their sum, the x block's scale) to every row of the piece.
// Q2_K's codes stay in place in their bytes (field j times 4^j: one mask, no shift, unsigned bytes
// up to 192, |dot| * 15 < 2^31), the 4^-j folds into x's scale; its scale and min sums per row
// go apart (kSplitSums: f * sc * dot and f * X * min), d and dmin applied once per piece (finish).
// Per 16 elements and row that is 4 masks and 5 scale instructions instead of 7 and 7.
template <int ID>
struct PieceIntK23Wide : PieceInt64Runs {
  static constexpr bool kSplitSums = ID == QT_Q2_K;
  static constexpr bool kXSums = true;  // X from the kernel's x sums (stream_pieces.h qmv_stream_xsums)
  struct Row {
    uint32_t w[4], hm[4];  // qs words (fields j = 0..3); Q3_K: hmask words (bit j: load())
    uint32_t sc4;          // Q3_K: the 6-bit scales of sub-blocks j = 0..3, byte j (unsigned: + 32)
    float d, dmin;
  };
  // lo: blk's byte offset past a 4-byte boundary (the same for every row of the piece: the caller
  // computes it once)
  ROCQ_DEVICE static Row load(const uint8_t* blk, int lo, int Q0) {
    const int c = Q0 / 16, lh = (Q0 / 8) % 2;
    Row r;
    if constexpr (ID == QT_Q2_K) {  // 84-byte blocks: 4-byte aligned
#pragma unroll
      for (int i = 0; i < 4; ++i) r.w[i] = rq_g32(blk + 16 + 32 * c + 16 * lh + 4 * i);
      const uint32_t dd = rq_g32(blk + 80);
      r.d = rq_f16_to_f32((uint16_t)dd);
      r.dmin = rq_f16_to_f32((uint16_t)(dd >> 16));
    } else {  // 110-byte blocks: 2-byte aligned (the scales' extra word ends 2 bytes past the block)
      const uint32_t* a = reinterpret_cast<const uint32_t*>(blk - lo);
      const uint32_t sh = 8u * (uint32_t)lo;
      rq_g32n_sh<4>(a + 8 + 8 * c + 4 * lh, sh, r.w);
      rq_g32n_sh<4>(a + 4 * lh, sh, r.hm);
#pragma unroll
      for (int i = 0; i < 4; ++i) r.hm[i] >>= 4 * c;  // the piece's high bits j = 0..3 at bit j of each byte
      // The four sub-blocks' scales (sb = 8c + 2j + lh, Codec<QT_Q3_K>::scale) at once: low
      // nibbles c of bytes lh + 2j, high pairs at bits 4c + 2 (j / 2) of bytes 8 + (lh + 2j) % 4.
      uint32_t sw[3];
      rq_g32n_sh<3>(a + 24, sh, sw);
      const uint32_t slo = (rq_byte_perm(sw[0], sw[1], 0x6420u + 0x1111u * lh) >> (4 * c)) & 0x0F0F0F0Fu;
      const uint32_t hb = rq_byte_perm(sw[2], sw[2], 0x2020u + 0x1111u * lh) >> (4 * c);
      const uint32_t hi = (hb & 0x00000303u) | ((hb >> 2) & 0x03030000u);
      r.sc4 = slo | (hi << 4);
      r.d = rq_gf16(blk + 108);
      r.dmin = 0.f;
    }
    return r;
  }
  // The sub-block j part of the row: xw[m] the sub-block's 16 x values (int16 pairs), X[m] their
  // sum, f[m] the x block's scale. Q3_K adds it to acc; Q2_K adds f * sc * dot to acc and
  // f * X * min to acc2 (finish).
  template <int MT>
  ROCQ_DEVICE static void sub(const uint8_t* blk, int Q0, const Row& r, int j, const uint32_t (&xw)[MT][8],
                              const int (&X)[MT], const float (&f)[MT], float (&acc)[MT], float (&acc2)[MT]) {
    const int c = Q0 / 16, sb = 8 * c + 2 * j + (Q0 / 8) % 2;
    int s[MT] = {};
    if constexpr (ID == QT_Q2_K) {
#pragma unroll
      for (int i = 0; i < 4; ++i) rq_idot4_at<MT, 8, true>(r.w[i] & (0x03030303u << (2 * j)), xw, i, s);
      const uint32_t b = blk[sb];
      const int sc = (int)(b & 15u), mn = (int)(b >> 4);
      const float p = 1.f / (float)(1 << (2 * j));  // the codes' 4^j
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        acc[m] = fmaf(f[m] * p, (float)(sc * s[m]), acc[m]);
        acc2[m] = fmaf(f[m] * (float)X[m], (float)mn, acc2[m]);
      }
    } else {  // x = d * sc * (q - 4), q = low 2 bits | high bit << 2
      // q in place times p = 2^sl: the low field at bit sl of each byte (fields 0..2 where they
      // are, field 3 shifted down to 4), the high bit shifted up beside it; q * p <= 112, so the
      // bytes stay positive int8, and p * sum (q - 4) x is exact in int32 (|.| * 32 < 2^31).
      constexpr int kMaxSl = 4;
      const int sl = j < 3 ? 2 * j : kMaxSl;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t wj = j < 3 ? r.w[i] : r.w[i] >> 2;
        const uint32_t code = (wj & (0x03030303u << sl)) | ((r.hm[i] << (sl + 2 - j)) & (0x04040404u << sl));
        rq_idot4_at<MT>(code, xw, i, s);
      }
      const int sc = (int)((r.sc4 >> (8 * j)) & 0xFFu) - 32;
      const float inv_p = 1.f / (float)(1 << sl);
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[m] = fmaf(f[m] * inv_p * r.d, (float)(sc * (s[m] - (4 << sl) * X[m])), acc[m]);
    }
  }
  // Q2_K: the piece's two sums of a row into acc (x = d * sc * q - dmin * min).
  template <int MT>
  ROCQ_DEVICE static void finish(const Row& r, const float (&a)[MT], const float (&a2)[MT], float (&acc)[MT]) {
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(r.d, a[m], fmaf(-r.dmin, a2[m], acc[m]));
  }
};

// Q6_K for the streaming kernel (stream_pieces.h StreamPieceSubs), 64 elements a piece: half h,
// bytes 16 lh .. 16 lh + 15 of each 32-byte ql run and of the half's qh run, i.e. sub-blocks
// 8h + 2r + lh (r = 0..3: ql run r % 2, nibble r / 2, qh bits 2r), each inside x block 4h + r.
// Codes times x summed per 16-element sub-block in integers, the int8 scale applied once per 16
// (PieceInt<QT_Q6_K>: 4-quad pieces, scales per 16 but x read 4 elements at a time and every
// piece's words re-aligned). Used like PieceIntK23Wide (load once per row, sub() per sub-block).
struct PieceIntQ6Wide : PieceInt64Runs {
  static constexpr bool kXSums = false;  // (X summed here: stream_pieces.h qmv_stream_xsums)
  struct Row {
    uint32_t ql[8], qh[4];  // ql runs 0, 1 (4 words each), qh
    float d;
  };
  // 210-byte blocks: 2-byte aligned; lo as PieceIntK23Wide::load
  ROCQ_DEVICE static Row load(const uint8_t* blk, int lo, int Q0) {
    const int h = Q0 / 16, lh = (Q0 / 8) % 2;
    const uint32_t* a = reinterpret_cast<const uint32_t*>(blk - lo);
    const uint32_t sh = 8u * (uint32_t)lo;
    Row w;
    uint32_t t[4];
#pragma unroll
    for (int run = 0; run < 2; ++run) {
      rq_g32n_sh<4>(a + 16 * h + 8 * run + 4 * lh, sh, t);
#pragma unroll
      for (int i = 0; i < 4; ++i) w.ql[4 * run + i] = t[i];
    }
    rq_g32n_sh<4>(a + 32 + 8 * h + 4 * lh, sh, w.qh);
    w.d = rq_gf16(blk + 208);
    return w;
  }
  template <int MT>
  ROCQ_DEVICE static void sub(const uint8_t* blk, int Q0, const Row& w, int r, const uint32_t (&xw)[MT][8],
                              const int (&X)[MT], const float (&f)[MT], float (&acc)[MT], float (&)[MT]) {
    const int sb = 8 * (Q0 / 16) + 2 * r + (Q0 / 8) % 2;
    int s[MT] = {};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t code = ((w.ql[4 * (r % 2) + i] >> (4 * (r / 2))) & 0x0F0F0F0Fu) | (((w.qh[i] >> (2 * r)) & 0x03030303u) << 4);
      rq_idot4_at<MT>(code, xw, i, s);
    }
    const float dl = rq_mul(w.d, (float)(int8_t)blk[192 + sb]);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(f[m] * dl, (float)(s[m] - 32 * X[m]), acc[m]);  // |.| < 2^24: exact
  }
};

// Q4_K / Q5_K for the streaming kernel (stream_pieces.h StreamPieceK45), 64 elements a piece:
// group g = Q0 / 8 (32 qs bytes), sub-blocks 2g (low nibbles, run A) and 2g + 1 (high nibbles),
// each one x block. Codes times x summed per sub-block in integers, scale and min applied once
// per 32 elements; the scale pair unpacked once per 64 (PieceIntK45: per 32, and each piece's x
// read 4 elements at a time). The kernel passes both sub-blocks' x (16 int16 pairs each, in
// element order), their sums and scales.
template <bool Q5>
struct PieceIntK45Wide {
  template <int MT>
  ROCQ_DEVICE static void dot(const uint8_t* blk, int g, const uint32_t (&xa)[MT][16], const uint32_t (&xb)[MT][16],
                              const int (&XA)[MT], const int (&XB)[MT], const float (&fa)[MT], const float (&fb)[MT],
                              float (&acc)[MT]) {
    constexpr int kQs = Q5 ? 48 : 16;
    // 144- and 176-byte blocks in 16-byte aligned stage rows: 16-byte aligned
    const uint4 h = *reinterpret_cast<const uint4*>(blk);  // d, dmin, scales 0..11
    const uint32_t dm = h.x;
    uint32_t scp, mnp;
    rq_k4_pair(h.y, h.z, h.w, g, scp, mnp);
    int sA[MT] = {}, sB[MT] = {};
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const uint4 v = *reinterpret_cast<const uint4*>(blk + kQs + 32 * g + 16 * hh);
      const uint32_t w4[4] = {v.x, v.y, v.z, v.w};
      uint32_t q4[4] = {0u, 0u, 0u, 0u};
      if constexpr (Q5) {
        const uint4 qv = *reinterpret_cast<const uint4*>(blk + 16 + 16 * hh);
        q4[0] = qv.x; q4[1] = qv.y; q4[2] = qv.z; q4[3] = qv.w;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int wi = 4 * hh + i;  // word: elements 4 wi .. 4 wi + 3 of each sub-block
        uint32_t ca = w4[i] & 0x0F0F0F0Fu, cb = (w4[i] >> 4) & 0x0F0F0F0Fu;
        if constexpr (Q5) {
          ca |= ((q4[i] >> (2 * g)) & 0x01010101u) << 4;
          cb |= ((q4[i] >> (2 * g + 1)) & 0x01010101u) << 4;
        }
        rq_idot4_at<MT>(ca, xa, wi, sA);
        rq_idot4_at<MT>(cb, xb, wi, sB);
      }
    }
    const float d = rq_f16_to_f32((uint16_t)dm), dmin = rq_f16_to_f32((uint16_t)(dm >> 16));
    const int scA = (int)(scp & 0xFFu), scB = (int)(scp >> 8), mnA = (int)(mnp & 0xFFu), mnB = (int)(mnp >> 8);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float v = fmaf(fa[m], fmaf(d, (float)(scA * sA[m]), -dmin * (float)(mnA * XA[m])), acc[m]);
      acc[m] = fmaf(fb[m], fmaf(d, (float)(scB * sB[m]), -dmin * (float)(mnB * XB[m])), v);
    }
  }
};

// The same table formats for the streaming kernel (stream_pieces.h), which lays x out for them:
// each half of the table (codes 0..7, codes 8..15) holds levels of one sign, so the levels split
// into two magnitude tables of 8 bytes, read with one permute per 4 codes each; a code of the
// other half selects with its selector's bit 3 set, which replicates the sign bit of a magnitude
// byte: 0. The two halves' dot products are kept apart and subtracted at the end. Per 8 codes:
// 4 permutes, 1 XOR, 2 shifts (rq_lut16_runs: 8 permutes and ~6 mask operations) and 8 DP2A
// instead of 4: the integer-ALU pipe (permutes, masks, shifts) was the limit (ncu on the H200,
// MXFP4 M = 1: 55% of the instructions there, 21% of warp stalls waiting on it), the DP2A run on
// the multiply-add pipe. The four level bytes a word's low half selects are those of its nibbles
// 0..3 in order; for Q4_0 nibble order that is elements (4q, 16 + 4q, 4q + 1, 17 + 4q), so the
// kernel stores each 32-element x block as the pairs (x[j], x[16 + j]) (kPairX: run A of quad q
// is x positions 8q .. 8q + 3 of the block, run B the next 4); OCP MXFP4's nibbles are in element
// order, x as is (the same positions).
// Measured and not kept (H200, 70B FFN up M = 1, against 43.4 us MXFP4 / 41.8 OCP MXFP4 in
// bench_qmatmul_h200_s11f_B.json): for E2M1, levels biased by 64 so that the two halves' bytes
// OR into one word (4 DP2A per 8 codes instead of 8, 2 ORs more, the x sums): 45.5 / 42.6
// (bench_qmatmul_h200_s11g_biased_lut16.json); the shifts w >> 16 as mul.hi (IMAD.HI, off the
// integer-ALU pipe): 49.5 / 46.1 (s11h_imadhi_lut16). Integer-ALU work is the cost here, but not
// at any price on the multiply-add pipe.
template <int ID>
struct Lut16Split {
  static constexpr int level(int c) { return rq_lut16_level<ID>(c); }
  // the sign the nonzero levels of half h share
  static constexpr int sign(int h) { return level(8 * h + 7) < 0 ? -1 : 1; }
  static constexpr uint32_t mags(int h, int j) {  // magnitudes of codes 8h + 4j .. + 3, a byte each
    uint32_t w = 0;
    for (int b = 0; b < 4; ++b) {
      const int v = level(8 * h + 4 * j + b);
      w |= (uint32_t)(v < 0 ? -v : v) << (8 * b);
    }
    return w;
  }
  static constexpr bool valid() {
    for (int c = 0; c < 16; ++c) {
      const int v = level(c);
      if (v * sign(c / 8) < 0 || v > 127 || v < -127) return false;
    }
    return true;
  }
  static_assert(valid(), "each table half must hold levels of one sign, magnitudes below 128");
};

template <int ID>
struct PieceIntLut16Split {
  static constexpr bool kPairX = Lut16Block<ID>::kQ40;
  // The magnitude bytes of codes 0..3 and of codes 8..11 (the permutes' first operands; codes
  // 4..7 and 12..15 are immediates): the kernel passes them in registers loaded from shared
  // memory, tab[j] = tab_word(j). (As constants, ptxas copies one into a register before every
  // permute: 1 extra instruction per 4 codes.)
  static constexpr bool kTab = true;
  ROCQ_HD static constexpr uint32_t tab_word(int j) { return Lut16Split<ID>::mags(j, 0); }
  // (the kernel's call: NQ given, MT deduced. Measured and not kept: MXFP4's and OCP MXFP4's
  // block scale from the kernel's shared-memory E8M0 table, as the float pieces take it
  // (stream_pieces.h StreamPiece kE8): H200, M = 1, us, without / with it in one run, MXFP4 8B
  // FFN up 15.3 / 15.6 and 15.5 / 15.9 (70B FFN up 0.5-2% faster); OCP MXFP4 70B FFN up 39.4 /
  // 39.8, 8B 14.5 / 15.1; benchmarks/results/bench_qmatmul_h200_s14{a,c}_{A,B,A3,B3}.json.)
  // lo: blk's offset past a 4-byte boundary, which the kernel knows per thread (Lut16Block words_at).
  template <int NQ, int MT>
  ROCQ_DEVICE static void dot(const uint32_t (&tab)[2], const uint8_t* blk, int lo, int Q0, uint8_t sc,
                              const XIPiece<MT, NQ>& x, float (&acc)[MT]) {
    using L = Lut16Split<ID>;
    int s0[MT] = {}, s1[MT] = {};
    const float d = Lut16Block<ID>::scale(blk, Q0, sc);
    uint32_t ws[NQ];
    Lut16Block<ID>::template words_at<NQ>(blk, lo, Q0, ws);
    const uint32_t t0 = tab[0], t1 = tab[1];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const uint32_t w = ws[q], wn = w ^ 0x88888888u;
      rq_idot4<MT>(rq_prmt_sx(t0, L::mags(0, 1), w), x.a[q], s0);
      rq_idot4<MT>(rq_prmt_sx(t0, L::mags(0, 1), w >> 16), x.b[q], s0);
      rq_idot4<MT>(rq_prmt_sx(t1, L::mags(1, 1), wn), x.a[q], s1);
      rq_idot4<MT>(rq_prmt_sx(t1, L::mags(1, 1), wn >> 16), x.b[q], s1);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = fmaf(d * x.fa[0][m], (float)(L::sign(0) * s0[m] + L::sign(1) * s1[m]), acc[m]);
  }
};

}  // namespace rocq::gpu
