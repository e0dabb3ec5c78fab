// Launcher of the streaming kernel (qmatvec_stream.h), for one or two rows of 16-bit x on the
// integer pieces: qmatvec.hip asks qmv_stream_grid once per call, and launches it with that grid.
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "qmatvec_stream.h"

namespace rocq::gpu {

namespace {

// Largest dynamic shared memory the launcher asks for (x row + stages): beyond it (k above about
// 28000 on the 4-bit formats) the register-blocked kernel runs instead.
constexpr int64_t kQmvStreamMaxSmem = 112 * 1024;

// Where the streaming kernel runs, from same-run comparisons on the H200 after x rounding moved
// into the kernel (bf16 x; benchmarks/results/bench_qmatmul_h200_session6_stream{0,2}.json: off /
// forced; 70B FFN up 28672x8192, 8B FFN up 14336x4096, 8B q/k/v/o 4096x4096, 70B down):
//  * one row of x (against the register-blocked kernel): every format, faster or level on every
//    layer where it fits (70B up: Q4_0 44.2 -> 35.2 us, Q4_K 50.1 -> 42.5, Q3_K 113.5 -> 89.3,
//    Q5_0 48.6 -> 48.0; 4096x4096: Q4_0 7.4 -> 6.3, Q5_0 8.7 -> 7.8, Q8_0 9.2 -> 8.4, IQ4_XS 9.0
//    -> 8.0). OCP MXFP4 since its E8M0 bytes are read one stage ahead (session 7; before, it lost
//    on the large layers and ran only where each CTA had few weights to walk): 70B up 51.0 ->
//    47.1 us, 70B down 51.2 -> 49.0, 4096x4096 and 8B FFN up within 2%
//    (benchmarks/results/bench_qmatmul_h200_s7_B{,_s2}.json: chosen then / forced).
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

// Per-(kernel, device) launch state, behind one lock: the shared-memory opt-in is a property of
// each device's context, and layers may run on several devices or host threads (the device
// facts themselves: rq_device_facts, platform.h).
constexpr int kMaxDevices = 64;
std::mutex g_stream_mu;
struct StreamKernelState {
  int64_t opted = 48 * 1024;  // dynamic shared memory opted in so far
  int64_t occ_smem = -1;      // occupancy below is for this size
  int occ = 0;
};

// Grid size of the streaming kernel for this call on the current device, or 0 where it does not
// run (also where the device lacks the shared memory, or the opt-in fails: the call then falls
// back to the other kernels).
template <int ID, int XK, int MT>
int64_t stream_grid(int64_t n, int64_t k, int64_t row_bytes) {
  using Cfg = QmvStreamCfg<ID>;
  if constexpr (!Cfg::kOn) {
    (void)n, (void)k, (void)row_bytes;
    return 0;
  } else {
    const int mode = stream_mode();
    if (mode == 0 || (mode == 1 && !stream_chosen(ID, MT))) return 0;
    const int dev = rq_current_device();
    if (dev < 0 || dev >= kMaxDevices) return 0;
    const int64_t smem = qmv_stream_smem<ID>(k, MT);
    const int64_t groups = rq_ceil_div(n, Cfg::R);
    const RqDeviceFacts d = rq_device_facts(dev);
    // Too few row groups to fill the device once: the register-blocked kernel splits k instead.
    if (smem > kQmvStreamMaxSmem || smem > d.optin || d.sms <= 0 || groups < d.sms ||
        Cfg::R * row_bytes >= (int64_t)1 << 31)
      return 0;
    std::lock_guard<std::mutex> lock(g_stream_mu);
    static StreamKernelState st[kMaxDevices];  // per instantiation and device
    StreamKernelState& ks = st[dev];
    const void* kern = reinterpret_cast<const void*>(&qmv_stream_kernel<ID, XK, MT>);
    if (smem > ks.opted) {
      if (rq_func_set_max_dynamic_smem(kern, (int)smem) != ROCQ_GPU_SUCCESS) {
        (void)rq_last_error();  // clear it: the call goes to another kernel
        return 0;
      }
      ks.opted = smem;
    }
    if (smem != ks.occ_smem) {
      ks.occ = rq_blocks_per_sm(kern, Cfg::kThreads, (size_t)smem);
      ks.occ_smem = smem;
    }
    if (ks.occ <= 0) return 0;
    const int64_t resident = (int64_t)ks.occ * d.sms;
    return groups < resident ? groups : resident;
  }
}

template <int XK>
int64_t stream_grid_any(int qtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes) {
  int64_t grid = 0;
  dispatch_format(qtype, [&](auto codec) {
    constexpr int id = decltype(codec)::kId;
    grid = M == 1 ? stream_grid<id, XK, 1>(n, k, row_bytes) : stream_grid<id, XK, 2>(n, k, row_bytes);
  });
  return grid;
}

}  // namespace

int64_t qmv_stream_grid(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes) {
  if constexpr (!kRqIntDot) return 0;
  if (dtype == DType::F32 || M < 1 || M > 2) return 0;
  const int64_t grid = dtype == DType::F16 ? stream_grid_any<(int)DType::F16>(qtype, M, n, k, row_bytes)
                                           : stream_grid_any<(int)DType::BF16>(qtype, M, n, k, row_bytes);
  return grid == 0 && stream_mode() == 3 ? -1 : grid;  // strict: the launch reports it
}

const char* qmv_stream_launch(int qtype, DType dtype, const QmvArgs& a, int64_t grid, gpuStream_t s) {
  if (grid < 0) return "rocq qmatvec: ROCQ_QMV_STREAM=3 and the streaming kernel does not take this call";
  const char* err = "rocq qmatvec: the streaming kernel has no instance for this call";
  auto launch = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (kRqIntDot && QmvStreamCfg<id>::kOn) {
        const size_t smem = (size_t)qmv_stream_smem<id>(a.k, a.M);
        if (a.M == 1)
          qmv_stream_kernel<id, XK, 1><<<(unsigned)grid, QmvStreamCfg<id>::kThreads, smem, s>>>(a);
        else
          qmv_stream_kernel<id, XK, 2><<<(unsigned)grid, QmvStreamCfg<id>::kThreads, smem, s>>>(a);
        const gpuError_t e = rq_last_error();
        err = e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
      }
    });
  };
  if (dtype == DType::F16) launch(std::integral_constant<int, (int)DType::F16>{});
  else if (dtype == DType::BF16) launch(std::integral_constant<int, (int)DType::BF16>{});
  return err;
}

}  // namespace rocq::gpu
