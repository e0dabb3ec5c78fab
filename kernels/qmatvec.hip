// launch_qmatvec: walks x in groups of up to 8 rows, picks the activation dtype, the fast
// kernel (16-byte aligned rows) or the simple one, and the row count it is compiled for.
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

bool qmatvec_register_blocked(int qtype) { return qmv_piece_format(qtype); }

namespace {

// Weight rows per CTA: enough CTAs to fill the device several times over for small n, more
// rows per CTA for large n so that staging x in shared memory is amortised.
int rows_per_cta(int64_t n) { return n >= 16384 ? 16 : (n >= 4096 ? 8 : 4); }

// Shared memory available for staging x (what a block may opt in to, less the weight staging
// buffers and a margin), cached per process.
int64_t xsmem_budget() {
  static const int64_t budget = [] {
    const int64_t optin = rq_max_smem_optin();
    return optin > 40 * 1024 ? optin - 36 * 1024 : 0;
  }();
  return budget;
}

template <int XK>
const char* qmatvec_dtype(int qtype, const void* x, int64_t M, const uint8_t* qw, const uint8_t* sc, int64_t n,
                          int64_t k, int64_t row_bytes, const float* bias, void* y, bool fast, gpuStream_t s) {
  using T = typename XStore<XK>::T;
  const FormatInfo* f = find_format(qtype);
  if (!f) return "rocq qmatvec: unknown qtype";
  const int ue = f->block_elems == 1 ? 8 : f->block_elems;
  const int64_t budget = xsmem_budget();
  // Rows of x per launch: the largest of 8/4/2/1 whose fp32 copy fits in shared memory (x then
  // comes from shared memory); if not even one row fits, 8 rows read straight from global.
  int group = 8;
  bool xsmem = false;
  // Above ~72 KiB per CTA, occupancy drops to 1-2 CTAs per multiprocessor: then fewer rows
  // per launch (more passes over W) measured faster, except that one row always stages.
  // Formats with a register-blocked kernel (Piece<ID>) need no x tile: always 8 rows per launch.
  const bool piece = qmv_piece_format(qtype);
  for (int g : {8, 4, 2, 1}) {
    if (piece) break;
    const int64_t bytes = qmv_xsmem_bytes(ue, k, g);
    if (bytes <= budget && (bytes <= 72 * 1024 || g == 1)) {
      group = g;
      xsmem = true;
      break;
    }
  }
  for (int64_t m0 = 0; m0 < M; m0 += group) {
    const int mm = (int)(M - m0 < group ? M - m0 : group);
    const int mt = mm == 1 ? 1 : mm == 2 ? 2 : mm <= 4 ? 4 : 8;
    const QmvArgs a{static_cast<const T*>(x) + m0 * k, static_cast<T*>(y) + m0 * n, qw, sc, bias, mm, n, k, row_bytes,
                    !fast ? 4 : piece ? qmv_piece_splits(n, mt) : rows_per_cta(n)};
    const char* err = !fast      ? qmv_simple_launch<XK>(qtype, a, s)
                      : mm == 1 ? qmv_launch<XK, 1>(qtype, a, xsmem, s)
                      : mm == 2 ? qmv_launch<XK, 2>(qtype, a, xsmem, s)
                      : mm <= 4 ? qmv_launch<XK, 4>(qtype, a, xsmem, s)
                                : qmv_launch<XK, 8>(qtype, a, xsmem, s);
    if (err) return err;
  }
  return nullptr;
}
}  // namespace

const char* launch_qmatvec(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                           const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias,
                           void* y, void* stream) {
  if (M <= 0 || n <= 0) return nullptr;
  const bool fast = qmatvec_fast_path(qtype, x, qweight, k, row_bytes);
  const gpuStream_t s = static_cast<gpuStream_t>(stream);
  switch (dtype) {
    case DType::F32: return qmatvec_dtype<(int)DType::F32>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
    case DType::F16: return qmatvec_dtype<(int)DType::F16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
    case DType::BF16: return qmatvec_dtype<(int)DType::BF16>(qtype, x, M, qweight, scales, n, k, row_bytes, bias, y, fast, s);
  }
  return "rocq qmatvec: unknown activation dtype";
}

}  // namespace rocq::gpu
