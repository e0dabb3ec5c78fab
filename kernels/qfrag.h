// Fragment decoders: a format's weights decoded straight into matrix-unit operands (platform.h
// rq_mma_frag), for the qmma kernel (qmma_impl.h). Device code for NVIDIA sm_80+ only (see
// kRqMmaFrag); every pass sees kQFragOn, the one list of formats that have a decoder.
//
// The kernel walks a weight row in chunks of kC elements (whole scale groups, inside one block).
// A chunk is kS products of 16 k each ("steps"); in step s, lane quarter t (0..3, platform.h)
// supplies the 4 k positions that start at chunk offset xo(s, t) (4 consecutive elements: the
// kernel loads the matching x with one 8-byte load). Steps s of group s / (kS / kG) share one
// scale. Each decoder:
//   x0(c)                       element offset (in the row) that xo() counts from;
//   Raw load(win, i, t)         the lane's raw bytes of chunk i of a window (kWC chunks, whole
//                               blocks) of one row, win: the window's first byte as the kernel
//                               staged it in shared memory (i is a constant in whole windows,
//                               so the offsets fold); formats with a scale plane (OCP MX)
//                               leave Raw::e, the chunk's E8M0 byte, to the kernel;
//   decode<OP>(raw, a, sc, mn)  a[s][0], a[s][1]: the step's 4 codes as operand pairs (e0,e1),
//                               (e2,e3), exact small integers; sc[grp] the fp32 scale, so that
//                               W = sc * code (- mn * 1 when kMin: the kernel subtracts
//                               mn * sum(x) over the group, sum(x) from a product with ones).
// The scales are computed with the same fp32 operations as the codec (formats.h) and every code
// is exact in the operand type, so W * x products are exact; only the fp32 summation order
// differs from the fp32 pieces.
#pragma once

#include "qdot.h"

