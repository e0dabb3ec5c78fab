// The pieces the streaming decode kernel (qmatvec_stream.h) runs, and the layout of x in its
// shared memory that they read: StreamPiece<ID, MT> adapts the integer pieces (qdot_int.h) to
// that layout, with pieces of their own for the K-quants (64-element groups, rows run by the
// piece) and for OCP FP6/FP8 (elements decoded to fp32, StreamPieceMxF). Included by
// qmatvec_stream.h.
#pragma once

#include "qdot_int_stream.h"
#include "qmatvec_impl.h"

#include <type_traits>

namespace rocq::gpu {

// x in shared memory: the row's int16 values in 16-byte granules, granule g stored at
// g ^ ((g >> 3) & 7) ^ ((g >> 4) & 1) (an XOR swizzle inside each 128-byte line) so that the 8
// lanes of a 16-byte access phase land on 8 different bank groups, both where they read
// neighbouring blocks' runs (lanes 4 or 8 granules apart: the (g >> 3) term) and where four
// lanes share a 256-element block at elements 0, 16, 128, 144 (Q2_K, Q3_K, Q6_K: granules 0,
// 2, 16, 18 of a 32-granule block, which the (g >> 3) term alone put on two bank groups
// each: ncu on the H200, Q2_K at M = 1, 41% of shared wavefronts excessive, the x reads 2-way
// conflicted; the (g >> 4) bit separates them; H200, 70B FFN up, same run, us, before -> after:
// Q6_K M = 1 52.6 -> 51.4, M = 2 71.6 -> 66.1; Q2_K 26.5 -> 26.3, 44.3 -> 43.3; the other
// formats within 2%, benchmarks/results/bench_qmatmul_h200_s13d_{base,swz}.json). Then the row's
// k/32 block scales.
ROCQ_DEVICE int rq_xswz(int g) { return g ^ ((g >> 3) & 7) ^ ((g >> 4) & 1); }
// N x granules (16 bytes each) from the one whose swizzled byte offset is o = 16 * rq_xswz(g0),
// g0 a multiple of N (1, 2 or 4): w[4i..4i+3] = granule g0 + i, stored at o ^ 16 i (the swizzle
// XORs bits that g0 + i shares with g0). rq_xswz is linear over XOR, so a piece whose runs lie at
// granules g + d (g & d == 0: g + d == g ^ d) computes o for g once and reaches each run at
// o ^ 16 * rq_xswz(d), one XOR with a constant where d is (the swizzle recomputed per run was
// ~5 instructions a run: sm_90 SASS of the OCP FP6 loop).
template <int N>
ROCQ_DEVICE void rq_x_granules_at(const uint8_t* xg, int o, uint32_t (&w)[4 * N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const uint4 t = *reinterpret_cast<const uint4*>(xg + (o ^ (16 * i)));
    w[4 * i] = t.x;
    w[4 * i + 1] = t.y;
    w[4 * i + 2] = t.z;
    w[4 * i + 3] = t.w;
  }
}
template <int N>
ROCQ_DEVICE void rq_x_granules(const uint8_t* xg, int g0, uint32_t (&w)[4 * N]) {
  rq_x_granules_at<N>(xg, 16 * rq_xswz(g0), w);
}
// The two int16 x values of word w (low, high half) as floats (exact).
ROCQ_DEVICE void rq_xi16x2_to_f32(uint32_t w, float& lo, float& hi) {
  lo = (float)(int16_t)(w & 0xFFFFu);
  hi = (float)((int32_t)w >> 16);
}
// A 32-element block of int16 x (16 words, word j = elements 2j, 2j + 1) reordered as the pairs
// (x[j], x[16 + j]), j = 0..15 (StreamPiece kPairX).
ROCQ_DEVICE void rq_x_pairs(uint4 (&q)[4]) {
  uint32_t w[16], o[16];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    w[4 * j] = q[j].x;
    w[4 * j + 1] = q[j].y;
    w[4 * j + 2] = q[j].z;
    w[4 * j + 3] = q[j].w;
  }
#pragma unroll
  for (int j = 0; j < 16; ++j) o[j] = rq_byte_perm(w[j / 2], w[8 + j / 2], j % 2 ? 0x7632u : 0x5410u);
#pragma unroll
  for (int j = 0; j < 4; ++j) q[j] = make_uint4(o[4 * j], o[4 * j + 1], o[4 * j + 2], o[4 * j + 3]);
}
// The x rows' stride in shared memory (elements): k rounded up to 64, whole 128-byte lines (the
// swizzle's span), so that each row's swizzle stays inside the row. (Rounding to 256 would put
// every row at a multiple of 32 granules for any k, but costs shared memory that decides, at
// the margin, whether the kernel fits: Q5_1 at M = 2, k = 9600 did not. The 256-element formats,
// whose pieces rely on that alignment, have k % 256 == 0 anyway.)
ROCQ_HD constexpr int64_t qmv_stream_xstride(int64_t k) { return (k + 63) / 64 * 64; }
// Shared memory of mt rows of x: the rows (xe bytes an element: 2, int16; 4, the float pieces'
// fp32 copies of the same fixed-point values, StreamPieceMxF) and their k / 32 block scales.
// xs: bytes of x sums per 16 elements after the scales (QmvStreamCfg kXsBytes).
ROCQ_HD constexpr int64_t qmv_stream_xbytes(int64_t k, int mt, int xe, int xs) {
  return mt * (xe * qmv_stream_xstride(k) + 4 * (k / 32) + xs * (k / 16));
}
// Bytes an x element of an instance (format id, mt rows of x, ns stages): 4 for OCP FP6's float
// pieces at one row of x in three stages, 2 (int16) for the rest. FP6 is bound by integer-ALU
// work, and the conversion int16 -> fp32 where x is read was ~0.75 instructions per element
// and row: H200, 70B FFN up M = 1, E2M3 62.5 -> 58.9 us (bench_qmatmul_h200_s11i.json against
// s11f_B). FP8 was slower with it (E4M3 67.2 -> 69.1 us); two rows of x and the two-stage
// instance (long k, e.g. the 70B FFN down layer's 28672) keep int16, which fits.
ROCQ_HD constexpr int qmv_stream_xe(int id, int mt, int ns) {
  return (id == QT_OCP_MXFP6_E2M3 || id == QT_OCP_MXFP6_E3M2) && mt == 1 && ns == 3 ? 4 : 2;
}

