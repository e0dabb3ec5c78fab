// rocq qgemm: the middle-regime matmul (M about 8..256 rows of x). Torch-free launch interface,
// same conventions as launch.h (plain pointers, the platform stream as void*, nullptr on success
// or an error string; never synchronises, never allocates: the caller passes the workspace).
#pragma once

#include <cstddef>
#include <cstdint>

#include "launch.h"

namespace rocq::gpu {

// How one qgemm call is cut up (host side; a pure function of the sizes, the format and the
// current device's multiprocessor count, so the workspace size asked for before the launch is
// the one the launch uses).
struct QgemmPlan {
  int mt = 0;               // rows of x per CTA (16, 32 or 64)
  int64_t n_tiles = 0;      // CTAs along n (kQgemmRowsPerCta weight rows each)
  int64_t m_tiles = 0;      // CTAs along M
  int64_t chunks = 0;       // k chunks (raw staging units) per weight row
  int64_t splits = 1;       // CTAs along k (split-k); > 1 needs the workspace
  int64_t chunks_per_split = 0;
  size_t workspace_bytes = 0;  // fp32 partial sums [splits][M][n] when splits > 1, else 0
};

// False (with a reason in *why when given) when qgemm cannot take this call: unknown format,
// k % 8 != 0 or k not whole blocks, x not 16-byte aligned, M or n out of range.
bool qgemm_supported(int qtype, const void* x, int64_t M, int64_t n, int64_t k, const char** why = nullptr);

// The plan launch_qgemm will use on the current device.
QgemmPlan qgemm_plan(int qtype, int64_t M, int64_t n, int64_t k);

// y[M, n] = x[M, k] @ W^T (+ bias[n], fp32), x and y contiguous in `dtype`, fp32 accumulation.
// Each weight byte is read once per CTA column (once per M tile of up to 64 rows), decoded
// bit-exactly with the formats.h codec, rounded once to the matrix-unit operand type (bf16 for
// bf16 x; fp16 for fp16 and fp32 x) and multiplied on the matrix units (platform.h RqMma).
// workspace: at least qgemm_plan(...).workspace_bytes bytes (may be null when that is 0).
// Deterministic: split-k partials are summed in a fixed order by a second kernel.
const char* launch_qgemm(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                         const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                         void* workspace, size_t workspace_bytes, void* stream);

}  // namespace rocq::gpu