namespace rocq::gpu {

template <int ID>
inline constexpr bool kQFragOn = ID == QT_Q4_0 || ID == QT_Q4_1 || ID == QT_Q5_0 || ID == QT_Q5_1 || ID == QT_Q8_0 ||
                                 ID == QT_Q4_K || ID == QT_Q5_K || ID == QT_Q6_K || ID == QT_IQ4_NL ||
                                 ID == QT_IQ4_XS || ID == QT_MXFP4 || ID == QT_OCP_MXFP4 ||
                                 ID == QT_OCP_MXFP8_E4M3 || ID == QT_OCP_MXFP8_E5M2;

// Chunk size (elements) and chunks per shared-memory window (whole blocks, 128-272 bytes of a
// row, a multiple of 4 bytes) of each format's decoder; visible to host code (the kernel's
// shared-memory size).
template <int ID>
struct QFragWin {
  static constexpr bool kK = ID == QT_Q4_K || ID == QT_Q5_K || ID == QT_Q6_K;
  static constexpr int kElems = kK ? 64 : 32;
  static constexpr int kChunks = ID == QT_MXFP4 ? 16                       // 17-byte blocks: 272 bytes
                                 : ID == QT_Q8_0 || kK ? 4                 // Q8_0: 136 bytes; K: one block
                                 : ID == QT_OCP_MXFP8_E4M3 || ID == QT_OCP_MXFP8_E5M2 ? 4  // 128 bytes
                                                                          : 8;  // 128-192 bytes, IQ4_XS one block
  // window starts in shared memory are then 4-byte aligned (qf_ld32, rq_g32), Q6_K's 2-byte
  // aligned (its decoder uses 2-byte loads); Q4_0's odd/even block parity assumes 8 per window
  static constexpr int kBytes = kChunks * kElems / Unit<Codec<ID>>::kElems * Unit<Codec<ID>>::kBytes;
  static_assert(kBytes % 4 == 0 || (ID == QT_Q6_K && kBytes % 2 == 0), "window alignment the decoders rely on");
};

template <int ID>
struct QFrag;

#if defined(ROCQ_MMA_NV)
// 32 bits at byte offset `off` of a 4-byte aligned shared-memory window (two aligned loads and a
// funnel shift unless aligned; `off` is a constant where the kernel unrolls a window).
ROCQ_DEVICE uint32_t qf_ld32(const uint8_t* base, int off) {
  const int a = off & ~3, sh = (off & 3) * 8;
  const uint32_t lo = rq_g32(base + a);
  return sh ? rq_funnel(lo, rq_g32(base + a + 4), sh) : lo;
}

// Operand bit patterns: M = 128 (bf16, 7 mantissa bits) or 1024 (fp16, 10 bits), so M + c is
// exact for a code byte c < 128 (bf16) or < 256 (fp16), with c in the low mantissa bits.
template <RqOp OP>
struct QfOp {
  static constexpr uint32_t kHiByte4 = OP == RqOp::BF16 ? 0x43434343u : 0x64646464u;
  static constexpr uint32_t kOne2 = OP == RqOp::BF16 ? 0x3F803F80u : 0x3C003C00u;  // (1.0, 1.0)
  // (M + off, M + off)
  static constexpr uint32_t bias2(uint32_t off) {
    return ((OP == RqOp::BF16 ? 0x4300u : 0x6400u) | off) * 0x00010001u;
  }
};

// Four code bytes c0..c3 (c4 = c0 | c1 << 8 | ...) -> the operand pairs (c0 - off, c1 - off),
// (c2 - off, c3 - off): one byte permute under M's high byte and one subtraction per pair.
template <RqOp OP, uint32_t OFF>
ROCQ_DEVICE void qf_codes(uint32_t c4, uint32_t& lo, uint32_t& hi) {
  lo = rq_sub2_op<OP>(__byte_perm(c4, QfOp<OP>::kHiByte4, 0x4140), QfOp<OP>::bias2(OFF));
  hi = rq_sub2_op<OP>(__byte_perm(c4, QfOp<OP>::kHiByte4, 0x4342), QfOp<OP>::bias2(OFF));
}

// Four signed bytes -> operand pairs. fp16: the biased byte under 1024; bf16 (8 significant
// bits: every int8 is exact, but 128 + c is not for c >= 128): convert through fp32.
template <RqOp OP>
ROCQ_DEVICE void qf_s8(uint32_t w, uint32_t& lo, uint32_t& hi) {
  if constexpr (OP == RqOp::F16) {
    qf_codes<OP, 128>(w ^ 0x80808080u, lo, hi);
  } else {
    lo = rq_pack2_op<OP>((float)(int8_t)w, (float)(int8_t)(w >> 8));
    hi = rq_pack2_op<OP>((float)(int8_t)(w >> 16), (float)(int8_t)(w >> 24));
  }
}

// Q4_0 (18-byte blocks: f16 d, 16 nibble bytes; element j < 16 = low nibble of byte j, j + 16 =
// its high nibble): chunk = block; step 0 = low nibbles (elements 4t..4t+3 = qs word t), step 1
// = high nibbles. W = d * (q - 8).
template <>
struct QFrag<QT_Q4_0> {
  static constexpr bool kMin = false, kLut = false;
  static constexpr int kC = QFragWin<QT_Q4_0>::kElems, kWC = QFragWin<QT_Q4_0>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w, d; };
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  // (win is 4-byte aligned: block i's qs words are aligned for odd i, half-word offset for even i)
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    const uint8_t* p = win + i * 18;
    if (i & 1) return {rq_g32(p + 2 + 4 * t), rq_g16(p)};
    return {rq_funnel(rq_g32(p + 4 * t), rq_g32(p + 4 * t + 4), 16), rq_g16(p)};
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t*) {
    qf_codes<OP, 8>(r.w & 0x0F0F0F0Fu, a[0][0], a[0][1]);
    qf_codes<OP, 8>((r.w >> 4) & 0x0F0F0F0Fu, a[1][0], a[1][1]);
    sc[0] = rq_f16_to_f32((uint16_t)r.d);
  }
};

