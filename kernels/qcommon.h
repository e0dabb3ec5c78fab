// Device helpers shared by the rocq kernels: element types, activation loads, unit geometry.
// Torch-free; platform differences come only from platform.h.
#pragma once

#include "formats.h"
#include "launch.h"

namespace rocq::gpu {

// Storage of one element of an activation/output dtype.
template <int XK> struct XStore;
template <> struct XStore<(int)DType::F32> { using T = float; };
template <> struct XStore<(int)DType::F16> { using T = uint16_t; };
template <> struct XStore<(int)DType::BF16> { using T = uint16_t; };

template <int XK>
ROCQ_DEVICE float rq_to_float(typename XStore<XK>::T v) {
  if constexpr (XK == (int)DType::F32) return v;
  else if constexpr (XK == (int)DType::F16) return rq_f16_to_f32(v);
  else return rq_bf16_bits_to_float(v);
}

template <int XK>
ROCQ_DEVICE typename XStore<XK>::T rq_from_float(float f) {
  if constexpr (XK == (int)DType::F32) return f;
  else if constexpr (XK == (int)DType::F16) return rq_f32_to_f16(f);
  else return rq_float_to_bf16_bits(f);
}

// Low/high 16-bit halves of a word holding two 16-bit elements, as floats.
template <int XK>
ROCQ_DEVICE void rq_unpack2(uint32_t u, float& a, float& b) {
  if constexpr (XK == (int)DType::BF16) {
    a = rq_bits_to_float(u << 16);
    b = rq_bits_to_float(u & 0xFFFF0000u);
  } else {
    a = rq_f16_to_f32((uint16_t)(u & 0xFFFFu));
    b = rq_f16_to_f32((uint16_t)(u >> 16));
  }
}

// Reads runs of a row of x (M rows of ld elements; rows >= M repeat row M-1 so that a kernel
// compiled for up to MT rows can run with fewer). Loads of 4 elements need e % 4 == 0 and a
// 16-byte aligned x with ld % 8 == 0 (checked by the launcher).
template <int XK>
struct XRows {
  using T = typename XStore<XK>::T;
  const T* x;
  int64_t ld;
  int M;
  ROCQ_DEVICE const T* row(int m) const { return x + (int64_t)(m < M ? m : M - 1) * ld; }
  ROCQ_DEVICE void load4(int m, int64_t e, float (&o)[4]) const {
    const T* p = row(m) + e;
    if constexpr (XK == (int)DType::F32) {
      const float4 v = *reinterpret_cast<const float4*>(p);
      o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(p);
      rq_unpack2<XK>(v.x, o[0], o[1]);
      rq_unpack2<XK>(v.y, o[2], o[3]);
    }
  }
  ROCQ_DEVICE void load8(int m, int64_t e, float (&o)[8]) const {
    const T* p = row(m) + e;
    if constexpr (XK == (int)DType::F32) {
      const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
      o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
    } else {
      const uint4 v = *reinterpret_cast<const uint4*>(p);
      rq_unpack2<XK>(v.x, o[0], o[1]);
      rq_unpack2<XK>(v.y, o[2], o[3]);
      rq_unpack2<XK>(v.z, o[4], o[5]);
      rq_unpack2<XK>(v.w, o[6], o[7]);
    }
  }
  ROCQ_DEVICE float load1(int m, int64_t e) const { return rq_to_float<XK>(row(m)[e]); }
};

// A kernel's unit of work: one block for quantized formats, 8 elements for dense ones.
template <class C>
struct Unit {
  static constexpr int kElems = C::kElems == 1 ? 8 : C::kElems;
  static constexpr int kBytes = C::kElems == 1 ? 8 * C::kBytes : C::kBytes;
};

// True when the format keeps an E8M0 scale plane (one byte per 32 elements).
constexpr bool rq_has_scale_plane(int id) {
  for (const FormatInfo& f : kFormats)
    if (f.id == id) return f.scale_plane;
  return false;
}

// Whether a scale plane ([n, k / 32] E8M0 bytes from sc) can be read in 4-byte words: its rows
// are whole words (k % 128 == 0) and it starts 4-byte aligned. The kernels that copy it in words
// decline it (qmatvec_stream) or read it byte by byte (qmma_kernel, qmma_stream, qmma_wide) else.
ROCQ_HD bool rq_plane_words(const uint8_t* sc, int64_t k) {
  return k % 128 == 0 && (reinterpret_cast<uintptr_t>(sc) & 3) == 0;
}

// Bits [sh, sh+32) of the 64-bit value hi:lo (0 <= sh < 32).
ROCQ_HD uint32_t rq_funnel(uint32_t lo, uint32_t hi, uint32_t sh) {
  return (uint32_t)(((((uint64_t)hi) << 32) | lo) >> sh);
}

// Loads of format bytes from global or shared memory (p 4-aligned / 2-aligned / any
// alignment). The unaligned ones read the aligned words that hold [p, p + 4N): N + 1 loads and
// N funnel shifts when p is not 4-byte aligned (the extra word then holds a byte of the range,
// so the read stays inside any allocation whose end is 4-aligned), N loads when it is.
ROCQ_DEVICE uint32_t rq_g32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
ROCQ_DEVICE uint32_t rq_g16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
template <int N>
ROCQ_DEVICE void rq_g32n_any(const uint8_t* p, uint32_t (&o)[N]) {
  // (pointer arithmetic, not an integer round trip: the compiler keeps the address space, so a
  // shared-memory p gets shared loads)
  const uint32_t lo = (uint32_t)(reinterpret_cast<uintptr_t>(p) & 3u);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(p - lo);
  const uint32_t sh = lo * 8u;
  uint32_t a[N + 1];
#pragma unroll
  for (int i = 0; i < N; ++i) a[i] = w[i];
  a[N] = sh ? w[N] : 0u;
#pragma unroll
  for (int i = 0; i < N; ++i) o[i] = rq_funnel(a[i], a[i + 1], sh);
}
// rq_g32n_any where the caller knows the misalignment: p = a + lo (a 4-byte aligned), sh = 8 lo,
// one value for many calls, so computed once (per call, rq_g32n_any's mask, shift, select and
// predicated load are ~4 instructions). Reads a[N] even when sh == 0: callers keep the word
// a[N] inside their buffer (the streaming kernel's stages: shared memory follows every stage,
// the next stage or the x rows; where an asynchronous copy is filling it, the bytes read there
// are shifted out, sh == 0).
template <int N>
ROCQ_DEVICE void rq_g32n_sh(const uint32_t* a, uint32_t sh, uint32_t (&o)[N]) {
  uint32_t w[N + 1];
#pragma unroll
  for (int i = 0; i <= N; ++i) w[i] = a[i];
#pragma unroll
  for (int i = 0; i < N; ++i) o[i] = rq_funnel(w[i], w[i + 1], sh);
}
ROCQ_DEVICE uint32_t rq_g32_any(const uint8_t* p) {
  uint32_t o[1];
  rq_g32n_any<1>(p, o);
  return o[0];
}

ROCQ_HD int64_t rq_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The 16-level table formats' levels (IQ4_NL, IQ4_XS: rq_iq4nl_value; MXFP4, OCP MXFP4: E2M1
// doubled) as int8 bytes looked up in registers, 4 codes per step (qdot_int.h, decode32.h).
template <int ID>
ROCQ_HD constexpr int rq_lut16_level(int c) {  // the level of code c (0..15)
  return ID == QT_IQ4_NL || ID == QT_IQ4_XS ? rq_iq4nl_value(c) : rq_e2m1x2_value(c);
}
template <int ID>
ROCQ_HD constexpr uint32_t rq_lut16_word(int j) {  // levels of codes 4j..4j+3, one int8 per byte
  uint32_t w = 0;
  for (int b = 0; b < 4; ++b) w |= (uint32_t)(uint8_t)(int8_t)rq_lut16_level<ID>(4 * j + b) << (8 * b);
  return w;
}
// Byte j of the result = the level of nibble j of sel (j = 0..3: only the low 16 bits count).
// Selector nibbles keep bit 3 clear (set, it would make the permute replicate a sign bit).
template <int ID>
ROCQ_DEVICE uint32_t rq_lut16_i8x4(uint32_t lo3, uint32_t pick) {
  constexpr uint32_t t0 = rq_lut16_word<ID>(0), t1 = rq_lut16_word<ID>(1), t2 = rq_lut16_word<ID>(2),
                     t3 = rq_lut16_word<ID>(3);
  return rq_byte_perm(rq_byte_perm(t0, t1, lo3), rq_byte_perm(t2, t3, lo3), pick);
}
// The levels of the 8 codes of word w: run A = codes of elements (4 consecutive), run B
// likewise. Q4_0 order (Q40): low nibbles are run A, high nibbles run B; otherwise (OCP) the
// nibbles are in element order, the low half-word run A.
template <int ID, bool Q40>
ROCQ_DEVICE void rq_lut16_runs(uint32_t w, uint32_t& ra, uint32_t& rb) {
  const uint32_t lo3 = w & 0x77777777u;                         // code within its half-table
  const uint32_t pick = ((w >> 1) & 0x44444444u) | 0x32103210u;  // byte j of the low (0) or high (4) table
  const uint32_t v0 = rq_lut16_i8x4<ID>(lo3, pick), v1 = rq_lut16_i8x4<ID>(lo3 >> 16, pick >> 16);
  if constexpr (Q40) {  // v0 = levels of (e0, e16, e1, e17), v1 = (e2, e18, e3, e19)
    ra = rq_byte_perm(v0, v1, 0x6420);
    rb = rq_byte_perm(v0, v1, 0x7531);
  } else {
    ra = v0;
    rb = v1;
  }
}

// The operands of one fused matmul launch, y[M, n] = x[M, k] @ W^T (+ bias): x and y contiguous
// in the activation dtype, W as [n, row_bytes] format bytes (+ the scale plane), bias fp32.
struct QmatArgs {
  const void* x;
  void* y;
  const uint8_t* qw;
  const uint8_t* sc;
  const float* bias;
  int M;
  int64_t n, k, row_bytes;
};

}  // namespace rocq::gpu