// x sums per 16 elements (int32), which the kernel's prologue stores after the block scales where
// the piece has kXSums (QmvStreamCfg kXsBytes): Q2_K and Q3_K, whose pieces take a 16-element
// sub-block's sum X from there (StreamPieceSubs) instead of summing the sub-block's x (8 DP2A a
// thread and sub-block, where each x run serves 8 or 4 rows). Not Q6_K: its two stages and x fill kQmvStreamMaxSmem
// exactly on the 70B FFN down layer (k = 28672). Measured and not kept: Q4_K, Q5_K
// (StreamPieceK45: two sums per 32-element sub-block instead of 16 DP2A; a stage's loop 600 -> 593
// instructions at M = 2, 639 -> 614 at M = 1): H200, 70B FFN up, us, before / after in one run,
// M = 1 level, M = 2 slower, Q4_K 54.4 / 53.7 -> 56.8 / 56.5, Q5_K 62.0 / 61.0 -> 66.4 / 66.3
// (benchmarks/results/bench_qmatmul_h200_s15c_{A,B,A2,B2}). With the loads at a known misalignment
// (rq_g32n_sh: Q3_K, Q6_K, MXFP4, IQ4_NL) and Q2_K's min nibble without a stray 16-bit mask, in
// one change (sm_90 SASS, a stage's loop: Q2_K 1164 -> 1104 instructions, Q3_K 962 -> 844, MXFP4
// 973 -> 920): H200, 70B FFN up, us, before / after, two alternations in one run
// (benchmarks/results/bench_qmatmul_h200_s15a_{A,B,A2,B2}): Q2_K M = 1 26.1 / 26.2 -> 25.4 / 25.4
// (70% -> 71.5% of copy), M = 2 42.3 / 42.5 -> 39.2 / 39.3; Q3_K M = 2 62.3 -> 56.9 / 57.5 but
// M = 1 level (40.4 / 40.3 -> 40.5 / 41.0: not bound by its instructions there); MXFP4 M = 1
// 42.3 / 42.4 -> 41.7 / 42.0, IQ4_NL 42.8 / 42.6 -> 42.1 / 42.5; Q6_K, Q4_0 level.
// Where they are: right after the mt rows' nb block scales xs, row m's sum of elements
// [16 j, 16 j + 16) at [m * 2 nb + j] (the kernel writes them, StreamPieceSubs reads them).
template <typename F>
ROCQ_DEVICE auto qmv_stream_xsums(F* xs, int mt, int nb) {
  using I = typename std::conditional<std::is_const<F>::value, const int, int>::type;
  return reinterpret_cast<I*>(xs + mt * nb);
}

