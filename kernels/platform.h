// rocq platform header: the ONLY file in kernels/ that knows which compiler and GPU vendor
// it is built for. Kernel and format files use the ROCQ_* / rq_* names below and never test
// __HIP_PLATFORM_AMD__, __CUDACC__ or __HIPCC__ themselves.
//
// Three builds include it:
//   * host C++ (g++/clang, CPU code in csrc/): ROCQ_HD is empty, rq_* are plain arithmetic;
//   * HIP (hipcc / clang -x hip) for AMD GPUs: wavefront 32 or 64, decided by the target;
//   * CUDA (nvcc) for NVIDIA GPUs, where our .hip sources are compiled as CUDA: warp 32.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__)
#define ROCQ_HIP 1
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>
#include <hip/hip_bfloat16.h>
#elif defined(__CUDACC__)
#define ROCQ_CUDA 1
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

#if defined(ROCQ_HIP) || defined(ROCQ_CUDA)
#define ROCQ_GPU_COMPILER 1
#define ROCQ_HD __host__ __device__ __forceinline__
#define ROCQ_DEVICE __device__ __forceinline__
#else
#define ROCQ_HD inline
#endif

// True while compiling the device side of a GPU translation unit.
#if defined(__HIP_DEVICE_COMPILE__) || defined(__CUDA_ARCH__)
#define ROCQ_DEVICE_PASS 1
#endif

namespace rocq {

// ---------------------------------------------------------------------------------------------
// Exact scalar conversions (identical results on host and device: pure integer bit work).
// ---------------------------------------------------------------------------------------------
ROCQ_HD float rq_bits_to_float(uint32_t u) {
#if defined(ROCQ_DEVICE_PASS)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

ROCQ_HD uint32_t rq_float_to_bits(float f) {
#if defined(ROCQ_DEVICE_PASS)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

// IEEE binary16 bits -> float, exact for every input (subnormals, inf, nan, -0).
ROCQ_HD float rq_half_bits_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // subnormal half: renormalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  return rq_bits_to_float(bits);
}

// bfloat16 bits -> float (exact).
ROCQ_HD float rq_bf16_bits_to_float(uint16_t b) { return rq_bits_to_float((uint32_t)b << 16); }

// float -> IEEE binary16 bits, round to nearest even, overflow to inf, NaN kept quiet.
ROCQ_HD uint16_t rq_float_to_half_bits(float f) {
  const uint32_t x = rq_float_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u));
  if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {                                     // result is subnormal or zero
    if (ax < 0x33000000u) return (uint16_t)sign;               // < 2^-25: rounds to 0
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;                          // 14..24 for e in [102,112]
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((ax - 0x38000000u) >> 13);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return (uint16_t)(sign | r);
}

// float -> bfloat16 bits, round to nearest even, NaN kept quiet.
ROCQ_HD uint16_t rq_float_to_bf16_bits(float f) {
  const uint32_t x = rq_float_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic that must not be fused: dequantization is bit-exact against references that
// round after every multiply and add, so d*q + m must never become one fma on any target.
// Host code in csrc/ is compiled with -ffp-contract=off as well.
// ---------------------------------------------------------------------------------------------
ROCQ_HD float rq_mul(float a, float b) {
#if defined(ROCQ_DEVICE_PASS)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
ROCQ_HD float rq_add(float a, float b) {
#if defined(ROCQ_DEVICE_PASS)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
ROCQ_HD float rq_sub(float a, float b) {
#if defined(ROCQ_DEVICE_PASS)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

}  // namespace rocq

// ---------------------------------------------------------------------------------------------
// Device-only facilities: warp/wavefront width, shuffles, streams, error strings.
// ---------------------------------------------------------------------------------------------
#if defined(ROCQ_GPU_COMPILER)
namespace rocq {

#if defined(ROCQ_HIP)
using gpuStream_t = hipStream_t;
using gpuError_t = hipError_t;
#define ROCQ_GPU_SUCCESS hipSuccess
inline const char* rq_error_string(gpuError_t e) { return hipGetErrorString(e); }
inline gpuError_t rq_last_error() { return hipGetLastError(); }
inline gpuError_t rq_func_set_max_dynamic_smem(const void* f, int bytes) {
  return hipFuncSetAttribute(f, hipFuncAttributeMaxDynamicSharedMemorySize, bytes);
}
// Wavefront width is a property of the compilation target (64 on CDNA, 32 on RDNA).
#if defined(__AMDGCN_WAVEFRONT_SIZE)
#define ROCQ_WARP_SIZE __AMDGCN_WAVEFRONT_SIZE
#else
#define ROCQ_WARP_SIZE 64
#endif
template <typename T>
ROCQ_DEVICE T rq_shfl_xor(T v, int mask) { return __shfl_xor(v, mask, ROCQ_WARP_SIZE); }
#else  // CUDA
using gpuStream_t = cudaStream_t;
using gpuError_t = cudaError_t;
#define ROCQ_GPU_SUCCESS cudaSuccess
inline const char* rq_error_string(gpuError_t e) { return cudaGetErrorString(e); }
inline gpuError_t rq_last_error() { return cudaGetLastError(); }
inline gpuError_t rq_func_set_max_dynamic_smem(const void* f, int bytes) {
  return cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}
#define ROCQ_WARP_SIZE 32
template <typename T>
ROCQ_DEVICE T rq_shfl_xor(T v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask, ROCQ_WARP_SIZE); }
#endif

// Sum over one warp/wavefront, whatever its width.
ROCQ_DEVICE float rq_warp_sum(float v) {
#pragma unroll
  for (int o = ROCQ_WARP_SIZE / 2; o > 0; o >>= 1) v += rq_shfl_xor(v, o);
  return v;
}

}  // namespace rocq
#endif  // ROCQ_GPU_COMPILER
