// Launcher of the streaming kernel (qmatvec_stream.h), for one or two rows of 16-bit x on the
// integer pieces and OCP FP6/FP8 (kStreamFloat): qmatvec.hip asks qmv_stream_plan once per call,
// and launches it with that plan.
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "qmatvec_stream.h"

namespace rocq::gpu {

namespace {

// Where the streaming kernel runs, from same-run comparisons on the H200 after x rounding moved
// into the kernel (bf16 x; benchmarks/results/bench_qmatmul_h200_session6_stream{0,2}.json: off /
// forced; 70B FFN up 28672x8192, 8B FFN up 14336x4096, 8B q/k/v/o 4096x4096, 70B down):
//  * one row of x (against the register-blocked kernel): every format, faster or level on every
//    layer where it fits (70B up: Q4_0 44.2 -> 35.2 us, Q4_K 50.1 -> 42.5, Q3_K 113.5 -> 89.3,
//    Q5_0 48.6 -> 48.0; 4096x4096: Q4_0 7.4 -> 6.3, Q5_0 8.7 -> 7.8, Q8_0 9.2 -> 8.4, IQ4_XS 9.0
//    -> 8.0). OCP MXFP4 since its E8M0 bytes were read one stage ahead (session 7; before, it lost
//    on the large layers and ran only where each CTA had few weights to walk): 70B up 51.0 ->
//    47.1 us, 70B down 51.2 -> 49.0, 4096x4096 and 8B FFN up within 2%
//    (benchmarks/results/bench_qmatmul_h200_s7_B{,_s2}.json: chosen then / forced). (Since
//    session 11 they travel with the stages: qmatvec_stream.h.)
//  * OCP FP6/FP8 (session 10, their float pieces; against the register-blocked kernel's fp32
//    pieces, benchmarks/results/bench_qmatmul_h200_s10b_{A,B}.json), 70B FFN up M = 1 / 2, us:
//    E4M3 79.2 -> 70.0 / 89.1 -> 85.0, E5M2 78.4 -> 69.5 / 102.1 -> 83.6, E2M3 100.6 -> 65.2 /
//    118.2 -> 95.9, E3M2 105.5 -> 65.2 / 126.9 -> 95.9; 8B FFN up M = 1 E4M3 26.4 -> 20.6, E2M3
//    28.1 -> 22.1.
//  * two rows (against the matrix-unit kernel): every format but Q8_0, which is level or slower
//    (70B up 79.7 -> 80.5 us); e.g. 70B up Q4_0 56.3 -> 48.3, Q4_K 65.9 -> 64.1, OCP MXFP4
//    69.3 -> 65.2; 4096x4096 Q4_1 10.5 -> 8.1, MXFP4 12.1 -> 9.2, Q3_K 15.8 -> 11.9 (Q5_K 9.8 ->
//    10.1 there, 25.5 -> 23.0 on the 8B FFN up layer).
// (Session 5's rules, measured with x rounded by a separate launch, kept the register-blocked and
// matrix-unit kernels on 4096x4096 and for Q5_0, IQ4_XS, Q4_K and Q5_K at M = 2: that launch and
// its workspace are gone.)
// ROCQ_QMV_STREAM=0 turns it off, =2 runs it for every format and layer where it fits, =3 as 2
// and an error where it does not fit (tests; M = 1, 2 only: the row pairs of qmatvec.hip's
// stream_chunked, M = 3..8, fall back to the other kernels there).
constexpr bool stream_chosen(int id, int mt) { return mt == 1 || id != QT_Q8_0; }

// ROCQ_QMV_STREAM, read once per process: 0 off, 1 the measured choice (default), 2 every call
// where it fits, 3 like 2 but an error where it does not (tests: proves the kernel ran).
int stream_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QMV_STREAM");
    return v && v[0] >= '0' && v[0] <= '3' && !v[1] ? v[0] - '0' : 1;
  }();
  return mode;
}

// ROCQ_QMV_STREAM_ROWS, read once per process: 8 never the 16-row groups (QmvStreamCfg SHAPE 1,
// 2), 16 them wherever they fit (tests, benchmarks), else (default) where they also fill their
// stages (bigger_rows).
int stream_rows_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QMV_STREAM_ROWS");
    return v && v[0] == '8' && !v[1] ? 8 : (v && v[0] == '1' && v[1] == '6' && !v[2] ? 16 : 0);
  }();
  return mode;
}