// Q8_0 (34-byte blocks: f16 d, 32 signed bytes): step s, quarter t = bytes 16s + 4t.. W = d * q.
template <>
struct QFrag<QT_Q8_0> {
  static constexpr bool kMin = false, kLut = false;
  static constexpr int kC = QFragWin<QT_Q8_0>::kElems, kWC = QFragWin<QT_Q8_0>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w0, w1, d; };
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    const uint8_t* p = win + i * 34 + 2 + 4 * t;
    return {rq_g16(p) | (rq_g16(p + 2) << 16), rq_g16(p + 16) | (rq_g16(p + 18) << 16), rq_g16(win + i * 34)};
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t*) {
    qf_s8<OP>(r.w0, a[0][0], a[0][1]);
    qf_s8<OP>(r.w1, a[1][0], a[1][1]);
    sc[0] = rq_f16_to_f32((uint16_t)r.d);
  }
};

// Q4_K / Q5_K (256-element blocks: f16 d, dmin; 12 bytes of 6-bit scales/mins; Q5_K: 32 qh
// bytes; 128 qs bytes): chunk p (0..3) = sub-blocks 2p (low nibbles of qs bytes 32p..32p+31) and
// 2p+1 (high nibbles); steps 0-1 = sub-block 2p, 2-3 = 2p+1, quarter t of step s at qs byte
// 32p + 16(s%2) + 4t. Q5_K's fifth bit of sub-block j is bit j of the qh byte at the same
// position within 32. W = (d * sc) * q - dmin * m.
template <bool Q5>
struct QFragK45 {
  static constexpr bool kMin = true, kLut = false;
  static constexpr int kC = QFragWin<QT_Q4_K>::kElems, kWC = QFragWin<QT_Q4_K>::kChunks, kS = 4, kG = 2;
  static constexpr int kQs = Q5 ? 48 : 16, kBytes = Q5 ? 176 : 144;
  struct Raw { uint32_t w0, w1, h0, h1, dm, s0, s1, s2; int p; };
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  ROCQ_DEVICE static Raw load(const uint8_t* blk, int p, int t) {  // window = one block
    Raw r;
    r.p = p;
    r.w0 = rq_g32(blk + kQs + 32 * p + 4 * t);
    r.w1 = rq_g32(blk + kQs + 32 * p + 16 + 4 * t);
    if constexpr (Q5) {
      r.h0 = rq_g32(blk + 16 + 4 * t);
      r.h1 = rq_g32(blk + 32 + 4 * t);
    } else {
      r.h0 = r.h1 = 0;
    }
    r.dm = rq_g32(blk);
    r.s0 = rq_g32(blk + 4);
    r.s1 = rq_g32(blk + 8);
    r.s2 = rq_g32(blk + 12);
    return r;
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&mn)[kG], const uint32_t*) {
    uint32_t c0 = r.w0 & 0x0F0F0F0Fu, c1 = r.w1 & 0x0F0F0F0Fu;
    uint32_t c2 = (r.w0 >> 4) & 0x0F0F0F0Fu, c3 = (r.w1 >> 4) & 0x0F0F0F0Fu;
    if constexpr (Q5) {
      const int j = 2 * r.p;
      c0 |= ((r.h0 >> j) & 0x01010101u) << 4;
      c1 |= ((r.h1 >> j) & 0x01010101u) << 4;
      c2 |= ((r.h0 >> (j + 1)) & 0x01010101u) << 4;
      c3 |= ((r.h1 >> (j + 1)) & 0x01010101u) << 4;
    }
    qf_codes<OP, 0>(c0, a[0][0], a[0][1]);
    qf_codes<OP, 0>(c1, a[1][0], a[1][1]);
    qf_codes<OP, 0>(c2, a[2][0], a[2][1]);
    qf_codes<OP, 0>(c3, a[3][0], a[3][1]);
    uint32_t scp, mnp;
    rq_k4_pair(r.s0, r.s1, r.s2, r.p, scp, mnp);
    const float d = rq_f16_to_f32((uint16_t)r.dm), dmin = rq_f16_to_f32((uint16_t)(r.dm >> 16));
    sc[0] = rq_mul(d, (float)(scp & 0xFFu));
    sc[1] = rq_mul(d, (float)(scp >> 8));
    mn[0] = rq_mul(dmin, (float)(mnp & 0xFFu));
    mn[1] = rq_mul(dmin, (float)(mnp >> 8));
  }
};
template <> struct QFrag<QT_Q4_K> : QFragK45<false> {};
template <> struct QFrag<QT_Q5_K> : QFragK45<true> {};

