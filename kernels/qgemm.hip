// launch_qgemm: planning (tile height, split-k), the deterministic split-k reduction and the
// dtype switch. The tile kernel itself is in qgemm_impl.h, instantiated per activation dtype in
// qgemm_{f32,f16,bf16}.hip.
#include "qgemm_impl.h"

namespace rocq::gpu {
namespace {

constexpr int kRedThreads = 256;

// y[m, j] = sum over splits s, in order, of ws[s, m, j] (+ bias[j]), rounded once to x's dtype.
template <int XK>
__global__ void __launch_bounds__(kRedThreads)
    qgemm_reduce(const float* ws, int64_t splits, int64_t M, int64_t n, const float* bias, void* y_) {
  using T = typename XStore<XK>::T;
  const int64_t i = (int64_t)blockIdx.x * kRedThreads + threadIdx.x;
  const int64_t total = M * n;
  if (i >= total) return;
  float v = 0.f;
  for (int64_t s = 0; s < splits; ++s) v += ws[s * total + i];
  if (bias) v += bias[i % n];
  static_cast<T*>(y_)[i] = rq_from_float<XK>(v);
}

template <int XK>
const char* reduce(const float* ws, int64_t splits, int64_t M, int64_t n, const float* bias, void* y,
                   gpuStream_t stream) {
  const dim3 grid((unsigned)rq_ceil_div(M * n, kRedThreads)), block(kRedThreads);
  qgemm_reduce<XK><<<grid, block, 0, stream>>>(ws, splits, M, n, bias, y);
  const gpuError_t e = rq_last_error();
  return e == ROCQ_GPU_SUCCESS ? nullptr : rq_error_string(e);
}

}  // namespace

bool qgemm_supported(int qtype, const void* x, int64_t M, int64_t n, int64_t k, const char** why) {
  const char* r = nullptr;
  const FormatInfo* f = find_format(qtype);
  if (!f) r = "unknown qtype";
  else if (k <= 0 || k % 8 != 0 || k % (f->block_elems == 1 ? 8 : f->block_elems) != 0)
    r = "k must be a positive multiple of 8 and of the block size";
  else if (reinterpret_cast<uintptr_t>(x) % 16 != 0) r = "x must be 16-byte aligned";
  else if (M <= 0 || n <= 0) r = "empty problem";
  else if (rq_ceil_div(M, 16) > 2147483647LL || rq_ceil_div(n, kQgNT) > 65535) r = "too large";
  if (why) *why = r;
  return r == nullptr;
}

QgemmPlan qgemm_plan(int qtype, int64_t M, int64_t n, int64_t k) {
  QgemmPlan p;
  const FormatInfo* f = find_format(qtype);
  if (!f || M <= 0 || n <= 0 || k <= 0) return p;
  int rkc = 128;
  dispatch_format(qtype, [&](auto codec) { rkc = QgGeom<decltype(codec)>::RKC; });
  p.mt = M <= 16 ? 16 : (M <= 32 ? 32 : 64);
  p.m_tiles = rq_ceil_div(M, p.mt);
  p.n_tiles = rq_ceil_div(n, kQgNT);
  p.chunks = rq_ceil_div(k, rkc);
  // About two CTAs per multiprocessor are resident (each takes ~70-100 KB of shared memory):
  // split k when the tiles alone would leave multiprocessors idle, to the nearest whole number
  // of such waves, at least 2 chunks per split.
  const int sm_count = rq_device_facts().sms;
  const int64_t sms = sm_count > 0 ? sm_count : 1;
  const int64_t tiles = p.n_tiles * p.m_tiles, target = 2 * sms;
  int64_t splits = (target + tiles / 2) / tiles;
  const int64_t max_splits = p.chunks / 2 > 0 ? p.chunks / 2 : 1;
  splits = splits < 1 ? 1 : (splits > max_splits ? max_splits : splits);
  p.chunks_per_split = rq_ceil_div(p.chunks, splits);
  p.splits = rq_ceil_div(p.chunks, p.chunks_per_split);
  p.workspace_bytes = p.splits > 1 ? (size_t)(p.splits * M * n) * sizeof(float) : 0;
  return p;
}

const char* launch_qgemm(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                         const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                         void* workspace, size_t workspace_bytes, void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  const char* why = nullptr;
  if (!qgemm_supported(qtype, x, M, n, k, &why)) return why;
  const QgemmPlan p = qgemm_plan(qtype, M, n, k);
  if (p.workspace_bytes > 0 && (workspace == nullptr || workspace_bytes < p.workspace_bytes))
    return "rocq qgemm: workspace missing or too small (see qgemm_plan)";
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  QgArgs a{x, y, p.splits > 1 ? static_cast<float*>(workspace) : nullptr, qweight, scales, bias, M, n, k, row_bytes,
           p.chunks, p.chunks_per_split};
  const char* err = nullptr;
  switch (dtype) {
    case DType::F32: err = qgemm_launch_dtype<(int)DType::F32>(qtype, a, p, s); break;
    case DType::F16: err = qgemm_launch_dtype<(int)DType::F16>(qtype, a, p, s); break;
    case DType::BF16: err = qgemm_launch_dtype<(int)DType::BF16>(qtype, a, p, s); break;
    default: return "rocq qgemm: unknown activation dtype";
  }
  if (err || p.splits == 1) return err;
  switch (dtype) {
    case DType::F32: return reduce<(int)DType::F32>(a.ws, p.splits, M, n, bias, y, s);
    case DType::F16: return reduce<(int)DType::F16>(a.ws, p.splits, M, n, bias, y, s);
    default: return reduce<(int)DType::BF16>(a.ws, p.splits, M, n, bias, y, s);
  }
}

}  // namespace rocq::gpu