// Whether the 16-row groups leave at most 5% of their stages' pieces idle (`units` blocks a row,
// `cu` a stage: Q2_K's 32 would leave half the threads idle where k = 4096). H200, M = 1, us,
// 8-row groups / 16-row groups forced (benchmarks/results/bench_qmatmul_h200_s8_rows{8,16}.json):
// 70B FFN up Q2_K 30.9 / 29.8, Q3_K 53.7 / 44.9, Q4_K 38.4 / 34.6, Q5_K 48.0 / 42.0; 8B FFN up
// Q2_K 15.6 / 16.2 (the idle half), Q3_K 16.7 / 16.1, Q4_K 13.1 / 12.0, Q5_K 16.1 / 14.7 (a last
// pass of the persistent CTAs 40% full costs less than the 16-row groups gain); 4096 x 4096
// Q4_K 6.5 / 6.0, Q5_K 7.7 / 7.1. Q2_K's four-set shape 2 where shape 1 does not fill (k = 4096),
// H200, same run, shape 1 or 8 rows / shape 2 everywhere (bench_qmatmul_h200_s8k_{A,B}.json):
// 8B FFN up 15.3 / 11.2 us, 4096 x 4096 6.8 / 5.5, 70B FFN up 26.8 / 28.6 (so not there).
bool bigger_rows(int64_t units, int64_t cu) {
  return stream_rows_mode() == 16 || rq_ceil_div(units, cu) * cu * 20 <= units * 21;
}

// Per-(kernel, device) launch state, behind one lock: the shared-memory opt-in is a property of
// each device's context, and layers may run on several devices or host threads (the device
// facts themselves: rq_device_facts, platform.h).
constexpr int kMaxDevices = 64;
std::mutex g_stream_mu;

// A launch plan in one positive integer (qmv_stream_plan's value): grid * 8 + 2 * shape (the row
// groups: QmvStreamCfg SHAPE) + (two stages instead of Cfg::kStages).
struct StreamPlan {
  int64_t grid = 0;
  int shape = 0;
  bool two = false;
  int64_t code() const { return grid > 0 ? grid * 8 + 2 * shape + (two ? 1 : 0) : 0; }
  static StreamPlan of(int64_t code) { return {code / 8, (int)(code / 2 % 4), (code & 1) != 0}; }
};

// Whether the two-stage instance exists: one row of x, formats of three stages, 8-row groups and,
// for OCP FP6/FP8 (kStreamFloat), 16-row ones: FP8's three 32 KB stages and x row do not fit
// kQmvStreamMaxSmem at k = 8192, so without two stages it ran 8-row groups there. H200, M = 1,
// same code otherwise (bench_qmatmul_h200_s11k.json against s11j): 70B FFN up E4M3 66.9 -> 60.5
// us (85% -> 94% of copy), E5M2 68.0 -> 60.4; 70B FFN down FP6 76.7 -> 64.1 (16-row groups in
// two stages where three did not fit); 8B FFN up (16-row groups in three stages already) level.
template <int ID, int MT, int SHAPE>
constexpr bool kTwoStages =
    MT == 1 && (SHAPE == 0 || (SHAPE == 1 && (kStreamFloat<ID> || QmvStreamCfg<ID, SHAPE>::kSpan16))) &&
    QmvStreamCfg<ID, SHAPE>::kStages > 2;

// f(std::integral_constant<int, NS>) with the stage count of an instance that exists: 2 where
// `two` (only where kTwoStages), else Cfg::kStages.
template <int ID, int MT, int SHAPE, typename F>
void with_stages(bool two, F&& f) {
  if constexpr (kTwoStages<ID, MT, SHAPE>) {
    if (two) {
      f(std::integral_constant<int, 2>{});
      return;
    }
  }
  f(std::integral_constant<int, QmvStreamCfg<ID, SHAPE>::kStages>{});
}

