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
ROCQ_DEVICE uint32_t rq_g32_any(const uint8_t* p) {
  uint32_t o[1];
  rq_g32n_any<1>(p, o);
  return o[0];
}

ROCQ_HD int64_t rq_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
