// rocq weight formats, described once.
//
// Every format has exactly one descriptor here: its id, name, elements and bytes per block,
// whether its scales live in a separate E8M0 plane, and how to decode it. The CPU code in
// csrc/, the GPU kernels in kernels/ and the Python format table (read through rocq._C) all
// derive from this file; adding a format means adding one ROCQ_FORMATS row and one Codec.
//
// Byte layouts and decode rules: ../shared/FORMATS.md. Decoding is bit-exact against gguf-py's
// numpy dequantizer: every product and sum below is rounded to fp32 in the same order as the
// reference does it (rq_mul/rq_add/rq_sub never fuse into an fma).
//
// Decode contract, the same for every Codec<ID>:
//   decode8(blk, scale, r, out): the 8 elements 8r..8r+7 counted from the start of block
//     `blk` (for quantized formats they lie inside that block: 0 <= r < kElems/8; for dense
//     formats, whose blocks hold one element, r counts 8-element runs from blk). `scale` is the
//     block's E8M0 byte for formats with a separate scale plane and ignored otherwise.
//   decode_block(blk, scale, out): all kElems elements of one block.
#pragma once

#include "platform.h"

namespace rocq {

// X(TAG, name, id, block_elems, block_bytes, scale_plane)
// GGUF types use their ggml ids; rocq's own planar formats use ids from 100 up.
#define ROCQ_FORMATS(X)                  \
  X(F32, "f32", 0, 1, 4, 0)              \
  X(F16, "f16", 1, 1, 2, 0)              \
  X(Q4_0, "q4_0", 2, 32, 18, 0)          \
  X(Q4_1, "q4_1", 3, 32, 20, 0)          \
  X(Q5_0, "q5_0", 6, 32, 22, 0)          \
  X(Q5_1, "q5_1", 7, 32, 24, 0)          \
  X(Q8_0, "q8_0", 8, 32, 34, 0)          \
  X(Q2_K, "q2_k", 10, 256, 84, 0)        \
  X(Q3_K, "q3_k", 11, 256, 110, 0)       \
  X(Q4_K, "q4_k", 12, 256, 144, 0)       \
  X(Q5_K, "q5_k", 13, 256, 176, 0)       \
  X(Q6_K, "q6_k", 14, 256, 210, 0)       \
  X(IQ4_NL, "iq4_nl", 20, 32, 18, 0)     \
  X(IQ4_XS, "iq4_xs", 23, 256, 136, 0)   \
  X(BF16, "bf16", 30, 1, 2, 0)           \
  X(MXFP4, "mxfp4", 39, 32, 17, 0)        \
  X(OCP_MXFP4, "ocp_mxfp4", 100, 32, 16, 1)           \
  X(OCP_MXFP6_E2M3, "ocp_mxfp6_e2m3", 101, 32, 24, 1) \
  X(OCP_MXFP6_E3M2, "ocp_mxfp6_e3m2", 102, 32, 24, 1) \
  X(OCP_MXFP8_E4M3, "ocp_mxfp8_e4m3", 103, 32, 32, 1) \
  X(OCP_MXFP8_E5M2, "ocp_mxfp8_e5m2", 104, 32, 32, 1) \
  X(OCP_MXINT8, "ocp_mxint8", 105, 32, 32, 1)

enum QType : int {
#define ROCQ_X(tag, name, id, elems, bytes, plane) QT_##tag = id,
  ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X
};

struct FormatInfo {
  const char* name;
  int id;
  int block_elems;
  int block_bytes;
  bool scale_plane;  // true: scales are a separate uint8 E8M0 tensor [n, k/32]
};

inline constexpr FormatInfo kFormats[] = {
#define ROCQ_X(tag, name, id, elems, bytes, plane) {name, id, elems, bytes, plane != 0},
    ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X
};
inline constexpr int kNumFormats = sizeof(kFormats) / sizeof(kFormats[0]);

// nullptr for an unknown id.
inline const FormatInfo* find_format(int id) {
  for (const FormatInfo& f : kFormats)
    if (f.id == id) return &f;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Little helpers for unaligned little-endian fields (blocks start on any byte).
// ---------------------------------------------------------------------------------------------
ROCQ_HD uint16_t rq_ld16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }
ROCQ_HD uint32_t rq_ld32(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
ROCQ_HD float rq_ld_half(const uint8_t* p) { return rq_half_bits_to_float(rq_ld16(p)); }

// E8M0 as ggml's MXFP4 uses it: 2^(e-128), i.e. half the OCP scale, so that the doubled E2M1
// table below gives exactly E2M1 * 2^(e-127). e < 2 lands in fp32 subnormals.
ROCQ_HD float rq_e8m0_half(uint8_t e) {
  return rq_bits_to_float(e < 2 ? (0x00200000u << e) : ((uint32_t)(e - 1) << 23));
}

// Small signed tables, shared by host and device. They are computed from registers (packed
// constants and selects), never indexed arrays: a run-time index into a local array lands in
// GPU local memory, which made generic decoding of these formats several times slower.
//
// IQ4_NL levels {-127,-104,-83,-65,-49,-35,-22,-10,1,13,25,38,53,69,89,113}, four int8 per word.
ROCQ_HD constexpr int rq_iq4nl_value(int q) {
  q &= 15;
  const uint32_t lo = (q & 4) ? 0xF6EADDCFu : 0xBFAD9881u;
  const uint32_t hi = (q & 4) ? 0x71594535u : 0x26190D01u;
  return (int8_t)(((q & 8) ? hi : lo) >> (8 * (q & 3)));
}
// E2M1 magnitudes doubled {0,1,2,3,4,6,8,12}, sign in bit 3 (ggml's MXFP4 table):
// codes 0..3 are themselves, codes 4..7 are (2 + low bit) << (code/2 - 1).
ROCQ_HD constexpr int rq_e2m1x2_value(int q) {
  const int c = q & 7;
  const int v = c < 4 ? c : (2 + (c & 1)) << ((c >> 1) - 1);
  return (q & 8) ? -v : v;
}

// 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block (scales[12]).
ROCQ_HD void rq_k4_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

// ---------------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------------
template <int ID>
struct Codec;

// Default decode_block for quantized formats: kElems/8 runs.
template <typename C>
ROCQ_HD void rq_decode_block_runs(const uint8_t* blk, uint8_t scale, float* out) {
  for (int r = 0; r < C::kElems / 8; ++r) C::decode8(blk, scale, r, out + 8 * r);
}

template <>
struct Codec<QT_F32> {
  static constexpr int kId = QT_F32, kElems = 1, kBytes = 4;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    for (int j = 0; j < 8; ++j) out[j] = rq_bits_to_float(rq_ld32(blk + 4 * (8 * r + j)));
  }
  ROCQ_HD static void decode_block(const uint8_t* blk, uint8_t, float* out) {
    out[0] = rq_bits_to_float(rq_ld32(blk));
  }
};

template <>
struct Codec<QT_F16> {
  static constexpr int kId = QT_F16, kElems = 1, kBytes = 2;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    for (int j = 0; j < 8; ++j) out[j] = rq_ld_half(blk + 2 * (8 * r + j));
  }
  ROCQ_HD static void decode_block(const uint8_t* blk, uint8_t, float* out) { out[0] = rq_ld_half(blk); }
};

