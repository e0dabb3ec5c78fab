// rocq platform header: the ONLY header kernels/ includes to learn which compiler and GPU vendor
// it is built for (with its matrix-unit part, platform_mma.h, which it includes at the end).
// Kernel and format files use the ROCQ_* / rq_* names below and never test
// __HIP_PLATFORM_AMD__, __CUDACC__ or __HIPCC__ themselves.
//
// Three builds include it:
//   * host C++ (g++/clang, CPU code in csrc/): ROCQ_HD is empty, rq_* are plain arithmetic;
//   * HIP (hipcc / clang -x hip) for AMD GPUs: wavefront 32 or 64, decided by the target;
//   * CUDA (nvcc) for NVIDIA GPUs, where our .hip sources are compiled as CUDA: warp 32.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

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

// The backend as a host-visible constant (the same in the host and device passes of one build),
// for the per-backend switches below (kRqIntDot, kRqLargeShared, kRqMmaFrag).
namespace rocq {
#if defined(ROCQ_CUDA)
inline constexpr bool kRqCudaBackend = true;
#else
inline constexpr bool kRqCudaBackend = false;
#endif
}  // namespace rocq

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
// Resident blocks per multiprocessor of kernel f at this block size and dynamic shared memory
// (0 on error).
inline int rq_blocks_per_sm(const void* f, int threads, size_t smem) {
  int v = 0;
  return hipOccupancyMaxActiveBlocksPerMultiprocessor(&v, f, threads, smem) == hipSuccess ? v : 0;
}
// Largest shared memory one block may opt in to on the current device (0 on error).
inline int rq_max_smem_optin() {
  int dev = 0, v = 0;
  if (hipGetDevice(&dev) != hipSuccess) return 0;
  if (hipDeviceGetAttribute(&v, hipDeviceAttributeSharedMemPerBlockOptin, dev) != hipSuccess) return 0;
  return v;
}
// Wavefront width is a property of the compilation target: 64 on GFX9 (GCN, CDNA: MI100..MI350),
// 32 on GFX10/11/12 (RDNA; rocq never builds with -mwavefrontsize64, which would make RDNA code
// 64 wide and this wrong: not checked, as the macros that could check it are deprecated or gone
// depending on the ROCm release). Taken from clang's target
// family macros: __AMDGCN_WAVEFRONT_SIZE is deprecated since ROCm 6.3 and gone in ROCm 7.2. A
// device pass for any other family stops here rather than guess. The host pass has no target:
// ROCQ_WARP_SIZE is a placeholder there, and host code sizes launches with rq_device_warp_size().
#if defined(__GFX9__)
#define ROCQ_WARP_SIZE 64
#elif defined(__GFX10__) || defined(__GFX11__) || defined(__GFX12__)
#define ROCQ_WARP_SIZE 32
#elif defined(__HIP_DEVICE_COMPILE__)
#error "rocq: unknown AMD GPU family (not GFX9..GFX12): its wavefront size is not known here"
#else
#define ROCQ_WARP_SIZE 64  // host pass: placeholder, never used to size a launch
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
inline int rq_blocks_per_sm(const void* f, int threads, size_t smem) {
  int v = 0;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v, f, threads, smem) == cudaSuccess ? v : 0;
}
inline int rq_max_smem_optin() {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) return 0;
  return v;
}
#define ROCQ_WARP_SIZE 32
template <typename T>
ROCQ_DEVICE T rq_shfl_xor(T v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask, ROCQ_WARP_SIZE); }
#endif

// Exact IEEE conversions through the hardware (device code only; bit-identical to the
// integer versions above for every non-NaN input, much cheaper in inner loops).
#if defined(ROCQ_HIP) || defined(ROCQ_CUDA)
ROCQ_DEVICE float rq_f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }
ROCQ_DEVICE uint16_t rq_f32_to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }
#endif

// Orders shared-memory traffic between the lanes of one warp/wavefront (lanes of a wave run
// in lockstep on AMD; a fence keeps the compiler from moving LDS accesses across it).
#if defined(ROCQ_HIP)
ROCQ_DEVICE void rq_warp_sync() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
#else
ROCQ_DEVICE void rq_warp_sync() { __syncwarp(); }
#endif

