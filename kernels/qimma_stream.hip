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

// Per-(kernel instance, device) launch state behind one lock: the opt-in to the device's shared
// memory (once) and the occupancy per dynamic shared-memory size (it depends on M and k).
struct QimmaState {
  int64_t opted = 0;  // dynamic shared memory opted in so far (0: none yet; the 48 KB default
                      // counts the kernel's static shared memory too)
  std::map<int64_t, int> occ;
};
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
  static QimmaState state[2][2][kMaxDevices];  // per CT, stage count and device
  QimmaState& s = state[a.M <= 4 ? 0 : 1][two ? 1 : 0][dev];
  int occ = 0;
  with_instance<ID, XK>(a.M, two, [&](auto kernel, int) {
    const void* kern = reinterpret_cast<const void*>(kernel);
    if (smem > s.opted) {
      if (rq_func_set_max_dynamic_smem(kern, (int)smem) != ROCQ_GPU_SUCCESS) {
        (void)rq_last_error();  // clear it: another kernel takes the call
        return;
      }
      s.opted = smem;
    }
    auto it = s.occ.find(smem);
    if (it == s.occ.end()) it = s.occ.emplace(smem, rq_blocks_per_sm(kern, Cfg::kThreads, (size_t)smem)).first;
    occ = it->second;
  });
  if (occ <= 0) return {};
  const int64_t resident = (int64_t)occ * d.sms;
  return {groups < resident ? groups : resident, two};
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
  auto plan = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (qimma_on<id>()) {
        if (mode != 2 || qimma_chosen(id, M)) p = qimma_grid<id, XK>(a);
      }
    });
  };
  if (dtype == DType::F16) plan(std::integral_constant<int, (int)DType::F16>{});
  else plan(std::integral_constant<int, (int)DType::BF16>{});
  return p.grid == 0 && mode == 3 ? -1 : p.code();
}

const char* qimma_stream_launch(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                                const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                                int64_t plan, void* stream) {
  if (plan <= 0) return "rocq qmatvec: ROCQ_QIMMA=3 and the integer matrix-unit kernel does not take this call";
  const QimmaPlan p = QimmaPlan::of(plan);
  const QmatArgs a{x, y, qweight, scales, bias, (int)M, n, k, row_bytes};
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  const char* err = "rocq qmatvec: the integer matrix-unit kernel has no instance for this format";
  auto launch = [&](auto xk) {
    constexpr int XK = decltype(xk)::value;
    dispatch_format(qtype, [&](auto codec) {
      constexpr int id = decltype(codec)::kId;
      if constexpr (qimma_on<id>()) {
        using Cfg = QimmaCfg<id>;
        with_instance<id, XK>(M, p.two, [&](auto kernel, int ns) {
          kernel<<<(unsigned)p.grid, Cfg::kThreads, (size_t)Cfg::smem(ns, k, M), s>>>(a, qimma_early_copies());
        });
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
