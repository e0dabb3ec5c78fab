// Launcher of the streaming integer matrix-unit kernel (qimma_stream.h): launch_qmatvec asks
// qimma_stream_plan first for 16-bit x, 1..8 rows, and launches it with the plan's grid.
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "launch.h"
#include "qimma_stream.h"

namespace rocq::gpu {

namespace {

// ROCQ_QIMMA, read once per process: 0 off, 1 every call it fits (M = 1..8), 3 as 1 and an error
// for a call of 16-bit x, M <= 8 and the fast path it does not take (tests: proves it ran), else
// (default) the calls where it measured faster (qimma_chosen).
int qimma_mode() {
  static const int mode = [] {
    const char* v = std::getenv("ROCQ_QIMMA");
    return v && (v[0] == '0' || v[0] == '1' || v[0] == '3') && !v[1] ? v[0] - '0' : 2;
  }();
  return mode;
}

// ROCQ_QIMMA_STAGES, read once per process: 2 always the two-stage instances (more CTAs a
// multiprocessor where x is large: benchmarks), else three where they fit.
bool qimma_two_stages_forced() {
  static const bool two = [] {
    const char* v = std::getenv("ROCQ_QIMMA_STAGES");
    return v && v[0] == '2' && !v[1];
  }();
  return two;
}

// ROCQ_QIMMA_EARLY, read once per process: 1 issues the first stages' copies before each CTA
// rounds x (the kernel's `early`), else after (benchmarks).
int qimma_early_copies() {
  static const int early = [] {
    const char* v = std::getenv("ROCQ_QIMMA_EARLY");
    return v && v[0] == '1' && !v[1] ? 1 : 0;
  }();
  return early;
}

// The calls it takes by default: none yet (not measured against the other kernels).
constexpr bool qimma_chosen(int id, int64_t M) { return (void)id, (void)M, false; }

// Launch state per (kernel instance, device) behind one lock (platform.h RqSmemOccupancy: the
// opt-in is a property of each device's context; the occupancy depends on M and k).
std::mutex g_qimma_mu;
constexpr int kMaxDevices = 64;

// A launch plan in one positive integer (qimma_stream_plan's value): grid * 2 + (two stages
// instead of QimmaCfg::kStages, where x leaves too little shared memory for three).
struct QimmaPlan {
  int64_t grid = 0;
  bool two = false;
  int64_t code() const { return grid > 0 ? grid * 2 + (two ? 1 : 0) : 0; }
  static QimmaPlan of(int64_t code) { return {code / 2, (code & 1) != 0}; }
};

// f(instance) for this call's instance: CT = 1 up to 4 rows of x, else 2; NS = 2 where `two`,
// else QimmaCfg::kStages.
template <int ID, int XK, typename F>
void with_instance(int64_t M, bool two, F&& f) {
  constexpr int NS = QimmaCfg<ID>::kStages;
  if (M <= 4) {
    if (two) f(qimma_stream_kernel<ID, XK, 1, 2>, 2);
    else f(qimma_stream_kernel<ID, XK, 1, NS>, NS);
  } else {
    if (two) f(qimma_stream_kernel<ID, XK, 2, 2>, 2);
    else f(qimma_stream_kernel<ID, XK, 2, NS>, NS);
  }
}

// The plan for this call on the current device, grid 0 where the kernel does not run: rows not
// whole 16-byte copies or weights/x not 16-byte aligned, a scale plane not in 4-byte words, fewer row groups than multiprocessors
// (the other kernels split k finer), x and two stages over the device's shared memory, or
// offsets past 32 bits.
template <int ID, int XK>
QimmaPlan qimma_grid(const QmatArgs& a) {
  using Cfg = QimmaCfg<ID>;
  const int dev = rq_current_device();
  if (dev < 0 || dev >= kMaxDevices) return {};
  const RqDeviceFacts d = rq_device_facts(dev);
  const int64_t cap = d.optin - Cfg::static_smem(a.M <= 4 ? 1 : 2);  // (the opt-in limit counts both)
  const bool two = qimma_two_stages_forced() || Cfg::smem(Cfg::kStages, a.k, a.M) > cap;
  const int64_t groups = rq_ceil_div(a.n, (int64_t)Cfg::G::kRows), smem = Cfg::smem(two ? 2 : Cfg::kStages, a.k, a.M);
  if (a.row_bytes % 16 != 0 || (reinterpret_cast<uintptr_t>(a.qw) & 15) != 0 ||
      (rq_has_scale_plane(ID) && !rq_plane_words(a.sc, a.k)) ||
      (reinterpret_cast<uintptr_t>(a.x) & 15) != 0 || a.k % 32 != 0 || smem > cap || d.sms <= 0 ||
      groups < d.sms || Cfg::G::kRows * a.row_bytes >= ((int64_t)1 << 31))
    return {};
  std::lock_guard<std::mutex> lock(g_qimma_mu);
  static RqSmemOccupancy state[2][2][kMaxDevices];  // per CT, stage count and device
  int occ = 0;  // (0: another kernel takes the call)
  with_instance<ID, XK>(a.M, two, [&](auto kernel, int) {
    occ = state[a.M <= 4 ? 0 : 1][two ? 1 : 0][dev].blocks(reinterpret_cast<const void*>(kernel), Cfg::kThreads, smem);
  });
  if (occ <= 0) return {};
  const int64_t resident = (int64_t)occ * d.sms;
  return {groups < resident ? groups : resident, two};
}

// f(XK, id) as integral constants for the 16-bit dtype and a format the kernel has; false where
// it has none.
template <typename F>
bool with_format(int qtype, DType dtype, F&& f) {
  bool found = false;
  auto each = [&](auto xk) {
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (qimma_on<id>()) {
        f(xk, std::integral_constant<int, id>{});
        found = true;
      }
    });
  };
  if (dtype == DType::F16) each(std::integral_constant<int, (int)DType::F16>{});
  else if (dtype == DType::BF16) each(std::integral_constant<int, (int)DType::BF16>{});
  return found;
}

}  // namespace

