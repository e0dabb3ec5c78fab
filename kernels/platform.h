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

}  // namespace rocq
#endif  // ROCQ_GPU_COMPILER

// ---- matrix-unit fragments (qgemm) ----------------------------------------------------------
// Owned by the qgemm kernel (kernels/qgemm.hip); everything below is device code.
//
// One warp/wavefront computes a 16x16 fp32 tile C += A * B^T from 16-bit operands (bf16 or
// fp16, picked by RqOp) that sit in shared memory as 16 rows of 16 k-contiguous elements each:
// A rows are the 16 "i" rows, B rows the 16 "j" rows, C[i][j] = sum_k A[i][k] * B[j][k].
//   RqMma<OP>::load(frag, smem, ld)  fragment of rows smem[r * ld + 0..15], r = 0..15; ld in
//                                    elements, a multiple of 8, smem 16-byte aligned;
//   RqMma<OP>::mma(c, a, b)          c += a * b^T (all lanes of the warp call it together);
//   RqMma<OP>::c_row(lane, e) / c_col(lane, e): which C[i][j] accumulator e (0 .. kCRegs-1)
//                                    of lane `lane` holds.
// Implementations, chosen here by target only:
//   NVIDIA sm_80+ : ldmatrix.x4 + two mma.sync.m16n8k16 (bf16 or f16, fp32 accumulators);
//   AMD CDNA (gfx90a, gfx94x, gfx950, wave64): one v_mfma_f32_16x16x16{bf16_1k,f16};
//   AMD RDNA3 (gfx11, wave32): one v_wmma_f32_16x16x16_{bf16,f16} (lanes 16..31 repeat 0..15);
//   anything else (gfx1030, older NVIDIA, the host pass): plain fp32 FMAs from shared memory.
// Also: rq_cp_async16 / rq_cp_async4 / rq_cp_async_commit / rq_cp_async_wait<N> - a 16-byte
// (4-byte) global->shared copy that runs asynchronously where the target can (cp.async on sm_80+),
// else a plain copy.
#if defined(ROCQ_GPU_COMPILER)
namespace rocq {

enum class RqOp : int { BF16 = 0, F16 = 1 };

// Whether one CTA may use a large shared-memory tile (NVIDIA sm_80+/sm_90: up to ~160-227 KB
// after opting in) or must stay within AMD's 64 KB of LDS per workgroup. Same value in the
// host and device passes of one backend, so host code can size launches with it.
inline constexpr bool kRqLargeShared = kRqCudaBackend;

template <RqOp OP>
ROCQ_DEVICE float rq_op_to_float(uint16_t v) {
  if constexpr (OP == RqOp::BF16) return rq_bits_to_float((uint32_t)v << 16);
  else return __half2float(__ushort_as_half(v));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define ROCQ_MMA_NV 1
#define ROCQ_MMA_NATIVE 1
#elif defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__) || \
    defined(__gfx950__)
#define ROCQ_MMA_MFMA 1
#define ROCQ_MMA_NATIVE 1
#elif defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__) || defined(__gfx1103__) || \
    defined(__gfx1150__) || defined(__gfx1151__)
#define ROCQ_MMA_WMMA 1
#define ROCQ_MMA_NATIVE 1
#endif

#if defined(ROCQ_MMA_NV)
// ldmatrix.x4: lane l points at row (l%8) + 8*((l/8)&1), k offset 8*(l/16); register q then
// holds the 8x8 quarter q in the mma.sync A-fragment order (rows 0-7/8-15, k 0-7/8-15).
template <RqOp OP>
struct RqMma {
  static constexpr int kCRegs = 8;
  struct Frag { uint32_t r[4]; };
  struct Acc { float v[8]; };
  ROCQ_DEVICE static void load(Frag& f, const uint16_t* s, int ld) {
    const int l = threadIdx.x % 32;
    const uint16_t* p = s + (l % 8 + 8 * ((l / 8) & 1)) * ld + 8 * (l / 16);
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(f.r[0]), "=r"(f.r[1]), "=r"(f.r[2]), "=r"(f.r[3])
                 : "r"(a));
  }
  // B rows j 0-7 are quarters 0 (k 0-7) and 2 (k 8-15); rows 8-15 quarters 1 and 3.
  ROCQ_DEVICE static void mma(Acc& c, const Frag& a, const Frag& b) {
    if constexpr (OP == RqOp::BF16) {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c.v[0]), "+f"(c.v[1]), "+f"(c.v[2]), "+f"(c.v[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[2]));
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c.v[4]), "+f"(c.v[5]), "+f"(c.v[6]), "+f"(c.v[7])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[1]), "r"(b.r[3]));
    } else {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c.v[0]), "+f"(c.v[1]), "+f"(c.v[2]), "+f"(c.v[3])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[2]));
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(c.v[4]), "+f"(c.v[5]), "+f"(c.v[6]), "+f"(c.v[7])
          : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[1]), "r"(b.r[3]));
    }
  }
  // accumulator e: j-half e/4; within it rows g, g, g+8, g+8 and cols 2t, 2t+1 (g = lane/4, t = lane%4)
  ROCQ_DEVICE static int c_row(int lane, int e) { return lane / 4 + 8 * ((e & 3) >> 1); }
  ROCQ_DEVICE static int c_col(int lane, int e) { return 8 * (e >> 2) + 2 * (lane % 4) + (e & 1); }
};