// Q6_K (210-byte blocks: 128 ql, 64 qh, 16 int8 scales, f16 d). Half h (128 elements), quarter
// r: element l (0..31) of quarter r is the low (r < 2) or high nibble of ql[64h + 32(r%2) + l]
// plus qh[32h + l] bits 2r..2r+1, minus 32; 16-element sub-blocks, scale sc[8h + 2r + l/16].
// Chunk (h, r0) with r0 in {0, 1}: steps 0-1 = quarter r0 (low nibbles), 2-3 = quarter r0 + 2
// (high nibbles of the same ql bytes); each step is one sub-block (its own scale).
// W = (d * sc) * (q - 32). Blocks are not 4-byte aligned: 2-byte loads.
template <>
struct QFrag<QT_Q6_K> {
  static constexpr bool kMin = false, kLut = false;
  static constexpr int kC = QFragWin<QT_Q6_K>::kElems, kWC = QFragWin<QT_Q6_K>::kChunks, kS = 4, kG = 4;
  struct Raw { uint32_t l0, l1, q0, q1, s01, s23, d; int r0; };
  ROCQ_DEVICE static int64_t x0(int64_t c) { return 256 * (c / 4) + 128 * ((c % 4) / 2) + 32 * (c % 2); }
  ROCQ_DEVICE static int xo(int s, int t) { return 64 * (s / 2) + 16 * (s % 2) + 4 * t; }
  ROCQ_DEVICE static uint32_t ld(const uint8_t* p) { return rq_g16(p) | (rq_g16(p + 2) << 16); }
  ROCQ_DEVICE static Raw load(const uint8_t* blk, int i, int t) {  // window = one block
    const int h = i / 2, r0 = i % 2;
    Raw r;
    r.r0 = r0;
    r.l0 = ld(blk + 64 * h + 32 * r0 + 4 * t);
    r.l1 = ld(blk + 64 * h + 32 * r0 + 16 + 4 * t);
    r.q0 = ld(blk + 128 + 32 * h + 4 * t);
    r.q1 = ld(blk + 128 + 32 * h + 16 + 4 * t);
    // scales of quarter r0 (sub-blocks 8h + 2r0, +1) and of quarter r0 + 2 (8h + 2r0 + 4, +5)
    r.s01 = rq_g16(blk + 192 + 8 * h + 2 * r0);
    r.s23 = rq_g16(blk + 192 + 8 * h + 2 * r0 + 4);
    r.d = rq_g16(blk + 208);
    return r;
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t*) {
    const int sh = 2 * r.r0;
    qf_codes<OP, 32>((r.l0 & 0x0F0F0F0Fu) | (((r.q0 >> sh) & 0x03030303u) << 4), a[0][0], a[0][1]);
    qf_codes<OP, 32>((r.l1 & 0x0F0F0F0Fu) | (((r.q1 >> sh) & 0x03030303u) << 4), a[1][0], a[1][1]);
    qf_codes<OP, 32>(((r.l0 >> 4) & 0x0F0F0F0Fu) | (((r.q0 >> (sh + 4)) & 0x03030303u) << 4), a[2][0], a[2][1]);
    qf_codes<OP, 32>(((r.l1 >> 4) & 0x0F0F0F0Fu) | (((r.q1 >> (sh + 4)) & 0x03030303u) << 4), a[3][0], a[3][1]);
    const float d = rq_f16_to_f32((uint16_t)r.d);
    sc[0] = rq_mul(d, (float)(int8_t)r.s01);
    sc[1] = rq_mul(d, (float)(int8_t)(r.s01 >> 8));
    sc[2] = rq_mul(d, (float)(int8_t)r.s23);
    sc[3] = rq_mul(d, (float)(int8_t)(r.s23 >> 8));
  }
};