int64_t qimma_stream_plan(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                          const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes) {
  static const bool sm80 = rq_cuda_major() >= 8;  // mma.sync m16n8k32 (the kernel is empty below sm_80)
  const int mode = qimma_mode();
  if (mode == 0 || dtype == DType::F32 || M < 1 || M > 8) return 0;
  if (!kRqMmaFrag || !sm80) return mode == 3 ? -1 : 0;
  const QmatArgs a{x, nullptr, qweight, scales, nullptr, (int)M, n, k, row_bytes};
  QimmaPlan p;
  with_format(qtype, dtype, [&](auto xk, auto id) {
    if (mode != 2 || qimma_chosen(id, M)) p = qimma_grid<decltype(id)::value, decltype(xk)::value>(a);
  });
  return p.grid == 0 && mode == 3 ? -1 : p.code();
}

const char* qimma_stream_launch(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                                const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                                int64_t plan, void* stream) {
  if (plan <= 0) return "rocq qmatvec: ROCQ_QIMMA=3 and the integer matrix-unit kernel does not take this call";
  const QimmaPlan p = QimmaPlan::of(plan);
  const QmatArgs a{x, y, qweight, scales, bias, (int)M, n, k, row_bytes};
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  const char* err = nullptr;
  const bool found = with_format(qtype, dtype, [&](auto xk, auto id) {
    constexpr int ID = decltype(id)::value;
    with_instance<ID, decltype(xk)::value>(M, p.two, [&](auto kernel, int ns) {
      kernel<<<(unsigned)p.grid, QimmaCfg<ID>::kThreads, (size_t)QimmaCfg<ID>::smem(ns, k, M), s>>>(a, qimma_early_copies());
    });
    const gpuError_t e = rq_last_error();
    err = e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
  });
  return found ? err : "rocq qmatvec: the integer matrix-unit kernel has no instance for this format";
}

}  // namespace rocq::gpu
