// rocq GPU launch functions: the torch-free interface between csrc/ and the kernels in
// kernels/*.hip. Plain pointers, sizes and a stream (the platform stream type passed as
// void*); every function launches on that stream, never synchronises, never allocates, and
// returns nullptr on success or a static/driver error string that csrc turns into an
// exception. Every launch is followed by a check of the platform's last error.
#pragma once

#include <cstdint>

namespace rocq::gpu {

// Element types of activations, outputs and dequantized weights.
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// W[n, k] (decoded bit-exactly by the formats.h codec of `qtype`, then rounded once to
// `out_dtype`) -> out (contiguous [n, k]). qweight: [n, row_bytes] contiguous bytes; scales:
// the [n, k/32] E8M0 plane for formats that have one, else null.
const char* launch_dequantize(int qtype, const uint8_t* qweight, const uint8_t* scales, int64_t n, int64_t k,
                              int64_t row_bytes, void* out, DType out_dtype, void* stream);

// Fused decode-path matmul: y[M, n] = x[M, k] @ W^T (+ bias[n], fp32), x and y contiguous, in
// `dtype`; fp32 accumulation. Reads each weight byte once per group of up to 8 rows of x.
// Works for any M (it walks x in groups of 8 rows), but is meant for small M (see
// csrc/cuda/ops_cuda.cpp: choose_path).
// For 16-bit x and the formats with integer pieces (kernels/qdot_int.h: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS, MXFP4, OCP MXFP4), x is first rounded to 16-bit fixed point per 32-element block (power-of-two scale;
// error at most 2^-15 of the block's max |x|, none for bf16 values within 2^7 of it) into `workspace`,
// whose size qmatvec_workspace_bytes gives (0: none needed, pass null); ROCQ_QMV_EXACT=1 turns
// that off. fp32 x is always used as is, and so is every x on backends without a fast integer
// dot product (platform.h kRqIntDot: AMD for now). One or two rows of fixed-point x go to the
// streaming kernel (kernels/qmatvec_stream.hip: which formats, rows and layers, measured) where
// it is faster; ROCQ_QMV_STREAM=0 (read once per process) turns it off, =2 forces it wherever it
// fits (also ahead of the matrix-unit kernel at M = 2), =3 as 2 and an error where it does not.
const char* launch_qmatvec(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                           const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias,
                           void* y, void* workspace, void* stream);
int64_t qmatvec_workspace_bytes(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                                const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes);

// The matrix-unit decode kernel (kernels/qmma*.hip): weights decoded in registers straight into
// matrix-unit operands, fp32 sums; its time grows little from M = 1 to 8 and slowly to M = 32.
// qmma_supported: 16-bit x, a format with a fragment decoder, a backend with register fragments
// (NVIDIA for now). qmma_takes: also the measured M range (from M = 2..5 up to 64), so
// launch_qmatvec hands it those calls when the fast path applies. ROCQ_QMMA=0 (read once per
// process) turns it off; ROCQ_QMMA=1 hands it every M.
// Codes and x are exact operands, so only the fp32 summation order differs from the fp32 pieces.
bool qmma_supported(int qtype, DType dtype);
bool qmma_takes(int qtype, DType dtype, int64_t M);
// Whether a call of M = 9..64 rows of x runs the wide matrix-unit kernel (qmma_wide.h: 16-byte
// rows, a layer of at least one 128-row CTA per multiprocessor); the chooser then keeps M up to
// 64 on the fused path.
bool qmma_wide_takes(int qtype, DType dtype, int64_t M, int64_t n, int64_t k, int64_t row_bytes);
const char* launch_qmma(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                        const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                        void* stream);

// The streaming integer matrix-unit kernel (kernels/qimma_stream.h: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q4_K, Q5_K, IQ4_NL, IQ4_XS, MXFP4, OCP MXFP4; NVIDIA sm_80+; 1..8 rows of 16-bit x, x
// rounded per 32-element block to 14-bit fixed point, error at most 2^-14 of the block's max |x|;
// int8 products, fp32 scaling per block): launch_qmatvec asks it first. qimma_stream_plan: its
// launch plan for this call (0: not this kernel: format without a byte decoder, fp32 x, unaligned
// pointers or rows, a scale plane not in 4-byte words, a layer too small to fill the device once, x over the shared memory, or not
// chosen; -1: ROCQ_QIMMA=3 and not this kernel, which qimma_stream_launch reports as an error).
// ROCQ_QIMMA (read once per process): 0 off, 1 every call it fits, 3 as 1 and an error for a call
// of 16-bit x, M <= 8 and the fast path it does not take (tests), else the measured choice.
int64_t qimma_stream_plan(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                          const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes);
const char* qimma_stream_launch(int qtype, const void* x, DType dtype, int64_t M, const uint8_t* qweight,
                                const uint8_t* scales, int64_t n, int64_t k, int64_t row_bytes, const float* bias, void* y,
                                int64_t plan, void* stream);

// True when launch_qmatvec takes its fast, vectorised path for these pointers and sizes
// (16-byte aligned rows, k a multiple of 8); otherwise it runs a simple (correct, slower)
// kernel. Exposed for tests and benchmarks.
bool qmatvec_fast_path(int qtype, const void* x, const uint8_t* qweight, int64_t k, int64_t row_bytes);

}  // namespace rocq::gpu