// The pieces the streaming kernel runs (StreamPiece<ID, MT>): the integer pieces (qdot_int.h),
// but for one row of x the split-table ones for the 16-level table formats (PieceIntLut16Split:
// 8 DP2A per 8 codes instead of 4, a loss at two rows, where the DP2A double: H200, 8B FFN up,
// OCP MXFP4 M = 2 20.8 -> 23.6 us). xa/xb: a quad's x runs in the order the kernel stores x
// (kPairX: StreamPiece's own order). kTab: the piece takes two table words in registers
// (tab_word). kSpan: the piece's x runs lie in one 32-element x block, at xspan(Q0), runs A and B
// of quad q at xspan(Q0) + span_a(q) / span_b(q): the kernel loads that block whole, 4 x 16 bytes.
template <int ID, int MT, bool SPLIT = (MT == 1 && (ID == QT_IQ4_NL || ID == QT_IQ4_XS || ID == QT_MXFP4 ||
                                                     ID == QT_OCP_MXFP4))>
struct StreamPiece {
  static constexpr bool kPairX = false, kTab = false, kOwnRows = false;
  // kXSums: the piece reads the x sums per 16 elements the kernel stores (qmv_stream_xsums)
  static constexpr bool kXSums = false;
  // kE8: the piece's rows() takes its rows' E8M0 scales decoded, e8(byte), from a 256-entry table
  // the kernel builds in shared memory (rq_e8m0 costs 5-6 instructions a row and unit: two
  // compares, a shift, two selects); only the float pieces (StreamPieceMxF) have it
  static constexpr bool kE8 = false;
  // the 32-element formats' pieces take a whole block (QmvStreamCfg: NQ = 4 quads, one piece per unit)
  static constexpr bool kSpan = Codec<ID>::kElems == 32;
  ROCQ_HD static constexpr uint32_t tab_word(int) { return 0; }
  ROCQ_DEVICE static int xa(int Q) { return Piece<ID>::xa(Q); }
  ROCQ_DEVICE static int xb(int Q) { return Piece<ID>::xb(Q); }
  ROCQ_DEVICE static int xspan(int) { return 0; }
  ROCQ_DEVICE static constexpr int span_a(int q) { return Piece<ID>::xa(q); }
  ROCQ_DEVICE static constexpr int span_b(int q) { return Piece<ID>::xb(q); }
  // (lo: as rows(); the split-table pieces use it)
  template <int NQ>
  ROCQ_DEVICE static void dot(const uint32_t (&)[2], const uint8_t* blk, int, int Q0, uint8_t sc, const XIPiece<MT, NQ>& x,
                              float (&acc)[MT]) {
    PieceInt<ID>::template dot<MT, NQ>(blk, Q0, sc, x, acc);
  }
};
// Q2_K, Q3_K, Q6_K: 8-quad pieces of 4 sub-blocks of 16 elements (qdot_int_stream.h PieceIntK23Wide,
// PieceIntQ6Wide: W), both row counts, which run the rows of a piece themselves (kOwnRows:
// rows()), x one 16-element sub-block at a time, so that x for the piece's 64 elements is never
// live at once. (rows() also gets the RT rows' E8M0 scales, sc, decoded where the piece has kE8; XE,
// the bytes of an x element, qmv_stream_xe: 2 for every piece but StreamPieceMxF's; and lo, blk's
// offset past a 4-byte boundary, the same for the thread's every row and stage, with which
// Q3_K's and Q6_K's 2-byte aligned blocks read their words, rq_g32n_sh.)
struct StreamOwnRows {  // the flags of the pieces that run their rows themselves
  static constexpr bool kPairX = false, kTab = false, kSpan = false, kOwnRows = true, kE8 = false, kXSums = false;
  ROCQ_HD static constexpr uint32_t tab_word(int) { return 0; }
};
template <typename W>
struct StreamPieceSubs : StreamOwnRows {
  static constexpr bool kXSums = W::kXSums;  // X of a sub-block from the kernel's sums (qmv_stream_xsums)
  // x: xg the swizzled int16 granules (rows kx apart), xs the block scales (rows nb apart); the
  // piece's unit starts at element e0; its RT rows' bytes at blk, row_bytes apart.
  template <int MT, int RT, int XE>
  ROCQ_DEVICE static void rows(const uint8_t* xg, int kx, const float* xs, int nb, int e0, int Q0, const uint8_t* blk,
                               int lo, int row_bytes, const float (&)[RT], float (&acc)[RT][MT]) {
    static_assert(XE == 2, "int16 x");
    typename W::Row rw[RT];
    float part[RT][MT], part2[RT][MT];  // W::kSplitSums: the piece's two sums per row (W::finish)
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      rw[r] = W::load(blk + r * row_bytes, lo, Q0);
#pragma unroll
      for (int m = 0; m < MT; ++m) part[r][m] = part2[r][m] = 0.f;
    }
    const int ef = e0 + W::elem0(Q0);
    // run j's granules at (m kx + ef) / 8 + 4 j: ef / 8 is 0, 2, 16 or 18 past a multiple of 32
    // (e0, a unit's start, and m kx are multiples of 256 elements: these formats' k is, and so
    // their x stride, qmv_stream_xstride), so bits 2-3 are free for 4 j
    int xo[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xo[m] = 16 * rq_xswz((m * kx + ef) >> 3);
    const int* xsum = qmv_stream_xsums(xs, MT, nb) + (ef >> 4);  // (kXSums) sub-block j of row m: [m * 2 nb + 2 j]
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t xw[MT][8];
      int X[MT];
      float f[MT];
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        const int e = ef + 32 * j;  // 16 elements from a multiple of 16
        rq_x_granules_at<2>(xg, xo[m] ^ (16 * rq_xswz(4 * j)), xw[m]);
        if constexpr (kXSums) X[m] = xsum[m * 2 * nb + 2 * j];
        else X[m] = rq_xi_sum(xw[m]);
        f[m] = xs[m * nb + e / 32];
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        W::template sub<MT>(blk + r * row_bytes, Q0, rw[r], j, xw, X, f, W::kSplitSums ? part[r] : acc[r], part2[r]);
      }
    }
    if constexpr (W::kSplitSums) {
#pragma unroll
      for (int r = 0; r < RT; ++r) W::template finish<MT>(rw[r], part[r], part2[r], acc[r]);
    }
  }
};
template <int MT> struct StreamPiece<QT_Q2_K, MT, false> : StreamPieceSubs<PieceIntK23Wide<QT_Q2_K>> {};
template <int MT> struct StreamPiece<QT_Q3_K, MT, false> : StreamPieceSubs<PieceIntK23Wide<QT_Q3_K>> {};
template <int MT> struct StreamPiece<QT_Q6_K, MT, false> : StreamPieceSubs<PieceIntQ6Wide> {};