template <>
struct Codec<QT_BF16> {
  static constexpr int kId = QT_BF16, kElems = 1, kBytes = 2;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    for (int j = 0; j < 8; ++j) out[j] = rq_bf16_bits_to_float(rq_ld16(blk + 2 * (8 * r + j)));
  }
  ROCQ_HD static void decode_block(const uint8_t* blk, uint8_t, float* out) {
    out[0] = rq_bf16_bits_to_float(rq_ld16(blk));
  }
};

// Q4_0: half d; u8 qs[16]. Element j (0..15) = low nibble of qs[j], j+16 = high nibble.
template <>
struct Codec<QT_Q4_0> {
  static constexpr int kId = QT_Q4_0, kElems = 32, kBytes = 18;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk);
    const uint8_t* qs = blk + 2 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) out[j] = rq_mul(d, (float)(((qs[j] >> sh) & 15) - 8));
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q4_1: half d; half m; u8 qs[16]. x = d*q + m.
template <>
struct Codec<QT_Q4_1> {
  static constexpr int kId = QT_Q4_1, kElems = 32, kBytes = 20;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk), m = rq_ld_half(blk + 2);
    const uint8_t* qs = blk + 4 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) out[j] = rq_add(rq_mul(d, (float)((qs[j] >> sh) & 15)), m);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q5_0: half d; u8 qh[4]; u8 qs[16]. 5th bit of element e is bit e of the LE u32 qh.
