// rocq's planar OCP MX formats (OCP Microscaling Formats v1.0): codecs.
//
// Included by formats.h INSIDE namespace rocq (after the GGUF codecs, before dispatch_format),
// so this file opens no namespace; include formats.h, never this file on its own. Torch-free, usable from host C++ and from HIP/CUDA device code: no
// tables in memory, no host-only calls, only integer bit work and exact float multiplies.
//
// Layout (the layout AMD Quark exports, so its checkpoints load without conversion):
//   qweight  uint8 [n, k/32 * kBytes]: the element plane, one "block" = 32 consecutive
//            elements of a row:
//              ocp_mxfp4       (id 100) E2M1, 16 bytes: element 2i in the LOW nibble of byte
//                              i, element 2i+1 in the high nibble.
//              ocp_mxfp6_e2m3  (id 101) E2M3, 24 bytes: elements 4j..4j+3 form the
//              ocp_mxfp6_e3m2  (id 102) E3M2, little-endian 24-bit word v0 | v1<<6 | v2<<12 |
//                              v3<<18 stored in bytes 3j..3j+2.
//              ocp_mxfp8_e4m3  (id 103) E4M3 (fn: S.1111.111 is NaN, no inf), one byte each.
//              ocp_mxfp8_e5m2  (id 104) E5M2 (IEEE-like inf/NaN), one byte each.
//              ocp_mxint8      (id 105) INT8, two's complement with an implicit 2^-6, one byte each.
//   scales   uint8 [n, k/32]: E8M0, value 2^(e-127) for e = 0..254 (2^-127 .. 2^127), 255 = NaN.
//
// Decode: x = element_value * 2^(e-127), one fp32 multiply. Every element value is exact in
// fp32 and its significand has at most 4 bits whose lowest weighs >= 2^-16, so every product
// with a scale >= 2^-127 is exact in fp32 (down to 2^-143, well above the fp32 subnormal
// floor 2^-149): no rounding ever happens except overflow to +-inf (e.g. E2M1 6 * 2^127).
// The scale 2^-127 (e = 0) is itself an fp32 subnormal (bits 0x00400000); it and subnormal
// products need a target that keeps fp32 denormals (the default for host code, for nvcc
// without -ftz/--use_fast_math and for HIP without -fgpu-flush-denormals-to-zero).
// A NaN scale makes every element of its block NaN; an element NaN/inf (E4M3 NaN, E5M2
// inf/NaN) stays NaN/inf.
#pragma once

#ifndef ROCQ_FORMATS
#error "formats_mx.h is part of formats.h: include kernels/formats.h instead"
#endif

// ---------------------------------------------------------------------------------------------
// Scalar decoders (exact; shared by host and device)
// ---------------------------------------------------------------------------------------------

// OCP E8M0 scale: 2^(e-127); e = 0 is the fp32 subnormal 2^-127; e = 255 is NaN.
ROCQ_HD float rq_e8m0(uint8_t e) {
  const uint32_t bits = e == 255 ? 0x7FC00000u : (e == 0 ? 0x00400000u : ((uint32_t)e << 23));
  return rq_bits_to_float(bits);
}

// Generic small float without inf/NaN: EB exponent bits, MB mantissa bits, bias B, sign bit
// at EB+MB. Returns the exact value (normals built from bits, subnormals as int * 2^(1-B-MB)).
template <int EB, int MB, int B>
ROCQ_HD float rq_minifloat(uint32_t code) {
  const uint32_t sign = ((code >> (EB + MB)) & 1u) << 31;
#if defined(ROCQ_DEVICE_PASS)
  // Device code: (ex, man) placed under fp32's exponent and mantissa fields reads as the value
  // times 2^(B-127), normals and subnormals alike (an fp32 subnormal when ex = 0, which needs
  // denormals kept, as above), so one exact multiply by 2^(127-B) gives the value: the same
  // values as the host branch below in a few instructions instead of ~15 (ncu, H200: the
  // dequantize kernel of OCP MXFP8 issued ~30 instructions per element). Host code keeps the
  // branch: x86 takes subnormal operands through microcode assists (~100x slower), and E2M1's
  // 0.5 would be one. tests/test_gpu.py compares GPU dequantize with the CPU op bit for bit.
  const uint32_t mag = (code & ((1u << (EB + MB)) - 1u)) << (23 - MB);
  return rq_mul(rq_bits_to_float(sign | mag), rq_bits_to_float((uint32_t)(254 - B) << 23));
#else
  const uint32_t ex = (code >> MB) & ((1u << EB) - 1u);
  const uint32_t man = code & ((1u << MB) - 1u);
  // Subnormal: man * 2^(1-B-MB); the power of two is a normal fp32 constant for all our types.
  const float sub = (float)man * rq_bits_to_float((uint32_t)(127 + 1 - B - MB) << 23);
  const uint32_t nrm = ((ex + 127u - (uint32_t)B) << 23) | (man << (23 - MB));
  const uint32_t mag = ex == 0 ? rq_float_to_bits(sub) : nrm;
  return rq_bits_to_float(sign | mag);
#endif
}

