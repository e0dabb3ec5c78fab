// Launcher of the streaming integer matrix-unit kernel (qimma_stream.h): launch_qmatvec asks
// qimma_stream_plan first for 16-bit x, 1..8 rows, and launches it with the plan's grid.
#include <cstdlib>
#include <map>
#include <mutex>
#include <type_traits>

#include "launch.h"
#include "qimma_stream.h"

namespace rocq::gpu {

namespace {

// ROCQ_QIMMA, read once per process: 0 off, 1 every call it fits (M = 1..8), 3 as 1 and an error
// for a call of 16-bit x and M <= 8 it does not take (tests: proves it ran), else (default) the
// calls where it measured faster (qimma_chosen).
int qimma_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QIMMA");
    return v && (v[0] == '0' || v[0] == '1' || v[0] == '3') && !v[1] ? v[0] - '0' : 2;
  }();
  return mode;
}

// The calls it takes by default: none yet (not measured against the other kernels).
constexpr bool qimma_chosen(int id, int64_t M) { return (void)id, (void)M, false; }

// Per-(kernel instance, device) launch state behind one lock: the opt-in to the device's shared
// memory (once) and the occupancy per dynamic shared-memory size (it depends on M and k).
struct QimmaState {
  bool opted = false, failed = false;
  std::map<int64_t, int> occ;
};
std::mutex g_qimma_mu;
constexpr int kMaxDevices = 64;

template <int ID, int XK, int CT>
const void* qimma_kernel_ptr() {
  return reinterpret_cast<const void*>(&qimma_stream_kernel<ID, XK, CT, QimmaCfg<ID>::kStages>);
}

// The persistent grid for this call on the current device, 0 where the kernel does not run:
// rows not whole 16-byte copies or weights/x not 16-byte aligned, fewer row groups than
// multiprocessors (the other kernels split k finer), x and the stages over the device's shared
// memory, or offsets past 32 bits.
template <int ID, int XK, int CT>
int64_t qimma_grid(const QmatArgs& a) {
  using Cfg = QimmaCfg<ID>;
  const int dev = rq_current_device();
  if (dev < 0 || dev >= kMaxDevices) return 0;
  const RqDeviceFacts d = rq_device_facts(dev);
  const int64_t groups = rq_ceil_div(a.n, (int64_t)Cfg::G::kRows), smem = Cfg::smem(Cfg::kStages, a.k, a.M);
  if (a.row_bytes % 16 != 0 || (reinterpret_cast<uintptr_t>(a.qw) & 15) != 0 ||
      (reinterpret_cast<uintptr_t>(a.x) & 15) != 0 || a.k % 32 != 0 || smem > d.optin || d.sms <= 0 ||
      groups < d.sms || Cfg::G::kRows * a.row_bytes >= ((int64_t)1 << 31))
    return 0;
  std::lock_guard<std::mutex> lock(g_qimma_mu);
  static QimmaState state[kMaxDevices];
  QimmaState& s = state[dev];
  const void* kern = qimma_kernel_ptr<ID, XK, CT>();
  if (s.failed) return 0;
  if (!s.opted) {
    if (rq_func_set_max_dynamic_smem(kern, d.optin) != ROCQ_GPU_SUCCESS) {
      (void)rq_last_error();  // clear it: another kernel takes the call
      s.failed = true;
      return 0;
    }
    s.opted = true;
  }
  auto it = s.occ.find(smem);
  if (it == s.occ.end()) it = s.occ.emplace(smem, rq_blocks_per_sm(kern, Cfg::kThreads, (size_t)smem)).first;
  if (it->second <= 0) return 0;
  const int64_t resident = (int64_t)it->second * d.sms;
  return groups < resident ? groups : resident;
}

template <int ID, int XK>
int64_t qimma_grid_any(const QmatArgs& a) {
  return a.M <= 4 ? qimma_grid<ID, XK, 1>(a) : qimma_grid<ID, XK, 2>(a);
}

}  // namespace

int64_t qimma_stream_plan(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight, int64_t n,
                          int64_t k, int64_t row_bytes) {
  static const bool sm80 = rq_cuda_major() >= 8;  // mma.sync m16n8k32 (the kernel is empty below sm_80)
  const int mode = qimma_mode();
  if (mode == 0 || dtype == DType::F32 || M < 1 || M > 8) return 0;
  if (!kRqMmaFrag || !sm80) return mode == 3 ? -1 : 0;
  const QmatArgs a{x, nullptr, qweight, nullptr, nullptr, (int)M, n, k, row_bytes};
  int64_t grid = 0;
  auto plan = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (qimma_on<id>()) {
        if (mode != 2 || qimma_chosen(id, M)) grid = qimma_grid_any<id, XK>(a);
      }
    });
  };
  if (dtype == DType::F16) plan(std::integral_constant<int, (int)DType::F16>{});
  else plan(std::integral_constant<int, (int)DType::BF16>{});
  return grid == 0 && mode == 3 ? -1 : grid;
}

const char* qimma_stream_launch(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight, int64_t n,
                                int64_t k, int64_t row_bytes, const float* bias, void* y, int64_t grid,
                                void* stream) {
  if (grid <= 0) return "rocq qmatvec: ROCQ_QIMMA=3 and the integer matrix-unit kernel does not take this call";
  const QmatArgs a{x, y, qweight, nullptr, bias, (int)M, n, k, row_bytes};
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  const char* err = "rocq qmatvec: the integer matrix-unit kernel has no instance for this format";
  auto launch = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (qimma_on<id>()) {
        using Cfg = QimmaCfg<id>;
        const size_t smem = (size_t)Cfg::smem(Cfg::kStages, k, M);
        if (M <= 4) qimma_stream_kernel<id, XK, 1, Cfg::kStages><<<(unsigned)grid, Cfg::kThreads, smem, s>>>(a);
        else qimma_stream_kernel<id, XK, 2, Cfg::kStages><<<(unsigned)grid, Cfg::kThreads, smem, s>>>(a);
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
