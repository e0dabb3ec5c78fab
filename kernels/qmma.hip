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
// every M on each. Session 3 (bench_qmatmul_h200_session3_qmma_all.log against
// bench_qmatmul_h200_session3.log): from M = 1 where it is ahead there too (Q5_0 70.8 vs 85.4 us,
// Q5_K 72.0 vs 82.0); the integer pieces keep M = 1 of Q4_0/Q4_1/Q4_K/Q5_1/Q6_K/Q8_0; Q8_0 ties
// at M = 2. Session 4 (benchmarks/results/bench_qmatmul_h200_s4_*.json): with the x fragments
// loaded ahead (QmmaXPre) Q6_K takes M = 2 (86.0 vs ~103 us); the table formats' new integer
// pieces keep M = 1..2 (IQ4_NL/IQ4_XS at M = 2: 77.5/80.6 vs qmma 84.0/85.0) and MXFP4 M = 1..2
// (qmma 102 vs pieces 109 at M = 4). The OCP MX formats' decoders are slow (ocp_mxfp4 qmma
// 144-155 us at M = 1..8, ocp_mxfp8 202-215): their pieces stay ahead up to M = 4. The integer
// pieces of Q4_1/Q5_0/Q5_1 and whole-group M = 1 pieces (bench_qmatmul_h200_s4_int_pieces.json)
// took M = 1 of Q5_0 (52.1 vs qmma 69.1 us) and Q5_K (71.3 vs 72.6), and M = 2 of Q4_1 (58.4 vs
// ~63) and Q5_1 (65.9 vs ~80).
// (Where x fits in shared memory, the streaming kernel, qmatvec_stream.hip, is asked first and
// takes M = 1 and 2 of every integer-piece format but Q8_0 at M = 2: these first rows then matter
// only where it does not, e.g. k too large for its x rows, fp32 x, no integer path.)
// OCP FP8 where its decoder needs no shared-memory table (qfrag.h QFragOcp kNoTable: E5M2 always,
// E4M3 with the sm_89+ conversion, e4m3_cvt: this build's only sm_89+ target is sm_90) takes M
// from 3: H200, 70B FFN up, table / not, us: fp16 x (bench_qmatmul_h200_s10k_{A,B}) E4M3 M = 5
// 180.6 -> 93.3, 8 192.7 -> 103.9, 16 216.8 -> 130.1, 32 243.0 -> 151.0 (fp16 F.linear
// 108.7-122.5); bf16 x (s10f_final against s10m_auto) M = 8 191.6 -> 106.5, 16 ~217 -> 136.7, 32
// ~245 -> 163.2 (bf16 F.linear 109-111). At M = 3, 4 the kernel (forced, s10m_qmma_all) ran 96.9
// / 98.0 us against the register-blocked fp32 pieces' 138.6 / 138.4 (8B FFN up 30.2 / 31.1
// against 40.1 / 40.0).
template <int ID>
constexpr int qmma_first_rows(bool e4m3_cvt) {
  switch (ID) {
    case QT_Q4_1: case QT_Q5_1: case QT_Q8_0: case QT_IQ4_NL: case QT_IQ4_XS: case QT_MXFP4: return 3;
    case QT_OCP_MXFP8_E5M2: return 3;
    case QT_OCP_MXFP8_E4M3: return e4m3_cvt ? 3 : 5;
    case QT_OCP_MXFP4: return 5;
    default: return 2;
  }
}

// 0 when qmma cannot take the format/dtype on this backend and device, else the first M it
// takes automatically (qmma_first_rows).
int qmma_first_rows_of(int qtype, DType dtype) {
  static const bool sm80 = rq_cuda_major() >= 8;  // mma.sync bf16 (the kernel is empty below sm_80)
  static const bool sm90 = rq_cuda_major() >= 9;  // (the E4M3 conversion: qmma_first_rows)
  if (!kRqMmaFrag || !sm80 || dtype == DType::F32 || qmma_mode() == 0) return 0;
  int first = 0;
  dispatch_format(qtype, [&](auto codec) {
    constexpr int id = decltype(codec)::kId;
    if constexpr (kQFragOn<id>) first = qmma_first_rows<id>(sm90);
  });
  return first;
}
}  // namespace

bool qmma_supported(int qtype, DType dtype) { return qmma_first_rows_of(qtype, dtype) > 0; }

bool qmma_takes(int qtype, DType dtype, int64_t M) {
  const int first = qmma_first_rows_of(qtype, dtype);
  if (first == 0) return false;
  if (qmma_mode() == 1) return M >= 1;
  return M >= first && M <= kQmmaMaxRows;
}

bool qmma_wide_takes(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes) {
  if (M <= 8 || M > kQmmaMaxRows || !qmma_supported(qtype, dtype)) return false;
  bool ok = false;
  dispatch_format(qtype, [&](auto codec) {
    constexpr int id = decltype(codec)::kId;
    if constexpr (kQFragOn<id>) ok = qmma_wide_shape_ok<id>(n, k, row_bytes);
  });
  return ok;
}

const char* launch_qmma(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                        const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                        void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  if (!qmma_supported(qtype, dtype)) return "rocq qmma: no matrix-unit decoder for this format/dtype/backend";
  if (M > 2147483647LL || rq_ceil_div(M, (int64_t)8) > 65535) return "rocq qmma: too many rows of x";
  const QmmaArgs a{x, y, qweight, scales, bias, (int)M, n, k, row_bytes};
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  return dtype == DType::BF16 ? qmma_launch_dtype<(int)DType::BF16>(qtype, a, s)
                              : qmma_launch_dtype<(int)DType::F16>(qtype, a, s);
}

}  // namespace rocq::gpu