// FP4 E2M1 (4-bit code): +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
ROCQ_HD float rq_fp4_e2m1(uint32_t c) { return rq_minifloat<2, 1, 1>(c & 0xFu); }
// FP6 E2M3 (6-bit code): max 7.5, min normal 1, subnormals k/8.
ROCQ_HD float rq_fp6_e2m3(uint32_t c) { return rq_minifloat<2, 3, 1>(c & 0x3Fu); }
// FP6 E3M2 (6-bit code): max 28, min normal 0.25, subnormals k/16.
ROCQ_HD float rq_fp6_e3m2(uint32_t c) { return rq_minifloat<3, 2, 3>(c & 0x3Fu); }
// FP8 E4M3 (OCP "fn"): max 448, S.1111.111 = NaN, no inf.
ROCQ_HD float rq_fp8_e4m3(uint32_t c) {
  c &= 0xFFu;
  if ((c & 0x7Fu) == 0x7Fu) return rq_bits_to_float(0x7FC00000u | ((c & 0x80u) << 24));
  return rq_minifloat<4, 3, 7>(c);
}
// FP8 E5M2: IEEE-like, exponent 31 is inf (mantissa 0) or NaN.
ROCQ_HD float rq_fp8_e5m2(uint32_t c) {
  c &= 0xFFu;
  const uint32_t sign = (c & 0x80u) << 24;
  if ((c & 0x7Cu) == 0x7Cu) return rq_bits_to_float(sign | 0x7F800000u | ((c & 3u) ? 0x400000u : 0u));
  return rq_minifloat<5, 2, 15>(c);
}
// INT8 (MXINT8): two's complement times 2^-6: -2 .. 127/64.
ROCQ_HD float rq_mxint8(uint32_t c) { return (float)(int8_t)(uint8_t)c * 0.015625f; }

// ---------------------------------------------------------------------------------------------
// Codecs. kElems = 32 (one E8M0 scale per block), kBytes = packed bytes of 32 elements.
// Each also exposes elem(code) (the unscaled element value) and kCodeBits, for kernels that
// want to build their own lookup tables or convert to other types.
// ---------------------------------------------------------------------------------------------

template <>
struct Codec<QT_OCP_MXFP4> {
  static constexpr int kId = QT_OCP_MXFP4, kElems = 32, kBytes = 16, kCodeBits = 4;
  ROCQ_HD static float elem(uint32_t code) { return rq_fp4_e2m1(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    const float s = rq_e8m0(scale);
    const uint32_t w = rq_ld32(blk + 4 * r);  // elements 8r..8r+7, nibble j = element 8r+j
    for (int j = 0; j < 8; ++j) out[j] = rq_mul(elem(w >> (4 * j)), s);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Shared by both FP6 codecs (C supplies elem()): 8 elements = two 24-bit little-endian words = 6 bytes.
template <class C>
ROCQ_HD void rq_fp6_decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
  const float s = rq_e8m0(scale);
  const uint8_t* p = blk + 6 * r;
  const uint32_t w0 = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
  const uint32_t w1 = (uint32_t)p[3] | ((uint32_t)p[4] << 8) | ((uint32_t)p[5] << 16);
  for (int j = 0; j < 4; ++j) out[j] = rq_mul(C::elem(w0 >> (6 * j)), s);
  for (int j = 0; j < 4; ++j) out[4 + j] = rq_mul(C::elem(w1 >> (6 * j)), s);
}

template <>
struct Codec<QT_OCP_MXFP6_E2M3> {
  static constexpr int kId = QT_OCP_MXFP6_E2M3, kElems = 32, kBytes = 24, kCodeBits = 6;
  ROCQ_HD static float elem(uint32_t code) { return rq_fp6_e2m3(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    rq_fp6_decode8<Codec>(blk, scale, r, out);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

template <>
struct Codec<QT_OCP_MXFP6_E3M2> {
  static constexpr int kId = QT_OCP_MXFP6_E3M2, kElems = 32, kBytes = 24, kCodeBits = 6;
  ROCQ_HD static float elem(uint32_t code) { return rq_fp6_e3m2(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    rq_fp6_decode8<Codec>(blk, scale, r, out);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

// Shared by the byte-per-element codecs (FP8 E4M3/E5M2, INT8; C supplies elem()).
template <class C>
ROCQ_HD void rq_byte_decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
  const float s = rq_e8m0(scale);
  const uint8_t* p = blk + 8 * r;
  for (int j = 0; j < 8; ++j) out[j] = rq_mul(C::elem(p[j]), s);
}

template <>
struct Codec<QT_OCP_MXFP8_E4M3> {
  static constexpr int kId = QT_OCP_MXFP8_E4M3, kElems = 32, kBytes = 32, kCodeBits = 8;
  ROCQ_HD static float elem(uint32_t code) { return rq_fp8_e4m3(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    rq_byte_decode8<Codec>(blk, scale, r, out);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

template <>
struct Codec<QT_OCP_MXFP8_E5M2> {
  static constexpr int kId = QT_OCP_MXFP8_E5M2, kElems = 32, kBytes = 32, kCodeBits = 8;
  ROCQ_HD static float elem(uint32_t code) { return rq_fp8_e5m2(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    rq_byte_decode8<Codec>(blk, scale, r, out);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

template <>
struct Codec<QT_OCP_MXINT8> {
  static constexpr int kId = QT_OCP_MXINT8, kElems = 32, kBytes = 32, kCodeBits = 8;
  ROCQ_HD static float elem(uint32_t code) { return rq_mxint8(code); }
  ROCQ_HD static void decode8(const uint8_t* blk, uint8_t scale, int r, float* out) {
    rq_byte_decode8<Codec>(blk, scale, r, out);
  }
  ROCQ_HD static void decode_block(const uint8_t* b, uint8_t s, float* o) { rq_decode_block_runs<Codec>(b, s, o); }
};