template <>
struct Codec<QT_Q5_0> {
  static constexpr int kId = QT_Q5_0, kElems = 32, kBytes = 22;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk);
    const uint32_t qh = rq_ld32(blk + 2);
    const uint8_t* qs = blk + 6 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) {
      const int q = ((qs[j] >> sh) & 15) | (((qh >> (8 * r + j)) & 1) << 4);
      out[j] = rq_mul(d, (float)(q - 16));
    }
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q5_1: half d; half m; u8 qh[4]; u8 qs[16]. x = d*q + m.
template <>
struct Codec<QT_Q5_1> {
  static constexpr int kId = QT_Q5_1, kElems = 32, kBytes = 24;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk), m = rq_ld_half(blk + 2);
    const uint32_t qh = rq_ld32(blk + 4);
    const uint8_t* qs = blk + 8 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) {
      const int q = ((qs[j] >> sh) & 15) | (((qh >> (8 * r + j)) & 1) << 4);
      out[j] = rq_add(rq_mul(d, (float)q), m);
    }
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q8_0: half d; i8 qs[32].
template <>
struct Codec<QT_Q8_0> {
  static constexpr int kId = QT_Q8_0, kElems = 32, kBytes = 34;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk);
    const uint8_t* qs = blk + 2 + 8 * r;
    for (int j = 0; j < 8; ++j) out[j] = rq_mul((float)(int8_t)qs[j], d);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q2_K: u8 scales[16]; u8 qs[64]; half d; half dmin. Element e: half h = e/128,