#elif defined(ROCQ_MMA_MFMA)
// v_mfma_f32_16x16x16: lane l holds A[l%16][4*(l/16) .. +3] and B^T's row l%16, same k;
// accumulator e of lane l is C[4*(l/16) + e][l%16].
template <RqOp OP>
struct RqMma {
  static constexpr int kCRegs = 4;
  typedef short s4 __attribute__((ext_vector_type(4)));
  typedef _Float16 h4 __attribute__((ext_vector_type(4)));
  typedef float f4 __attribute__((ext_vector_type(4)));
  struct Frag { s4 v; };
  struct Acc { f4 v; };
  ROCQ_DEVICE static void load(Frag& f, const uint16_t* s, int ld) {
    const int l = threadIdx.x % ROCQ_WARP_SIZE;
    f.v = *reinterpret_cast<const s4*>(s + (l % 16) * ld + 4 * (l / 16));
  }
  ROCQ_DEVICE static void mma(Acc& c, const Frag& a, const Frag& b) {
    if constexpr (OP == RqOp::BF16)
      c.v = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(a.v, b.v, c.v, 0, 0, 0);
    else
      c.v = __builtin_amdgcn_mfma_f32_16x16x16f16(__builtin_bit_cast(h4, a.v), __builtin_bit_cast(h4, b.v), c.v,
                                                  0, 0, 0);
  }
  ROCQ_DEVICE static int c_row(int lane, int e) { return 4 * ((lane % 64) / 16) + e; }
  ROCQ_DEVICE static int c_col(int lane, int e) { return lane % 16; }
};

#elif defined(ROCQ_MMA_WMMA)
// v_wmma_f32_16x16x16 (wave32): lane l holds all 16 k of A row l%16 and of B^T row l%16;
// accumulator e of lane l is C[2e + l/16][l%16].
template <RqOp OP>
struct RqMma {
  static constexpr int kCRegs = 8;
  typedef short s16 __attribute__((ext_vector_type(16)));
  typedef _Float16 h16 __attribute__((ext_vector_type(16)));
  typedef float f8 __attribute__((ext_vector_type(8)));
  struct Frag { s16 v; };
  struct Acc { f8 v; };
  ROCQ_DEVICE static void load(Frag& f, const uint16_t* s, int ld) {
    const int l = threadIdx.x % ROCQ_WARP_SIZE;
    f.v = *reinterpret_cast<const s16*>(s + (l % 16) * ld);
  }
  ROCQ_DEVICE static void mma(Acc& c, const Frag& a, const Frag& b) {
    if constexpr (OP == RqOp::BF16)
      c.v = __builtin_amdgcn_wmma_f32_16x16x16_bf16_w32(a.v, b.v, c.v);
    else
      c.v = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(__builtin_bit_cast(h16, a.v), __builtin_bit_cast(h16, b.v),
                                                       c.v);
  }
  ROCQ_DEVICE static int c_row(int lane, int e) { return 2 * e + (lane % 32) / 16; }
  ROCQ_DEVICE static int c_col(int lane, int e) { return lane % 16; }
};