// Q4_K, Q5_K: 8-quad pieces (qdot_int_stream.h PieceIntK45Wide: one 64-element group of a block),
// running their rows themselves like StreamPieceSubs, both sub-blocks' x loaded whole once per
// piece (4 x 16 bytes each).
template <bool Q5>
struct StreamPieceK45 : StreamOwnRows {
  template <int MT, int RT, int XE>
  ROCQ_DEVICE static void rows(const uint8_t* xg, int kx, const float* xs, int nb, int e0, int Q0, const uint8_t* blk,
                               int, int row_bytes, const float (&)[RT], float (&acc)[RT][MT]) {
    static_assert(XE == 2, "int16 x");
    const int g = Q0 / 8;
    uint32_t xa[MT][16], xb[MT][16];
    int XA[MT], XB[MT];
    float fa[MT], fb[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const int e = e0 + 64 * g;  // sub-block A: 32 elements from a multiple of 32, B the next 32
      const int xo = 16 * rq_xswz((m * kx + e) >> 3);  // (a multiple of 8 granules; B 4 past it)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        uint32_t (&xw)[16] = h ? xb[m] : xa[m];
        rq_x_granules_at<4>(xg, xo ^ (16 * rq_xswz(4 * h)), xw);
        (h ? XB : XA)[m] = rq_xi_sum(xw);
        (h ? fb : fa)[m] = xs[m * nb + (e + 32 * h) / 32];
      }
    }
#pragma unroll
    for (int r = 0; r < RT; ++r) PieceIntK45Wide<Q5>::template dot<MT>(blk + r * row_bytes, g, xa, xb, XA, XB, fa, fb, acc[r]);
  }
};
template <int MT> struct StreamPiece<QT_Q4_K, MT, false> : StreamPieceK45<false> {};
template <int MT> struct StreamPiece<QT_Q5_K, MT, false> : StreamPieceK45<true> {};