// Byte permute with CUDA __byte_perm semantics restricted to selector nibbles 0..7: result
// byte i = byte (s >> 4i) & 7 of the 8 bytes {x (bytes 0-3), y (bytes 4-7)}. One PRMT on NVIDIA;
// selector nibbles with bit 3 set are not allowed (CUDA's sign-replicate mode differs).
#if defined(ROCQ_CUDA)
ROCQ_DEVICE uint32_t rq_byte_perm(uint32_t x, uint32_t y, uint32_t s) { return __byte_perm(x, y, s); }
#else
ROCQ_DEVICE uint32_t rq_byte_perm(uint32_t x, uint32_t y, uint32_t s) {
  const uint64_t v = ((uint64_t)y << 32) | x;
  uint32_t r = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) r |= (uint32_t)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xFFu) << (8 * i);
  return r;
}
#endif

// Byte permute with the full PRMT semantics (PTX prmt.b32, default mode): result byte i is byte
// (s >> 4i) & 7 of the 8 bytes {x, y} when bit 4i + 3 of s is clear, else that byte's sign bit
// replicated (0x00 or 0xFF). Only the low 16 bits of s count. One PRMT on NVIDIA; a loop
// elsewhere (the callers, the integer pieces, run only where kRqIntDot holds).
#if defined(ROCQ_CUDA)
ROCQ_DEVICE uint32_t rq_prmt_sx(uint32_t x, uint32_t y, uint32_t s) {
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(y), "r"(s));
  return r;
}
#else
ROCQ_DEVICE uint32_t rq_prmt_sx(uint32_t x, uint32_t y, uint32_t s) {
  const uint64_t v = ((uint64_t)y << 32) | x;
  uint32_t r = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t sel = (s >> (4 * i)) & 15u;
    uint32_t b = (uint32_t)(v >> (8 * (sel & 7u))) & 0xFFu;
    if (sel & 8u) b = (b & 0x80u) ? 0xFFu : 0u;
    r |= b << (8 * i);
  }
  return r;
}
#endif

// Whether the backend has a fast 16x8-bit integer dot product (host-visible, like
// kRqLargeShared): the integer decode pieces (qdot_int.h) are only chosen where it does.
// NVIDIA: DP2A (sm_61+). AMD: none (rq_dot2_16x8 below is plain multiply-adds there), so the
// fp32 pieces stay until an AMD measurement says otherwise.
inline constexpr bool kRqIntDot = kRqCudaBackend;

// Integer dot product of two signed 16-bit values (x16x2: low half, high half) with two bytes of
// w4 (bytes 0,1 when HI is false, bytes 2,3 when true; signed, or unsigned 0..255 when U), plus
// acc. One DP2A on NVIDIA (sm_61+; .s32.u32 through PTX for U: the intrinsics offer only both
// signed or both unsigned); plain integer multiply-adds elsewhere (AMD has no 16x8-bit dot
// instruction).
template <bool HI, bool U = false>
ROCQ_DEVICE int rq_dot2_16x8(uint32_t x16x2, uint32_t w4, int acc) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
  if constexpr (U) {
    int d;
    if constexpr (HI)
      asm("dp2a.hi.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(x16x2), "r"(w4), "r"(acc));
    else
      asm("dp2a.lo.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(x16x2), "r"(w4), "r"(acc));
    return d;
  } else {
    return HI ? __dp2a_hi((int)x16x2, (int)w4, acc) : __dp2a_lo((int)x16x2, (int)w4, acc);
  }
#else
  const uint32_t b0 = (w4 >> (HI ? 16 : 0)) & 0xFFu, b1 = (w4 >> (HI ? 24 : 8)) & 0xFFu;
  const int w0 = U ? (int)b0 : (int)(int8_t)b0, w1 = U ? (int)b1 : (int)(int8_t)b1;
  return acc + (int)(int16_t)(x16x2 & 0xFFFFu) * w0 + (int)(int16_t)(x16x2 >> 16) * w1;
#endif
}

// Two OCP FP8 E4M3 codes (low byte, high byte) -> IEEE half bits (low half, high half), exact,
// NaN kept, where the target converts in hardware (NVIDIA sm_89+): ROCQ_HAS_E4M3X2_CVT, and
// kRqE4M3Cvt in this compilation pass (false in host passes).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#define ROCQ_HAS_E4M3X2_CVT 1
ROCQ_DEVICE uint32_t rq_e4m3x2_to_f16x2(uint32_t v16) {
  uint32_t r;
  const unsigned short a = (unsigned short)v16;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(a));
  return r;
}
inline constexpr bool kRqE4M3Cvt = true;
#else
inline constexpr bool kRqE4M3Cvt = false;
#endif