// Q4_1 / Q5_1 (d, m halves; Q5_1: u32 qh; 16 nibble bytes in Q4_0 order) and Q5_0 (d; qh; qs):
// steps as Q4_0; the fifth bit of element e is bit e of qh. W = d * q + m (the kernel adds
// m * sum(x): mn = -m) or, Q5_0, d * (q - 16).
template <int ID>
struct QFragLegacy {
  static constexpr bool kHasM = ID != QT_Q5_0, kHasH = ID != QT_Q4_1;
  static constexpr bool kMin = kHasM, kLut = false;
  static constexpr int kB = Codec<ID>::kBytes, kQs = (kHasM ? 4 : 2) + (kHasH ? 4 : 0);
  static constexpr int kC = QFragWin<ID>::kElems, kWC = QFragWin<ID>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w, dm, h0, h1; };
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    Raw r;
    r.w = qf_ld32(win, i * kB + kQs + 4 * t);
    r.dm = qf_ld32(win, i * kB);
    r.h0 = r.h1 = 0;
    if constexpr (kHasH) {
      const uint32_t qh = qf_ld32(win, i * kB + kQs - 4);
      r.h0 = rq_spread4((qh >> (4 * t)) & 15u) << 4;
      r.h1 = rq_spread4((qh >> (16 + 4 * t)) & 15u) << 4;
    }
    return r;
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&mn)[kG], const uint32_t*) {
    constexpr uint32_t off = ID == QT_Q5_0 ? 16 : 0;
    qf_codes<OP, off>((r.w & 0x0F0F0F0Fu) | r.h0, a[0][0], a[0][1]);
    qf_codes<OP, off>(((r.w >> 4) & 0x0F0F0F0Fu) | r.h1, a[1][0], a[1][1]);
    sc[0] = rq_lo_half(r.dm);
    if constexpr (kHasM) mn[0] = -rq_hi_half(r.dm);
  }
};
template <> struct QFrag<QT_Q4_1> : QFragLegacy<QT_Q4_1> {};
template <> struct QFrag<QT_Q5_0> : QFragLegacy<QT_Q5_0> {};
template <> struct QFrag<QT_Q5_1> : QFragLegacy<QT_Q5_1> {};

// Table formats: a 256-entry shared-memory table maps a code byte to the operand pair of its
// two nibbles' values (low nibble in the low half), exact in bf16 and fp16 (IQ4 values are
// integers below 128 in magnitude, E2M1 halves and doubled E2M1 integers small). Built by the
// kernel from lut_value (the codec's value of a nibble).
template <RqOp OP, class V>
ROCQ_DEVICE uint32_t qf_nibble_pair(int b, V value) {
  return rq_pack2_op<OP>(value(b & 15), value(b >> 4));
}

// Q4_0 nibble order (element j = low nibble of byte j, j + 16 its high nibble), a 16-entry value
// table: IQ4_NL (d: f16), MXFP4 (GGUF id 39: e8m0 byte e, x = 2^(e-128) * doubled E2M1) and
// IQ4_XS's 32-element sub-blocks. Step 0 pairs = low halves of the bytes' table pairs, step 1 =
// high halves.
template <RqOp OP>
ROCQ_DEVICE void qf_q40_lut(uint32_t w, const uint32_t* lut, uint32_t (&a)[2][2]) {
  const uint32_t l0 = lut[w & 0xFFu], l1 = lut[(w >> 8) & 0xFFu], l2 = lut[(w >> 16) & 0xFFu], l3 = lut[w >> 24];
  a[0][0] = __byte_perm(l0, l1, 0x5410);
  a[0][1] = __byte_perm(l2, l3, 0x5410);
  a[1][0] = __byte_perm(l0, l1, 0x7632);
  a[1][1] = __byte_perm(l2, l3, 0x7632);
}