// OCP FP8 and FP6 (qdot_int.h kStreamFloat): a piece is one whole 32-element block of each of the
// thread's RT rows (kOwnRows), decoded in 8-element runs to fp32 and multiplied by the fixed-point
// x as fp32 (exact products), two partial sums a row; the block's E8M0 scale and x scale once a
// row. x is int16 or, for some instances, fp32 copies of the same values (qmv_stream_xe).
// MxFloatRun<ID>: the block's kWords words (load) and run h's 8 elements (run), as the value
// times kFold^-1 (exact).
template <int ID>
struct MxFloatRun;
// FP8 E4M3: rq_e4m3x4 (qdot.h: the hardware conversion where the target has one, NaN kept).
template <>
struct MxFloatRun<QT_OCP_MXFP8_E4M3> {
  static constexpr int kWords = 8;
  static constexpr float kFold = 1.f;
  ROCQ_DEVICE static void load(const uint8_t* blk, uint32_t (&w)[kWords]) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const uint4 v = *reinterpret_cast<const uint4*>(blk + 16 * i);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  }
  ROCQ_DEVICE static void run(const uint32_t (&w)[kWords], int h, float (&f)[8]) {
    float a[4], b[4];
    rq_e4m3x4(w[2 * h], a);
    rq_e4m3x4(w[2 * h + 1], b);
#pragma unroll
    for (int j = 0; j < 4; ++j) f[j] = a[j], f[4 + j] = b[j];
  }
};
// FP8 E5M2: the top byte of an IEEE half (exact, inf/NaN kept).
template <>
struct MxFloatRun<QT_OCP_MXFP8_E5M2> : MxFloatRun<QT_OCP_MXFP8_E4M3> {
  ROCQ_DEVICE static void run(const uint32_t (&w)[kWords], int h, float (&f)[8]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t w2 = w[2 * h + j / 2];
      const uint32_t hh = j % 2 ? rq_e5m2x2_to_f16x2<true>(w2) : rq_e5m2x2_to_f16x2(w2);
      f[2 * j] = rq_lo_half(hh);
      f[2 * j + 1] = rq_hi_half(hh);
    }
  }
};
// FP6 (MB mantissa bits, bias B; formats_mx.h: 4 codes per little-endian 24-bit group, the block's
// 24 bytes one bit string): code i's sign bit (bit 6i + 5 of the string) shifted to bit 31 (one
// shift, a funnel shift where the code straddles two words), then an arithmetic shift puts the 5
// magnitude bits under fp32's exponent and mantissa fields (3 + MB places) and a mask clears the
// copies of the sign: the value times 2^(B-127) (an fp32 subnormal for exponent 0). 3 integer
// operations an element (Codec::elem: ~5 and a multiply).
template <int MB, int B>
struct MxFloatRunFp6 {
  static constexpr int kWords = 6;
  static_assert(B == 1 || B == 3, "E2M3, E3M2");
  static constexpr float kFold = B == 1 ? 0x1p126f : 0x1p124f;  // 2^(127 - B)
  ROCQ_DEVICE static void load(const uint8_t* blk, uint32_t (&w)[kWords]) {
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * i);
      w[2 * i] = v.x, w[2 * i + 1] = v.y;
    }
  }
  ROCQ_DEVICE static void run(const uint32_t (&w)[kWords], int h, float (&f)[8]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int q = 6 * (8 * h + j) + 5, wi = q / 32, b = q % 32;  // the sign bit
      const uint32_t t = b >= 5 ? w[wi] << (31 - b) : (w[wi] << (31 - b)) | (w[wi - 1] >> (b + 1));
      f[j] = rq_bits_to_float((uint32_t)((int32_t)t >> (3 + MB)) & (0x80000000u | (0x1Fu << (23 - MB))));
    }
  }
};
// FP6 E2M3: the same fp32 bits in two operations a code. E2M3's pattern has the sign 11 bits
// above the magnitude's low bit (31 and 20), and 11 bits above a code's low bit lies the next
// code's sign. So load() builds, over the block's 192-bit string, C = (S & ~signs) | ((S & signs)
// << 6), each sign moved into the next code's sign slot (7 words: the last sign moves past the
// block); code i's pattern is then the 32-bit window of C that ends at bit 6 i + 11 (a shift or
// a funnel shift), masked. load() costs ~0.6 operations a code (a mask, a funnel shift and a
// merge per word), so ~2.6 a code against 3. (E3M2's sign sits 10 bits above its magnitude's low
// bit, where the next code's magnitude is: MxFloatRunFp6.)
struct MxFloatRunE2M3 {
  static constexpr int kWords = 7;
  static constexpr float kFold = 0x1p126f;  // 2^(127 - bias)
  ROCQ_HD static constexpr uint32_t signs(int k) {  // the sign bits of word k (period 3 words)
    return k % 3 == 0 ? 0x20820820u : (k % 3 == 1 ? 0x08208208u : 0x82082082u);
  }
  ROCQ_DEVICE static void load(const uint8_t* blk, uint32_t (&c)[kWords]) {
    uint32_t w[6];
    MxFloatRunFp6<3, 1>::load(blk, w);
    uint32_t prev = 0;  // the signs of the word before
#pragma unroll
    for (int k = 0; k < 6; ++k) {
      const uint32_t sg = w[k] & signs(k);
      c[k] = (w[k] & ~signs(k)) | rq_funnel(prev, sg, 26);  // (sg << 6 | prev >> 26)
      prev = sg;
    }
    c[6] = prev >> 26;
  }
  ROCQ_DEVICE static void run(const uint32_t (&c)[kWords], int h, float (&f)[8]) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int p = 6 * (8 * h + j), q = p - 20;  // code's low bit; its window's low bit in C
      const uint32_t win = q < 0 ? c[0] << -q : (q % 32 ? rq_funnel(c[q / 32], c[q / 32 + 1], q % 32) : c[q / 32]);
      f[j] = rq_bits_to_float(win & 0x81F00000u);
    }
  }
};
template <> struct MxFloatRun<QT_OCP_MXFP6_E2M3> : MxFloatRunE2M3 {};
template <> struct MxFloatRun<QT_OCP_MXFP6_E3M2> : MxFloatRunFp6<2, 3> {};