#else
// No matrix unit: the fragment is a pointer into shared memory and mma() runs fp32 FMAs.
// Accumulator e of lane l is C[idx / 16][idx % 16], idx = l + e * ROCQ_WARP_SIZE.
template <RqOp OP>
struct RqMma {
  static constexpr int kCRegs = 256 / ROCQ_WARP_SIZE;
  struct Frag { const uint16_t* p; int ld; };
  struct Acc { float v[kCRegs]; };
  ROCQ_DEVICE static void load(Frag& f, const uint16_t* s, int ld) { f.p = s; f.ld = ld; }
  ROCQ_DEVICE static void mma(Acc& c, const Frag& a, const Frag& b) {
    const int l = threadIdx.x % ROCQ_WARP_SIZE;
#pragma unroll
    for (int e = 0; e < kCRegs; ++e) {
      const int idx = l + e * ROCQ_WARP_SIZE;
      const uint16_t* ar = a.p + (idx / 16) * a.ld;
      const uint16_t* br = b.p + (idx % 16) * b.ld;
      float s = c.v[e];
#pragma unroll 1  // a loop, not 16 copies: this path only has to be right (and quick to compile)
      for (int kk = 0; kk < 16; ++kk) s = fmaf(rq_op_to_float<OP>(ar[kk]), rq_op_to_float<OP>(br[kk]), s);
      c.v[e] = s;
    }
  }
  ROCQ_DEVICE static int c_row(int lane, int e) { return (lane % ROCQ_WARP_SIZE + e * ROCQ_WARP_SIZE) / 16; }
  ROCQ_DEVICE static int c_col(int lane, int e) { return (lane % ROCQ_WARP_SIZE + e * ROCQ_WARP_SIZE) % 16; }
};
#endif

