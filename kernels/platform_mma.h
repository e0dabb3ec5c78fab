// Part of the platform layer (platform.h): the matrix units and asynchronous copies, per target.
// Included only by platform.h, after everything it uses; like platform.h, the one place in
// kernels/ that tests the compiler and GPU architecture.
#pragma once

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

// 2N floats -> N words of bf16 pairs lo | hi << 16, bit-exact with rq_float_to_bf16_bits (round
// to nearest even, NaN payloads kept): the hardware conversion where the target has one (NVIDIA
// sm_80+), which would canonicalise NaNs, so the pairs holding a NaN take the bit recipe. One
// test and one branch for the lot, not per pair (the dequantize kernels' stores, where values are
// NaN only for broken scales or fp8 NaN codes).
template <int N>
ROCQ_DEVICE void rq_pack_bf16_exact_n(const float* v, uint32_t* h) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  bool nan = false;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    nan |= !(v[2 * i] == v[2 * i] && v[2 * i + 1] == v[2 * i + 1]);
    h[i] = rq_pack2_op<RqOp::BF16>(v[2 * i], v[2 * i + 1]);
  }
  if (!nan) return;
#endif
#pragma unroll
  for (int i = 0; i < N; ++i) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (v[2 * i] == v[2 * i] && v[2 * i + 1] == v[2 * i + 1]) continue;  // (converted above)
#endif
    h[i] = (uint32_t)rq_float_to_bf16_bits(v[2 * i]) | ((uint32_t)rq_float_to_bf16_bits(v[2 * i + 1]) << 16);
  }
}

template <RqOp OP>
ROCQ_DEVICE float& rq_acc(typename RqMma<OP>::Acc& c, int e) {
  return reinterpret_cast<float*>(&c.v)[e];
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
// rq_imma_frag<AS>(c, a, b0, b1): c[4] = A[16x32] * B[32x8] in int32, from zero (one product per
// call: the integer matrix-unit kernel scales each 32-element block's sums itself, qimma_stream.h).
// A holds bytes, unsigned (AS false: codes 0..255) or signed (AS true), B signed bytes. Lane l (g =
// l/4, t = l%4): a[0] = A[g][4t..4t+3], a[1] = the same of row g+8, a[2] = A[g][16+4t..16+4t+3],
// a[3] = row g+8 (bytes low to high); b0 = B[4t..4t+3][g], b1 = B[16+4t..16+4t+3][g]; c[0], c[1] =
// C[g][2t], C[g][2t+1], c[2], c[3] = C[g+8][2t], C[g+8][2t+1] (mma.sync m16n8k32).
template <bool AS>
ROCQ_DEVICE void rq_imma_frag(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int z = 0;
  if constexpr (AS)
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%10,%10,%10};\n"
        : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(z));
  else
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%10,%10,%10};\n"
        : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(z));
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
// a * b on two packed operand values, rounded to nearest even.
template <RqOp OP>
ROCQ_DEVICE uint32_t rq_mul2_op(uint32_t a, uint32_t b) {
  uint32_t r;
  if constexpr (OP == RqOp::BF16) {
    const __nv_bfloat162 v =
        __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
    r = *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
    r = *reinterpret_cast<const uint32_t*>(&v);
  }
  return r;
}
#endif

}  // namespace rocq
#endif  // ROCQ_GPU_COMPILER
// ---- end of matrix-unit fragments (qgemm, qmma) ---------------------------------------------