template <int ID>
struct StreamPieceMxF : StreamOwnRows {
  static constexpr bool kE8 = true;
  ROCQ_HD static float e8(uint8_t e) { return rq_e8m0(e); }
  template <int MT, int RT, int XE>  // XE: bytes an x element (qmv_stream_xe); sc: the rows' e8()
  ROCQ_DEVICE static void rows(const uint8_t* xg, int kx, const float* xs, int nb, int e0, int, const uint8_t* blk, int,
                               int row_bytes, const float (&sc)[RT], float (&acc)[RT][MT]) {
    using D = MxFloatRun<ID>;
    uint32_t w[RT][D::kWords];
    float s[RT][MT][2];
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      D::load(blk + r * row_bytes, w[r]);
#pragma unroll
      for (int m = 0; m < MT; ++m) s[r][m][0] = s[r][m][1] = 0.f;
    }
    // the block's x granules: fp32 (m kx + e0) / 4 + 2 h, int16 (m kx + e0) / 8 + h, from a
    // multiple of 8 / 4 (rq_x_granules_at)
    int xo[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) xo[m] = 16 * rq_xswz((m * kx + e0) / (XE == 4 ? 4 : 8));
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      float xf[MT][8];
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if constexpr (XE == 4) {
          uint32_t xw[8];
          rq_x_granules_at<2>(xg, xo[m] ^ (16 * rq_xswz(2 * h)), xw);
#pragma unroll
          for (int j = 0; j < 8; ++j) xf[m][j] = rq_bits_to_float(xw[j]);
        } else {
          uint32_t xw[4];
          rq_x_granules_at<1>(xg, xo[m] ^ (16 * rq_xswz(h)), xw);
#pragma unroll
          for (int j = 0; j < 4; ++j) rq_xi16x2_to_f32(xw[j], xf[m][2 * j], xf[m][2 * j + 1]);
        }
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        float f[8];
        D::run(w[r], h, f);
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int m = 0; m < MT; ++m) s[r][m][j & 1] = fmaf(f[j], xf[m][j], s[r][m][j & 1]);
      }
    }