// shift s = (e%128)/32, byte qs[32h + e%32] >> 2s; sub-block e/16 (scale low nibble, min high).
template <>
struct Codec<QT_Q2_K> {
  static constexpr int kId = QT_Q2_K, kElems = 256, kBytes = 84;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int e0 = 8 * r;
    const float d = rq_ld_half(blk + 80), dmin = rq_ld_half(blk + 82);
    const uint8_t sc = blk[e0 / 16];
    const float dl = rq_mul(d, (float)(sc & 15)), ml = rq_mul(dmin, (float)(sc >> 4));
    const uint8_t* qs = blk + 16 + 32 * (e0 / 128) + (e0 % 32);
    const int sh = 2 * ((e0 % 128) / 32);
    for (int j = 0; j < 8; ++j) out[j] = rq_sub(rq_mul(dl, (float)((qs[j] >> sh) & 3)), ml);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q3_K: u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d. Low 2 bits as Q2_K; 3rd bit is bit
// e/32 of hmask[e%32] (clear: subtract 4); 16 signed 6-bit scales (minus 32).
template <>
struct Codec<QT_Q3_K> {
  static constexpr int kId = QT_Q3_K, kElems = 256, kBytes = 110;
  ROCQ_HD static int scale(const uint8_t* s, int i) {
    const int lo = (i < 8 ? s[i] : s[i - 8] >> 4) & 15;
    const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
  }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int e0 = 8 * r;
    const float d = rq_ld_half(blk + 108);
    const float dl = rq_mul(d, (float)scale(blk + 96, e0 / 16));
    const uint8_t* hm = blk + (e0 % 32);
    const uint8_t* qs = blk + 32 + 32 * (e0 / 128) + (e0 % 32);
    const int sh = 2 * ((e0 % 128) / 32), hb = e0 / 32;
    for (int j = 0; j < 8; ++j) {
      const int q = ((qs[j] >> sh) & 3) - (((hm[j] >> hb) & 1) ? 0 : 4);
      out[j] = rq_mul(dl, (float)q);
    }
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q4_K: half d; half dmin; u8 scales[12]; u8 qs[128]. Element e: 32-byte chunk e/64, low
// nibble for (e%64) < 32, high otherwise; sub-block e/32. x = (d*sc)*q - dmin*m.
template <>
struct Codec<QT_Q4_K> {
  static constexpr int kId = QT_Q4_K, kElems = 256, kBytes = 144;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int e0 = 8 * r, sb = e0 / 32;
    int sc, mn;
    rq_k4_scale_min(blk + 4, sb, sc, mn);
    const float dl = rq_mul(rq_ld_half(blk), (float)sc), ml = rq_mul(rq_ld_half(blk + 2), (float)mn);
    const uint8_t* qs = blk + 16 + 32 * (e0 / 64) + (e0 % 32);
    const int sh = 4 * (sb & 1);
    for (int j = 0; j < 8; ++j) out[j] = rq_sub(rq_mul(dl, (float)((qs[j] >> sh) & 15)), ml);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q5_K: as Q4_K plus qh[32] before qs: 5th bit of element e is bit e/32 of qh[e%32].
template <>
struct Codec<QT_Q5_K> {
  static constexpr int kId = QT_Q5_K, kElems = 256, kBytes = 176;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int e0 = 8 * r, sb = e0 / 32;
    int sc, mn;
    rq_k4_scale_min(blk + 4, sb, sc, mn);
    const float dl = rq_mul(rq_ld_half(blk), (float)sc), ml = rq_mul(rq_ld_half(blk + 2), (float)mn);
    const uint8_t* qh = blk + 16 + (e0 % 32);
    const uint8_t* qs = blk + 48 + 32 * (e0 / 64) + (e0 % 32);
    const int sh = 4 * (sb & 1);
    for (int j = 0; j < 8; ++j) {
      const int q = ((qs[j] >> sh) & 15) | (((qh[j] >> sb) & 1) << 4);
      out[j] = rq_sub(rq_mul(dl, (float)q), ml);
    }
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Q6_K: u8 ql[128]; u8 qh[64]; i8 scales[16]; half d. Element e: half h = e/128, r = e%128;
// low 4 bits: ql[64h + r%64] nibble r/64; high 2 bits: qh[32h + r%32] >> 2*(r/32); q - 32.
template <>
struct Codec<QT_Q6_K> {
  static constexpr int kId = QT_Q6_K, kElems = 256, kBytes = 210;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int e0 = 8 * r, h = e0 / 128, rr = e0 % 128;
    const float dl = rq_mul(rq_ld_half(blk + 208), (float)(int8_t)blk[192 + e0 / 16]);
    const uint8_t* ql = blk + 64 * h + (rr % 64);
    const uint8_t* qh = blk + 128 + 32 * h + (rr % 32);
    const int shl = 4 * (rr / 64), shh = 2 * (rr / 32);
    for (int j = 0; j < 8; ++j) {
      const int q = (((ql[j] >> shl) & 15) | (((qh[j] >> shh) & 3) << 4)) - 32;
      out[j] = rq_mul(dl, (float)q);
    }
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// IQ4_NL: half d; u8 qs[16] (Q4_0 nibble order); x = d * kvalues[q].
template <>
struct Codec<QT_IQ4_NL> {
  static constexpr int kId = QT_IQ4_NL, kElems = 32, kBytes = 18;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_ld_half(blk);
    const uint8_t* qs = blk + 2 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) out[j] = rq_mul(d, (float)rq_iq4nl_value(qs[j] >> sh));
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// IQ4_XS: half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]. Sub-block j (32 elements, 16
// bytes of qs in Q4_0 nibble order): 6-bit scale = nibble j of scales_l | 2 bits j of scales_h.
// rq_iq4xs_subscale: that scale minus 32, from the block's first two little-endian words
// (head = d | scales_h << 16, sl = scales_l): the codec and every GPU decoder use it.
ROCQ_HD int rq_iq4xs_subscale(uint32_t head, uint32_t sl, int sb) {
  return (int)(((sl >> (4 * sb)) & 15u) | (((head >> (16 + 2 * sb)) & 3u) << 4)) - 32;
}
template <>
struct Codec<QT_IQ4_XS> {
  static constexpr int kId = QT_IQ4_XS, kElems = 256, kBytes = 136;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const int sb = r / 4, rr = r % 4;
    const float dl = rq_mul(rq_ld_half(blk), (float)rq_iq4xs_subscale(rq_ld32(blk), rq_ld32(blk + 4), sb));
    const uint8_t* qs = blk + 8 + 16 * sb + 8 * (rr & 1);
    const int sh = (rr >> 1) * 4;
    for (int j = 0; j < 8; ++j) out[j] = rq_mul(dl, (float)rq_iq4nl_value(qs[j] >> sh));
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// MXFP4 (GGUF id 39): u8 e (E8M0); u8 qs[16] (Q4_0 nibble order); x = 2^(e-128) * 2*E2M1.
template <>
struct Codec<QT_MXFP4> {
  static constexpr int kId = QT_MXFP4, kElems = 32, kBytes = 17;
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t, int r, float* out) {
    const float d = rq_e8m0_half(blk[0]);
    const uint8_t* qs = blk + 1 + 8 * (r & 1);
    const int sh = (r >> 1) * 4;
    for (int j = 0; j < 8; ++j) out[j] = rq_mul(d, (float)rq_e2m1x2_value(qs[j] >> sh));
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

#include "formats_mx.h"  // planar OCP MX codecs (ids 100..105)

// ---------------------------------------------------------------------------------------------
// Compile-time dispatch: fn(Codec<ID>{}) for a run-time id. Returns false for an unknown id.
// ---------------------------------------------------------------------------------------------
template <typename Fn>
inline bool dispatch_format(int id, Fn&& fn) {
  switch (id) {
#define ROCQ_X(tag, name, fid, elems, bytes, plane)                                        \
  case fid:                                                                                \
    static_assert(Codec<fid>::kElems == elems && Codec<fid>::kBytes == bytes,              \
                  "codec of " name " disagrees with its ROCQ_FORMATS row");               \
    fn(Codec<fid>{});                                                                      \
    return true;
    ROCQ_FORMATS(ROCQ_X)
#undef ROCQ_X
    default:
      return false;
  }
}

}  // namespace rocq
