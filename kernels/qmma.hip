// launch_qmma: the matrix-unit decode kernel (qmma_impl.h) for 16-bit x: whether it applies,
// how many warps share k, the dtype switch. Kernels per dtype in qmma_{f16,bf16}.hip.
#include <cstdlib>

#include "qmma_impl.h"

namespace rocq::gpu {

namespace {
// ROCQ_QMMA (read once per process): 0 never, 1 every M, otherwise the measured range.
int qmma_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QMMA");
    return v && v[0] == '0' ? 0 : (v && v[0] == '1' ? 1 : 2);
  }();
  return mode;
}

// Smallest M at which the kernel beats the piece kernels (qmatvec_impl.h): H200, bf16 x, 70B FFN,
// every M on each (benchmarks/results/bench_qmatmul_h200_session3_qmma_all.log against
// bench_qmatmul_h200_session3.log). From M = 1 where it is ahead there too (Q5_0 70.8 vs 85.4 us,
// Q5_K 72.0 vs 82.0, IQ4_NL 79.1 vs 83.9); the integer pieces keep M = 1 of Q4_0/Q4_1/Q4_K/Q5_1/
// Q6_K/Q8_0 and the float pieces that of IQ4_XS (a tie) and MXFP4. Q8_0 and MXFP4 tie at M = 2.
// The OCP MX formats read their scale plane from global memory per chunk (not staged with the
// window): their pieces stay ahead up to M = 4.
template <int ID>
constexpr int qmma_first_rows() {
  switch (ID) {
    case QT_Q5_0: case QT_Q5_K: case QT_IQ4_NL: return 1;
    case QT_Q8_0: case QT_MXFP4: case QT_Q6_K: return 3;
    case QT_OCP_MXFP4: case QT_OCP_MXFP8_E4M3: case QT_OCP_MXFP8_E5M2: return 5;
    default: return 2;
  }
}

// Warps per CTA (each a share of k). 8, so that the CTA's 32 rows x all of k are cut fine
// enough for the 4096-row projections of 8B models (128 CTAs) and a 70B FFN layer runs 3 CTAs
// (24 warps) per multiprocessor: on the H200, Q4_0 70B FFN M=1 54.6 us with 8 warps, 68.3 with
// 4, 65.5 with 2, 97.1 with 1. 4 where 8 warps' buffers would leave one CTA per multiprocessor
// on a layer with many CTAs (Q6_K's 240-byte windows: 97 vs 107 us on the 70B layer); a small
// grid keeps 8 (Q6_K on the 8B down projection, 128 CTAs: 4 warps ran at 1.7x bf16 at M = 2).
template <int ID>
int qmma_warps(int64_t n, int64_t M) {
  static const int sms = [] { const int v = rq_sm_count(); return v > 0 ? v : 64; }();
  const int64_t ctas = rq_ceil_div(n, (int64_t)16 * kQmmaRT) * rq_ceil_div(M, kQmmaMaxRows);
  return QmmaGeom<ID>::smem_bytes(8) <= 96 * 1024 || ctas < 2 * (int64_t)sms ? 8 : 4;
}
}  // namespace

bool qmma_supported(int qtype, DType dtype) {
  bool on = false;
  dispatch_format(qtype, [&](auto codec) { on = kQFragOn<decltype(codec)::kId>; });
  static const bool sm80 = rq_cuda_major() >= 8;  // mma.sync bf16 (the kernel is empty below sm_80)
  return kRqMmaFrag && sm80 && on && dtype != DType::F32 && qmma_mode() != 0;
}

bool qmma_takes(int qtype, DType dtype, int64_t M) {
  if (!qmma_supported(qtype, dtype)) return false;
  if (qmma_mode() == 1) return M >= 1;
  int first = 2;
  dispatch_format(qtype, [&](auto codec) { first = qmma_first_rows<decltype(codec)::kId>(); });
  return M >= first && M <= kQmmaMaxRows;
}

const char* launch_qmma(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                        const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                        void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  if (!qmma_supported(qtype, dtype)) return "rocq qmma: no matrix-unit decoder for this format/dtype/backend";
  if (M > 2147483647LL || rq_ceil_div(M, (int64_t)8) > 65535) return "rocq qmma: too many rows of x";
  const QmmaArgs a{x, y, qweight, scales, bias, (int)M, n, k, row_bytes};
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  int warps = 8;
  dispatch_format(qtype, [&](auto codec) {
    if constexpr (kQFragOn<decltype(codec)::kId>) warps = qmma_warps<decltype(codec)::kId>(n, M);
  });
  return dtype == DType::BF16 ? qmma_launch_dtype<(int)DType::BF16>(qtype, a, warps, s)
                              : qmma_launch_dtype<(int)DType::F16>(qtype, a, warps, s);
}

}  // namespace rocq::gpu