#pragma unroll
    for (int r = 0; r < RT; ++r) {
#pragma unroll
      for (int m = 0; m < MT; ++m) acc[r][m] = fmaf(sc[r], (s[r][m][0] + s[r][m][1]) * D::kFold * xs[m * nb + e0 / 32], acc[r][m]);
    }
  }
};
template <int MT> struct StreamPiece<QT_OCP_MXFP8_E4M3, MT, false> : StreamPieceMxF<QT_OCP_MXFP8_E4M3> {};
template <int MT> struct StreamPiece<QT_OCP_MXFP8_E5M2, MT, false> : StreamPieceMxF<QT_OCP_MXFP8_E5M2> {};
template <int MT> struct StreamPiece<QT_OCP_MXFP6_E2M3, MT, false> : StreamPieceMxF<QT_OCP_MXFP6_E2M3> {};
template <int MT> struct StreamPiece<QT_OCP_MXFP6_E3M2, MT, false> : StreamPieceMxF<QT_OCP_MXFP6_E3M2> {};

template <int ID, int MT>
struct StreamPiece<ID, MT, true> : PieceIntLut16Split<ID> {  // (its dot: qdot_int_stream.h)
  static constexpr bool kSpan = true, kOwnRows = false, kE8 = false, kXSums = false;
  ROCQ_DEVICE static int xspan(int Q0) { return 32 * (Q0 / 4); }  // 4 quads per 32 elements
  ROCQ_DEVICE static constexpr int span_a(int q) { return 8 * q; }
  ROCQ_DEVICE static constexpr int span_b(int q) { return 8 * q + 4; }
};

}  // namespace rocq::gpu