// Launches the instance a plan names; false where it is not built.
template <int ID, int XK, int MT, int SHAPE>
bool stream_launch_one(bool two, unsigned grid, gpuStream_t s, const QmvArgs& a) {
  using Cfg = QmvStreamCfg<ID, SHAPE>;
  if constexpr (!Cfg::kOn) {
    (void)two, (void)grid, (void)s, (void)a;
    return false;
  } else {
    with_stages<ID, MT, SHAPE>(two, [&](auto ns) {
      constexpr int NS = decltype(ns)::value;
      qmv_stream_kernel<ID, XK, MT, SHAPE, NS><<<grid, Cfg::kThreads, (size_t)qmv_stream_smem<ID, SHAPE>(a.k, MT, NS), s>>>(a);
    });
    return true;
  }
}

// The plan of the streaming kernel with these row groups for this call on the current device:
// grid 0 where it does not run (also where the device lacks the shared memory, or the opt-in
// fails: the call then falls back to the other kernels).
template <int ID, int XK, int MT, int SHAPE>
StreamPlan stream_grid(int64_t n, int64_t k, int64_t row_bytes) {
  using Cfg = QmvStreamCfg<ID, SHAPE>;
  if constexpr (!Cfg::kOn) {
    (void)n, (void)k, (void)row_bytes;
    return {};
  } else {
    const int mode = stream_mode();
    if (mode == 0 || (mode == 1 && !stream_chosen(ID, MT))) return {};
    const int dev = rq_current_device();
    if (dev < 0 || dev >= kMaxDevices) return {};
    const RqDeviceFacts d = rq_device_facts(dev);
    // All the stages where they fit (under kQmvStreamMaxSmem and the device's opt-in limit), else
    // two: e.g. the 70B FFN down layer (k = 28672, 57 KB of x per row) with Q4_0's, Q4_K's or
    // Q5_K's three stages is over kQmvStreamMaxSmem.
    const int64_t cap = d.optin < kQmvStreamMaxSmem ? d.optin : kQmvStreamMaxSmem;
    const bool two = kTwoStages<ID, MT, SHAPE> && qmv_stream_smem<ID, SHAPE>(k, MT, Cfg::kStages) > cap;
    const int64_t smem = qmv_stream_smem<ID, SHAPE>(k, MT, two ? 2 : Cfg::kStages);
    const int64_t groups = rq_ceil_div(n, Cfg::R);
    // Too few row groups to fill the device once: the register-blocked kernel splits k instead.
    if (smem > kQmvStreamMaxSmem || smem > d.optin || d.sms <= 0 || groups < d.sms ||
        Cfg::R * row_bytes >= (int64_t)1 << 31)
      return {};
    std::lock_guard<std::mutex> lock(g_stream_mu);
    static RqSmemOccupancy st[2][kMaxDevices];  // per instantiation, stage count and device
    const void* kern = nullptr;
    with_stages<ID, MT, SHAPE>(two, [&](auto ns) {
      kern = reinterpret_cast<const void*>(&qmv_stream_kernel<ID, XK, MT, SHAPE, decltype(ns)::value>);
    });
    const int occ = st[two ? 1 : 0][dev].blocks(kern, Cfg::kThreads, smem);  // (0: another kernel takes the call)
    if (occ <= 0) return {};
    const int64_t resident = (int64_t)occ * d.sms;
    return {groups < resident ? groups : resident, SHAPE, two};
  }
}

// Whether the 16-row groups of the 32-element formats' whole-block pieces (QmvStreamCfg kSpan16)
// take no more passes of the persistent CTAs, in 8-row units, than the 8-row groups: their gain
// is small, and a last pass that is mostly empty costs more. H200, M = 1, us, 8-row / 16-row
// groups in one run (benchmarks/results/bench_qmatmul_h200_s13g_{A,B,A2,B2}.json): 70B FFN up (7
// passes of 16 rows, 14 of 8) MXFP4 43.9 / 42.4, IQ4_XS 42.0 / 40.3, Q4_1 38.1 / 37.0, Q4_0 35.0
// / 34.4, Q5_0, Q5_1, IQ4_NL within 1%; 8B FFN up (4 passes of 16, 7 of 8) MXFP4 15.2 / 17.5,
// IQ4_XS 14.5 / 16.7, Q4_1 11.6 / 12.1.
template <int id, int XK>
bool no_longer_tail(const StreamPlan& p16, int64_t n, int64_t k, int64_t row_bytes) {
  if (stream_rows_mode() == 16) return true;  // (forced: tests, benchmarks)
  const StreamPlan p8 = stream_grid<id, XK, 1, 0>(n, k, row_bytes);
  if (p8.grid <= 0) return true;  // (no 8-row plan to compare with: the 16-row one stands)
  const int64_t passes16 = rq_ceil_div(rq_ceil_div(n, 16), p16.grid), passes8 = rq_ceil_div(rq_ceil_div(n, 8), p8.grid);
  return 2 * passes16 <= passes8;
}