template <int ID>
struct QFragQ40Lut {
  static constexpr bool kMin = false, kLut = true;
  static constexpr int kB = Codec<ID>::kBytes, kQs = ID == QT_MXFP4 ? 1 : 2;
  static constexpr int kC = QFragWin<ID>::kElems, kWC = QFragWin<ID>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w, d; };
  template <RqOp OP>
  ROCQ_DEVICE static uint32_t lut(int b) {
    if constexpr (ID == QT_MXFP4) return qf_nibble_pair<OP>(b, [](int q) { return (float)rq_e2m1x2_value(q); });
    else return qf_nibble_pair<OP>(b, [](int q) { return (float)rq_iq4nl_value(q); });
  }
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  // (d: the scale alone, MXFP4's E8M0 byte or IQ4_NL's f16 at an even offset, not the whole
  // unaligned word that holds it: two loads and a shift)
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    const uint8_t* b = win + i * kB;
    return {qf_ld32(win, i * kB + kQs + 4 * t), ID == QT_MXFP4 ? (uint32_t)b[0] : rq_g16(b)};
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t* lut) {
    qf_q40_lut<OP>(r.w, lut, a);
    if constexpr (ID == QT_MXFP4) sc[0] = rq_e8m0_half((uint8_t)r.d);
    else sc[0] = rq_lo_half(r.d);
  }
};
template <> struct QFrag<QT_IQ4_NL> : QFragQ40Lut<QT_IQ4_NL> {};
template <> struct QFrag<QT_MXFP4> : QFragQ40Lut<QT_MXFP4> {};

// IQ4_XS (136-byte blocks: f16 d, u16 scales_h, 4 bytes scales_l, 128 qs): chunk = sub-block sb
// (qs bytes 8 + 16 sb .., Q4_0 nibble order); dl = d * ((6-bit scale) - 32) as the codec.
template <>
struct QFrag<QT_IQ4_XS> {
  static constexpr bool kMin = false, kLut = true;
  static constexpr int kC = QFragWin<QT_IQ4_XS>::kElems, kWC = QFragWin<QT_IQ4_XS>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w, h, l; int sb; };
  template <RqOp OP>
  ROCQ_DEVICE static uint32_t lut(int b) { return QFragQ40Lut<QT_IQ4_NL>::lut<OP>(b); }
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  ROCQ_DEVICE static Raw load(const uint8_t* blk, int sb, int t) {  // window = one block
    return {qf_ld32(blk, 8 + 16 * sb + 4 * t), qf_ld32(blk, 0), qf_ld32(blk, 4), sb};
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t* lut) {
    qf_q40_lut<OP>(r.w, lut, a);
    sc[0] = rq_mul(rq_lo_half(r.h), (float)rq_iq4xs_subscale(r.h, r.l, r.sb));
  }
};