// Sum over one warp/wavefront, whatever its width.
ROCQ_DEVICE float rq_warp_sum(float v) {
#pragma unroll
  for (int o = ROCQ_WARP_SIZE / 2; o > 0; o >>= 1) v += rq_shfl_xor(v, o);
  return v;
}

// The current device's warp (wavefront) width, for host code that sizes launches in warps: on
// AMD the host pass cannot know it (ROCQ_WARP_SIZE above). 0 on error.
inline int rq_device_warp_size() {
#if defined(ROCQ_HIP)
  int dev = 0, w = 0;
  if (hipGetDevice(&dev) != hipSuccess) return 0;
  if (hipDeviceGetAttribute(&w, hipDeviceAttributeWarpSize, dev) != hipSuccess) return 0;
  return w;
#else
  return 32;
#endif
}
// The current device's index (host code; -1 on error).
inline int rq_current_device() {
  int dev = -1;
#if defined(ROCQ_HIP)
  return hipGetDevice(&dev) == hipSuccess ? dev : -1;
#else
  return cudaGetDevice(&dev) == cudaSuccess ? dev : -1;
#endif
}
// Multiprocessors (CUs) of the current device, for sizing grids (host code; 0 on error).
inline int rq_sm_count() {
  int dev = 0, n = 0;
#if defined(ROCQ_HIP)
  if (hipGetDevice(&dev) != hipSuccess) return 0;
  if (hipDeviceGetAttribute(&n, hipDeviceAttributeMultiprocessorCount, dev) != hipSuccess) return 0;
#else
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
#endif
  return n;
}

// The multiprocessor count and shared-memory opt-in limit of device `dev`, which must be the
// current one (rq_current_device()): read once per device and kept (host code, thread-safe), so
// that launchers can size grids and buffers on every call, and layers may sit on several
// devices. {0, 0} on error (not kept: asked again next time).
struct RqDeviceFacts {
  int sms = 0, optin = 0;
};
inline RqDeviceFacts rq_device_facts(int dev) {
  constexpr int kMaxDevices = 64;
  static std::mutex mu;
  static RqDeviceFacts facts[kMaxDevices];
  if (dev < 0 || dev >= kMaxDevices) return {};
  std::lock_guard<std::mutex> lock(mu);
  if (facts[dev].sms <= 0) facts[dev] = {rq_sm_count(), rq_max_smem_optin()};
  return facts[dev];
}
inline RqDeviceFacts rq_device_facts() { return rq_device_facts(rq_current_device()); }

// One kernel's dynamic shared-memory opt-in and occupancy on one device, for the launchers that
// size persistent grids per call (host code; the caller holds its lock): blocks(kern, threads,
// smem) opts in to `smem` where it is more than so far and returns the resident blocks per
// multiprocessor at that size, kept per size; 0 where the device refuses the size (its error is
// cleared, so that another kernel takes the call) or fits no block.
struct RqSmemOccupancy {
  int64_t opted = 0;  // opted in so far (0: not yet; the 48 KB default counts static shared memory too)
  std::map<int64_t, int> occ;
  int blocks(const void* kern, int threads, int64_t smem) {
    if (smem > opted) {
      if (rq_func_set_max_dynamic_smem(kern, (int)smem) != ROCQ_GPU_SUCCESS) {
        (void)rq_last_error();
        return 0;
      }
      opted = smem;
    }
    auto it = occ.find(smem);
    if (it == occ.end()) it = occ.emplace(smem, rq_blocks_per_sm(kern, threads, (size_t)smem)).first;
    return it->second;
  }
};

// Major compute capability of the current NVIDIA device (host code; 0 on error or on HIP).
inline int rq_cuda_major() {
#if defined(ROCQ_HIP)
  return 0;
#else
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return 0;
  return v;
#endif
}

}  // namespace rocq
#endif  // ROCQ_GPU_COMPILER

// The matrix-unit half of the platform layer (qgemm's RqMma, qmma's register fragments, the
// asynchronous copies): its own file for size only; it is included here and nowhere else.
#include "platform_mma.h"
