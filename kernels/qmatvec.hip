// launch_qmatvec: walks x in groups of up to 8 rows, picks the activation dtype, the fast
// kernel (16-byte aligned rows and x) or the simple one, and the row count it is compiled for;
// for 16-bit x on formats with integer pieces, first rounds x to fixed point (qdot_int.h).
#include <cstdlib>

#include "qmatvec_impl.h"

namespace rocq::gpu {

template <int XK>
const char* qmv_simple_launch(int qtype, const QmvArgs& a, gpuStream_t stream) {
  const bool known = dispatch_format(qtype, [&](auto codec) {
    qmv_simple_kernel<decltype(codec)::kId, XK><<<qmv_grid(a), kQmvThreads, 0, stream>>>(a);
  });
  if (!known) return "rocq qmatvec: unknown qtype";
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

bool qmatvec_fast_path(int qtype, const void* x, const uint8_t* qweight, int64_t k, int64_t row_bytes) {
  const FormatInfo* f = find_format(qtype);
  if (!f) return false;
  const int unit_elems = f->block_elems == 1 ? 8 : f->block_elems;
  return row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(qweight) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(x) % 16 == 0 && k % 8 == 0 && k % unit_elems == 0;
}

namespace {

// ROCQ_QMV_EXACT=1 (read once per process): x is never rounded to fixed point (no integer
// pieces, no integer matrix-unit kernel).
bool qmv_exact() {
  static const bool exact = [] {
    const char* v = std::getenv("ROCQ_QMV_EXACT");
    return v && v[0] == '1';
  }();
  return exact;
}

// Whether the integer pieces (qdot_int.h) run: a backend with a fast integer dot (kRqIntDot),
// 16-bit x, a format that has them, the fast path, and not qmv_exact().
// FLOATS: also the formats that only the streaming kernel runs on fixed-point x (kStreamFloat).
bool int_path(int qtype, DType dtype, bool fast, bool floats = false) {
  bool on = false;
  dispatch_format(qtype, [&](auto codec) {
    constexpr int id = decltype(codec)::kId;
    on = PieceInt<id>::kOn || (floats && kStreamFloat<id>);
  });
  return kRqIntDot && on && dtype != DType::F32 && fast && !qmv_exact();
}

// M = 3..8 of Q2_K and Q3_K, which have no matrix-unit kernel: the streaming kernel once per pair
// of rows of x (and once for a last single row), each call reading the weights again, ahead of
// the register-blocked kernel that reads them once (it takes 4 or 8 rows a launch). H200, us,
// row pairs / register-blocked (benchmarks/results/bench_qmatmul_h200_s7_chunk{1,0}.json), M = 3,
// 4, 5, 8: 70B FFN up Q2_K 77 / 147, 94 / 147, 124 / 339, 187 / 339; Q3_K 125 / 187, 143 / 186,
// 196 / 443, 285 / 443; 8B FFN up (k = 4096) Q3_K 38 / 53, 43 / 53, 59 / 119, 86 / 119; Q2_K 39 /
// 42, 48 / 42, 64 / 92, 96 / 92: there (its stages hold 8192 elements, half idle at k = 4096) not
// at M = 4 and 8 (M = 6, 7 not measured: ~12 us a row pair-wise against 92).
bool stream_chunked(int qtype, int64_t M, int64_t k) {
  if (M <= 2 || M > 8) return false;
  return qtype == QT_Q3_K || (qtype == QT_Q2_K && (k >= 8192 || (M != 4 && M != 8)));
}

// The streaming kernel's plan for this call (qmatvec_stream.hip: M <= 2 on the integer path, and
// its first launch for stream_chunked calls; 0: not this kernel, -1: strict mode and it cannot).
// It goes ahead of every other kernel.
int64_t stream_plan(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes, bool fast,
                    const uint8_t* scales) {
  if (!int_path(qtype, dtype, fast, true)) return 0;
  if (M <= 2) return qmv_stream_plan(qtype, dtype, M, n, k, row_bytes, scales);
  if (!stream_chunked(qtype, M, k)) return 0;
  const int64_t g2 = qmv_stream_plan(qtype, dtype, 2, n, k, row_bytes, scales);
  return g2 > 0 && (M % 2 == 0 || qmv_stream_plan(qtype, dtype, 1, n, k, row_bytes, scales) > 0) ? g2 : 0;
}

// The integer matrix-unit kernel's plan for this call (qimma_stream.hip; it rounds x to fixed
// point itself, so not with ROCQ_QMV_EXACT; 0: not this kernel). It goes ahead of every other.
int64_t qimma_plan(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight, const uint8_t* scales,
                   int64_t n, int64_t k, int64_t row_bytes, bool fast) {
  return fast && !qmv_exact() ? qimma_stream_plan(qtype, x, dtype, M, qweight, scales, n, k, row_bytes) : 0;
}

// Whether the call goes to the matrix-unit kernel (launch_qmma, launch.h).
bool mma_path(int qtype, DType dtype, int64_t M, bool fast) { return fast && qmma_takes(qtype, dtype, M); }

// x [M, k] (16-bit) -> xq [M, k] int16 and xs [M, k/32] (rq_xquant_block, qmatvec_impl.h).
// One thread per block.
template <int XK>
__global__ void __launch_bounds__(256) qmv_xquant_kernel(const void* x_, int64_t blocks, int16_t* xq, float* xs) {
  using T = typename XStore<XK>::T;
  const int64_t i = (int64_t)blockIdx.x * 256 + threadIdx.x;
  if (i >= blocks) return;
  uint4 q[4];
  xs[i] = rq_xquant_block<XK>(static_cast<const T*>(x_) + 32 * i, q);
  uint4* dst = reinterpret_cast<uint4*>(xq + 32 * i);
#pragma unroll
  for (int j = 0; j < 4; ++j) dst[j] = q[j];
}

template <int XK>
const char* qmatvec_dtype(int qtype, const void* x, int64_t M, const uint8_t* qw, const uint8_t* sc, int64_t n,
                          int64_t k, int64_t row_bytes, const float* bias, void* y, bool fast, void* workspace,
                          gpuStream_t s) {
  using T = typename XStore<XK>::T;
  int16_t* xq = nullptr;
  float* xs = nullptr;
  if constexpr (XK != (int)DType::F32) {
    if (int_path(qtype, (DType)XK, fast)) {
      if (!workspace) return "rocq qmatvec: the integer path needs a workspace (qmatvec_workspace_bytes)";
      xq = static_cast<int16_t*>(workspace);
      xs = reinterpret_cast<float*>(xq + M * k);
      const int64_t blocks = M * (k / 32);
      qmv_xquant_kernel<XK><<<(unsigned)rq_ceil_div(blocks, 256), 256, 0, s>>>(x, blocks, xq, xs);
      const gpuError_t e = rq_last_error();
      if (e != ROCQ_GPU_SUCCESS) return rq_error_string(e);
    }
  }
  constexpr int group = 8;  // rows of x per launch (the widest instantiation)
  for (int64_t m0 = 0; m0 < M; m0 += group) {
    const int mm = (int)(M - m0 < group ? M - m0 : group);
    const QmvArgs a{{static_cast<const T*>(x) + m0 * k, static_cast<T*>(y) + m0 * n, qw, sc, bias, mm, n, k, row_bytes},
                    /*rows: the simple kernel's; the piece launch sets its own*/ 4, xq ? xq + m0 * k : nullptr,
                    xs ? xs + m0 * (k / 32) : nullptr};
    const char* err = !fast      ? qmv_simple_launch<XK>(qtype, a, s)
                      : mm == 1 ? qmv_launch<XK, 1>(qtype, a, s)
                      : mm == 2 ? qmv_launch<XK, 2>(qtype, a, s)
                      : mm <= 4 ? qmv_launch<XK, 4>(qtype, a, s)
                                : qmv_launch<XK, 8>(qtype, a, s);
    if (err) return err;
  }
  return nullptr;
}
}  // namespace

int64_t qmatvec_workspace_bytes(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                                const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes) {
  const bool fast = qmatvec_fast_path(qtype, x, qweight, k, row_bytes);
  // (the streaming kernels round x themselves)
  if (M <= 0 || qimma_plan(qtype, x, dtype, M, qweight, scales, n, k, row_bytes, fast) != 0 ||
      stream_plan(qtype, dtype, M, n, k, row_bytes, fast, scales) != 0 || mma_path(qtype, dtype, M, fast) ||
      !int_path(qtype, dtype, fast))
    return 0;
  return M * k * 2 + M * (k / 32) * 4;
}

const char* launch_qmatvec(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                           const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias,
                           void* y, void* workspace, void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  const bool fast = qmatvec_fast_path(qtype, x, qweight, k, row_bytes);
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  if (const int64_t plan = qimma_plan(qtype, x, dtype, M, qweight, scales, n, k, row_bytes, fast); plan != 0)
    return qimma_stream_launch(qtype, x, dtype, M, qweight, scales, n, k, row_bytes, bias, y, plan, stream);
  if (const int64_t plan = stream_plan(qtype, dtype, M, n, k, row_bytes, fast, scales); plan != 0) {
    if (M <= 2)
      return qmv_stream_launch(qtype, dtype, {{x, y, qweight, scales, bias, (int)M, n, k, row_bytes}, 0, nullptr, nullptr},
                               plan, s);
    // stream_chunked: rows m0, m0 + 1 per launch (16-bit x and y: 2 bytes an element)
    for (int64_t m0 = 0; m0 < M; m0 += 2) {
      const int mm = M - m0 < 2 ? 1 : 2;
      const int64_t g = mm == 2 ? plan : qmv_stream_plan(qtype, dtype, 1, n, k, row_bytes, scales);
      const QmvArgs a{{static_cast<const uint8_t*>(x) + 2 * m0 * k, static_cast<uint8_t*>(y) + 2 * m0 * n, qweight, scales,
                       bias, mm, n, k, row_bytes},
                      0, nullptr, nullptr};
      if (const char* err = qmv_stream_launch(qtype, dtype, a, g, s)) return err;
    }
    return nullptr;
  }
  if (mma_path(qtype, dtype, M, fast))
    return launch_qmma(qtype, x, dtype, M, qweight, scales, n, k, row_bytes, bias, y, stream);
  switch (dtype) {
    case DType::F32:
      return qmatvec_dtype<(int)DType::F32>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, workspace,
                                            s);
    case DType::F16:
      return qmatvec_dtype<(int)DType::F16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, workspace,
                                            s);
    case DType::BF16:
      return qmatvec_dtype<(int)DType::BF16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, workspace,
                                             s);
  }
  return "rocq qmatvec: unknown activation dtype";
}

}  // namespace rocq::gpu