// OCP MX planar formats: element plane in 32-element chunks, the chunk's E8M0 scale from the
// scale plane row (global memory). FP4: element 2j = low nibble of byte j, so a byte's table
// pair is an operand pair as is (lane t of step s: bytes 8s + 2t, 8s + 2t + 1). FP8: one code per
// byte, the table holds its value twice; pairs from two bytes' entries. Without the table
// (kNoTable: E5M2, and E4M3 where the hardware converts it) the pairs are the codes' exact IEEE
// halves (qdot.h rq_e5m2x2_to_f16x2, platform.h rq_e4m3x2_to_f16x2): fp16 operands as they are,
// bf16 ones widened to fp32 and cut to their top 16 bits (every FP8 value has at most 4
// significant bits; inf and NaN stay inf and NaN). The table costs a shared-memory load per code
// at random addresses (qmma.hip qmma_first_rows: about 2x at M = 5..8).
template <int ID>
struct QFragOcp {
  static constexpr bool kFp4 = ID == QT_OCP_MXFP4;
  static constexpr bool kMin = false, kLut = true;
  static constexpr int kB = Codec<ID>::kBytes;
  static constexpr int kC = QFragWin<ID>::kElems, kWC = QFragWin<ID>::kChunks, kS = 2, kG = 1;
  struct Raw { uint32_t w0, w1, e; };
  template <RqOp OP>
  ROCQ_DEVICE static uint32_t lut(int b) {
    if constexpr (kFp4) return qf_nibble_pair<OP>(b, [](int q) { return rq_fp4_e2m1((uint32_t)q); });
    else return rq_pack2_op<OP>(Codec<ID>::elem((uint32_t)b), Codec<ID>::elem((uint32_t)b));
  }
  ROCQ_DEVICE static int64_t x0(int64_t c) { return c * kC; }
  ROCQ_DEVICE static int xo(int s, int t) { return 16 * s + 4 * t; }
  // (r.e, the chunk's E8M0 byte from the scale plane, is set by the kernel: it prefetches a
  // window's scale bytes with the x fragments)
  ROCQ_DEVICE static Raw load(const uint8_t* win, int i, int t) {
    Raw r;
    if constexpr (kFp4) {
      r.w0 = rq_g16(win + i * kB + 2 * t);
      r.w1 = rq_g16(win + i * kB + 8 + 2 * t);
    } else {
      r.w0 = rq_g32(win + i * kB + 4 * t);
      r.w1 = rq_g32(win + i * kB + 16 + 4 * t);
    }
    r.e = 0;
    return r;
  }
  static constexpr bool kNoTable = ID == QT_OCP_MXFP8_E5M2 || (ID == QT_OCP_MXFP8_E4M3 && kRqE4M3Cvt);
  // the two FP8 codes in the low 16 bits of v as IEEE halves (only where kNoTable)
  ROCQ_DEVICE static uint32_t half2_of(uint32_t v) {
    if constexpr (ID == QT_OCP_MXFP8_E5M2) {
      return rq_e5m2x2_to_f16x2(v);
    } else {
#if defined(ROCQ_HAS_E4M3X2_CVT)
      return rq_e4m3x2_to_f16x2(v & 0xFFFFu);
#else
      return v;  // (never called: kNoTable is false)
#endif
    }
  }
  template <RqOp OP>
  ROCQ_DEVICE static void decode(const Raw& r, uint32_t (&a)[kS][2], float (&sc)[kG], float (&)[kG], const uint32_t* lut) {
    if constexpr (kFp4) {
      a[0][0] = lut[r.w0 & 0xFFu];
      a[0][1] = lut[r.w0 >> 8];
      a[1][0] = lut[r.w1 & 0xFFu];
      a[1][1] = lut[r.w1 >> 8];
    } else {
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const uint32_t w = s ? r.w1 : r.w0;
        if constexpr (kNoTable) {
#pragma unroll
          for (int p = 0; p < 2; ++p) {
            const uint32_t hh = half2_of(w >> (16 * p));
            if constexpr (OP == RqOp::F16) a[s][p] = hh;
            else a[s][p] = __byte_perm(rq_float_to_bits(rq_lo_half(hh)), rq_float_to_bits(rq_hi_half(hh)), 0x7632);
          }
        } else {
          a[s][0] = __byte_perm(lut[w & 0xFFu], lut[(w >> 8) & 0xFFu], 0x5410);
          a[s][1] = __byte_perm(lut[(w >> 16) & 0xFFu], lut[w >> 24], 0x5410);
        }
      }
    }
    sc[0] = rq_e8m0((uint8_t)r.e);
  }
};
template <> struct QFrag<QT_OCP_MXFP4> : QFragOcp<QT_OCP_MXFP4> {};
template <> struct QFrag<QT_OCP_MXFP8_E4M3> : QFragOcp<QT_OCP_MXFP8_E4M3> {};
template <> struct QFrag<QT_OCP_MXFP8_E5M2> : QFragOcp<QT_OCP_MXFP8_E5M2> {};
#endif

}  // namespace rocq::gpu