template <int XK>
StreamPlan stream_plan_any(int qtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes) {
  StreamPlan plan;
  dispatch_format(qtype, [&](auto codec) {
    constexpr int id = decltype(codec)::kId;
    // 16-row groups (shape 1, then Q2_K's four-set shape 2) where they fit and fill their stages
    auto try16 = [&](auto shape) {
      constexpr int S = decltype(shape)::value;
      if constexpr (QmvStreamCfg<id, S>::kOn) {
        using Big = QmvStreamCfg<id, S>;
        if (plan.grid == 0 && M == 1 && stream_rows_mode() != 8) {
          const StreamPlan p16 = stream_grid<id, XK, 1, S>(n, k, row_bytes);
          if (p16.grid > 0 && bigger_rows(k / Big::UE, Big::CU) &&
              (!Big::kSpan16 || no_longer_tail<id, XK>(p16, n, k, row_bytes)))
            plan = p16;
        }
      }
    };
    try16(std::integral_constant<int, 1>{});
    try16(std::integral_constant<int, 2>{});
    if (plan.grid == 0)
      plan = M == 1 ? stream_grid<id, XK, 1, 0>(n, k, row_bytes) : stream_grid<id, XK, 2, 0>(n, k, row_bytes);
  });
  return plan;
}

}  // namespace

int64_t qmv_stream_plan(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes,
                        const uint8_t* scales) {
  if constexpr (!kRqIntDot) return 0;
  if (dtype == DType::F32 || M < 1 || M > 2) return 0;
  const bool plane_ok = !rq_has_scale_plane(qtype) || rq_plane_words(scales, k);
  const int64_t plan = !plane_ok ? 0
                       : dtype == DType::F16 ? stream_plan_any<(int)DType::F16>(qtype, M, n, k, row_bytes).code()
                                             : stream_plan_any<(int)DType::BF16>(qtype, M, n, k, row_bytes).code();
  return plan == 0 && stream_mode() == 3 ? -1 : plan;  // strict: the launch reports it
}

const char* qmv_stream_launch(int qtype, DType dtype, const QmvArgs& a, int64_t plan, gpuStream_t s) {
  if (plan < 0) return "rocq qmatvec: ROCQ_QMV_STREAM=3 and the streaming kernel does not take this call";
  const char* err = "rocq qmatvec: the streaming kernel has no instance for this call";
  const StreamPlan p = StreamPlan::of(plan);
  const unsigned grid = (unsigned)p.grid;
  auto launch = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (kRqIntDot) {
        // (two rows: always shape 0, stream_plan_any)
        const bool launched = a.M == 2        ? stream_launch_one<id, XK, 2, 0>(p.two, grid, s, a)
                              : p.shape == 1 ? stream_launch_one<id, XK, 1, 1>(p.two, grid, s, a)
                              : p.shape == 2 ? stream_launch_one<id, XK, 1, 2>(p.two, grid, s, a)
                                             : stream_launch_one<id, XK, 1, 0>(p.two, grid, s, a);
        if (launched) {  // (else no such instance: err stays set)
          const gpuError_t e = rq_last_error();
          err = e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
        }
      }
    });
  };
  if (dtype == DType::F16) launch(std::integral_constant<int, (int)DType::F16>{});
  else if (dtype == DType::BF16) launch(std::integral_constant<int, (int)DType::BF16>{});
  return err;
}

}  // namespace rocq::gpu