// Two floats -> bf16 bits packed lo | hi << 16, bit-exact with rq_float_to_bf16_bits (round to
// nearest even, NaN payloads kept): one hardware conversion for both where the target has it
// (NVIDIA sm_80+; it would canonicalise NaNs, which take the exact path), else the bit recipe.
ROCQ_DEVICE uint32_t rq_pack2_bf16_exact(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (lo == lo && hi == hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
#endif
  return (uint32_t)rq_float_to_bf16_bits(lo) | ((uint32_t)rq_float_to_bf16_bits(hi) << 16);
}

// Two floats -> two operand values, round to nearest even, packed low | high << 16.
template <RqOp OP>
ROCQ_DEVICE uint32_t rq_pack2_op(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (OP == RqOp::BF16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
#else
  if constexpr (OP == RqOp::BF16)
    return (uint32_t)rq_float_to_bf16_bits(lo) | ((uint32_t)rq_float_to_bf16_bits(hi) << 16);
  else
    return (uint32_t)__half_as_ushort(__float2half_rn(lo)) | ((uint32_t)__half_as_ushort(__float2half_rn(hi)) << 16);
#endif
}

template <RqOp OP>
ROCQ_DEVICE float& rq_acc(typename RqMma<OP>::Acc& c, int e) {
  return reinterpret_cast<float*>(&c.v)[e];
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

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
ROCQ_DEVICE void rq_cp_async16(void* smem, const void* gmem) {
  const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
ROCQ_DEVICE void rq_cp_async4(void* smem, const void* gmem) {
  const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem));
}
ROCQ_DEVICE void rq_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
ROCQ_DEVICE void rq_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
#else
ROCQ_DEVICE void rq_cp_async16(void* smem, const void* gmem) {
  *static_cast<uint4*>(smem) = *static_cast<const uint4*>(gmem);
}
ROCQ_DEVICE void rq_cp_async4(void* smem, const void* gmem) {
  *static_cast<uint32_t*>(smem) = *static_cast<const uint32_t*>(gmem);
}
ROCQ_DEVICE void rq_cp_async_commit() {}
template <int N>
ROCQ_DEVICE void rq_cp_async_wait() {}
#endif

// ---- register fragments (qmma: weights decoded straight into matrix-unit operands) ----------
// kRqMmaFrag (host-visible): the backend has rq_mma_frag below (NVIDIA: only where the device
// is sm_80+, rq_cuda_major() >= 8, the launcher checks). Only NVIDIA for now: the
// AMD mappings (MFMA 16x16x16: lane l holds A row l%16, k quarter l/16, 16 tokens per product;
// WMMA on gfx11) are not written yet, so HIP builds keep the piece kernels for every M.
//
// rq_mma_frag<OP>(c, a, b0, b1): c[4] += A[16x16] * B[16x8], fp32 sums. Lane l (g = l/4, t = l%4)
// supplies rows g and g+8 of A and column g of B, each at 4 k positions e0..e3 that it picks
// itself (any permutation of k works as long as A and B agree): a[0] = (A[g][e0], A[g][e1]),
// a[1] = the same for row g+8, a[2] = (A[g][e2], A[g][e3]), a[3] = row g+8; b0 = (B[e0][g],
// B[e1][g]), b1 = (B[e2][g], B[e3][g]), pairs packed low | high << 16. Lanes with the same t
// together cover the 16 k of one product: t picks the k quarter. Result: c[0], c[1] = C[g][2t],
// C[g][2t+1]; c[2], c[3] = C[g+8][2t], C[g+8][2t+1].
inline constexpr bool kRqMmaFrag = kRqCudaBackend;
// The lanes that supply one rq_mma_frag product: mma.sync's warp. (The kernels built on it, qmma,
// run where kRqMmaFrag holds; a wave64 mapping would bring its own.)
inline constexpr int kRqMmaLanes = 32;

#if defined(ROCQ_MMA_NV)
template <RqOp OP>
ROCQ_DEVICE void rq_mma_frag(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (OP == RqOp::BF16)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// a - b on two packed operand values (round to nearest even; exact for the small integers the
// decoders subtract).
template <RqOp OP>
ROCQ_DEVICE uint32_t rq_sub2_op(uint32_t a, uint32_t b) {
  uint32_t r;
  if constexpr (OP == RqOp::BF16) {
    const __nv_bfloat162 v =
        __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
    r = *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    r = *reinterpret_cast<const uint32_t*>(&v);
  }
  return r;
}
// a * b + c on two packed operand values, one rounding each (fma.rn.{bf16x2,f16x2}; with c = 0 a
// multiply: qmma_fold_tile).
template <RqOp OP>
ROCQ_DEVICE uint32_t rq_fma2_op(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r;
  if constexpr (OP == RqOp::BF16) {
    const __nv_bfloat162 v = __hfma2(*reinterpret_cast<const __nv_bfloat162*>(&a),
                                     *reinterpret_cast<const __nv_bfloat162*>(&b),
                                     *reinterpret_cast<const __nv_bfloat162*>(&c));
    r = *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __hfma2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b),
                              *reinterpret_cast<const __half2*>(&c));
    r = *reinterpret_cast<const uint32_t*>(&v);
  }
  return r;
}
#endif

}  // namespace rocq
#endif  // ROCQ_GPU_COMPILER
// ---- end of matrix-unit fragments (qgemm, qmma) ---------------------------------------------
