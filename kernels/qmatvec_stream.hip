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

// Where the streaming kernel runs, from same-run comparisons with the register-blocked kernel on
// the H200 (bf16 x, M = 1; benchmarks/results/bench_qmatmul_h200_s5g_stream{0,2}.json: off /
// forced; 70B FFN up 28672x8192, 8B FFN up 14336x4096, 8B q/k/v/o 4096x4096):
//  * always: Q2_K, Q3_K, Q6_K, faster or level everywhere (Q2_K 76.8 -> 63.4 us, Q3_K 112.6 ->
//    90.7, Q6_K 78.0 -> 68.3 on the 70B layer; 8B q/k/v/o Q3_K 13.5 -> 12.2, Q6_K 10.9 -> 11.1);
//  * Q4_0, Q4_1, Q5_1, Q4_K, Q5_K, Q8_0, IQ4_NL, MXFP4 where each resident CTA walks at least
//    4 row groups (the x row and the pipeline fill per CTA are paid back): faster on the FFN
//    layers (70B: Q4_0 44.4 -> 37.0 us, Q4_K 50.5 -> 45.2, Q5_K 71.2 -> 61.7; 8B: Q4_0 14.9 ->
//    14.3, Q8_0 22.2 -> 20.0), slower on 4096x4096 (Q4_0 7.4 -> 8.1, Q5_K 9.7 -> 11.4);
//  * never: Q5_0, IQ4_XS, OCP MXFP4: level or slower (70B: 49.5 -> 49.6, 55.6 -> 57.6, 50.5 ->
//    56.9 us).
// Two rows of x (M = 2; bench_qmatmul_h200_s5i_stream{0,2}.json, against the matrix-unit
// kernel): Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q6_K, IQ4_NL, IQ4_XS and MXFP4 where each resident
// CTA walks at least 4 row groups (70B FFN up: Q4_0 56.2 -> 51.3 us, Q5_1 66.3 -> 53.6, IQ4_XS
// 80.3 -> 67.2, MXFP4 80.8 -> 68.0; 8B FFN up: Q6_K 36.1 -> 28.0; slower on 4096x4096 for
// Q4_0, 8.1 -> 10.0); level for Q4_K, Q5_K, Q8_0 and OCP MXFP4, which keep the matrix units.
// ROCQ_QMV_STREAM=0 turns it off, =2 runs it for every format and layer where it fits, =3 as 2
// and an error where it does not fit (tests).
enum class StreamUse { Never, Large, Always };
constexpr StreamUse stream_use(int id, int mt) {
  if (mt == 2)
    return id == QT_Q4_K || id == QT_Q5_K || id == QT_Q8_0 || id == QT_OCP_MXFP4 ? StreamUse::Never
                                                                                 : StreamUse::Large;
  return id == QT_Q2_K || id == QT_Q3_K || id == QT_Q6_K ? StreamUse::Always
         : id == QT_Q5_0 || id == QT_IQ4_XS || id == QT_OCP_MXFP4 ? StreamUse::Never
                                                                  : StreamUse::Large;
}
constexpr int kQmvStreamMinGroupsPerCta = 4;

// ROCQ_QMV_STREAM, read once per process: 0 off, 1 the measured choice (default), 2 every call
// where it fits, 3 like 2 but an error where it does not (tests: proves the kernel ran).
int stream_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QMV_STREAM");
    return v && v[0] >= '0' && v[0] <= '3' && !v[1] ? v[0] - '0' : 1;
  }();
  return mode;
}

// Per-device facts and per-(kernel, device) launch state, behind one lock: the shared-memory
// opt-in is a property of each device's context, and layers may run on several devices or
// host threads.
constexpr int kMaxDevices = 64;
std::mutex g_stream_mu;
struct StreamDevice {
  int sms = -1, optin = 0;  // -1: not read yet
};
StreamDevice& stream_device(int dev) {  // (call with g_stream_mu held)
  static StreamDevice d[kMaxDevices];
  if (d[dev].sms < 0) {
    d[dev].sms = rq_sm_count();
    d[dev].optin = rq_max_smem_optin();
  }
  return d[dev];
}
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
    const StreamUse use = stream_use(ID, MT);
    if (mode == 0 || (mode == 1 && use == StreamUse::Never)) return 0;
    const int dev = rq_current_device();
    if (dev < 0 || dev >= kMaxDevices) return 0;
    const int64_t smem = qmv_stream_smem<ID>(k, MT);
    const int64_t groups = rq_ceil_div(n, Cfg::R);
    std::lock_guard<std::mutex> lock(g_stream_mu);
    const StreamDevice& d = stream_device(dev);
    // Too few row groups to fill the device once: the register-blocked kernel splits k instead.
    if (smem > kQmvStreamMaxSmem || smem > d.optin || d.sms <= 0 || groups < d.sms ||
        Cfg::R * row_bytes >= (int64_t)1 << 31)
      return 0;
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
    if (mode == 1 && use == StreamUse::Large && groups < kQmvStreamMinGroupsPerCta * resident) return 0;
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
